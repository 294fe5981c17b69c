#include <cohort/cohort.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  std::printf("consumer: rank %d of %d ok\n", world.rank(), world.size());
  return 0;
}
