// launch_hello_cohort: the Cohort hello world of the launch suite. Each rank prints one line with
// its rank and its peak resident set (ru_maxrss, KiB) so that the harness can compare memory.
#include <sys/resource.h>

#include <cohort/cohort.hpp>
#include <fmt/format.h>

int main(int argc, char** argv) {
  {
    cohort::Environment env(argc, argv);
    auto& world = env.world();
    fmt::print("hello from rank {} of {}\n", world.rank(), world.size());
  }
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  fmt::print("rss_kib={}\n", usage.ru_maxrss);
  return 0;
}
