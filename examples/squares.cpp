// squares: N processes started in a loop, each printing one square (multiprocessing.Process).
//
//   build/bin/squares [N]        an ordinary program: no cohortrun needed
#include <cohort/spawn.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 10;
  std::vector<cohort::Process> processes;
  processes.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    processes.emplace_back([i] { fmt::print("process {}: {} squared is {}\n", i, i, i * i); });
    processes.back().start();
  }
  int failed = 0;
  for (auto& p : processes) {
    p.join();
    failed += p.exit_code() == 0 ? 0 : 1;
  }
  fmt::print("{} processes joined, {} failed\n", n, failed);
  return failed == 0 ? 0 : 1;
}
