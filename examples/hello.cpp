// hello: every rank says who it is and where it runs.
//   cohortrun -n 4 build/bin/hello
#include <sched.h>
#include <unistd.h>

#include <cohort/cohort.hpp>
#include <fmt/format.h>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  char host[256] = "?";
  ::gethostname(host, sizeof host);
  fmt::print("hello from rank {} of {} on cpu {} of {} (pid {}{})\n", world.rank(), world.size(),
             ::sched_getcpu(), host, ::getpid(), env.oversubscribed() ? ", oversubscribed" : "");
  return 0;
}
