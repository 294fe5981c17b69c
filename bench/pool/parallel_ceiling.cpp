// What this machine gives two CPU-bound processes, without Cohort: the cpu_bound_speedup work
// (8 x sum of i*i below 2 000 000) run sequentially, then by two forked processes pinned to two
// different cpus, 4 tasks each. Prints `speedup=` (median of REPEATS), like pool_bench cpu.
//
//   parallel_ceiling [REPEATS]
//
// On a VM whose two vCPUs do not run at full speed at the same time, this is well below 2 and
// no pool can do better; the patterns suite reports it under the table. Not a test.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sum_of_squares.hpp"

namespace {

using pool_bench::sum_of_squares;

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
  cpu_set_t allowed;
  sched_getaffinity(0, sizeof(allowed), &allowed);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  if (cpus.size() < 2) {
    std::fprintf(stderr, "parallel_ceiling: needs two cpus\n");
    return 2;
  }
  std::vector<double> speedups;
  for (int r = 0; r < repeats; ++r) {
    sched_setaffinity(0, sizeof(allowed), &allowed);
    auto t0 = std::chrono::steady_clock::now();
    std::uint64_t total = 0;
    for (int i = 0; i < 8; ++i) total += sum_of_squares(2'000'000);
    double seq = ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    pid_t child = ::fork();
    if (child < 0) return 1;
    if (child == 0) {
      pin(cpus[1]);
      for (int i = 0; i < 4; ++i) total += sum_of_squares(2'000'000);
      ::_exit(total == 0 ? 1 : 0);
    }
    pin(cpus[0]);
    for (int i = 0; i < 4; ++i) total += sum_of_squares(2'000'000);
    int status = 0;
    ::waitpid(child, &status, 0);
    double par = ms_since(t0);
    if (total == 0) return 1;
    speedups.push_back(seq / par);
  }
  std::sort(speedups.begin(), speedups.end());
  std::printf("speedup=%.3f\n", speedups[speedups.size() / 2]);
  return 0;
}
