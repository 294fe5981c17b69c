// Shared by the Cohort and the plain-MPI collective benchmarks (bench/coll): arguments, the
// compute kernel of the compute+communicate loop, and the JSON line format of BENCHMARKS.md.
#pragma once

#include "../common/bench_args.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace coll_bench {

// Args.bench: barrier bcast reduce allreduce gather alltoall compute_efficiency (and scatter,
// not in the suite's default list: by hand, e.g. cohortrun -n 8 coll_cohort scatter 8192 300 10)
using bench_common::Args;
using bench_common::now_us;
using bench_common::parse;

inline double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

/// Some floating-point work; the result is returned so it cannot be optimised away.
inline double kernel(std::uint64_t rounds, double x) {
  for (std::uint64_t i = 0; i < rounds; ++i) x = x * 1.0000001 + 1e-9;
  return x;
}

/// Rounds of kernel() that take about `target_us` of cpu time on this core.
inline std::uint64_t calibrate(double target_us) {
  std::uint64_t rounds = 1000;
  double sink = 0;
  for (;;) {
    double t0 = thread_cpu_us();
    sink += kernel(rounds, 1.0);
    double t = thread_cpu_us() - t0;
    if (t > 2000) return static_cast<std::uint64_t>(static_cast<double>(rounds) * target_us / t) + (sink < 0 ? 1 : 0);
    rounds *= 2;
  }
}

inline void emit(const char* impl, const Args& a, int np, double value, const char* unit) {
  std::printf("{\"suite\":\"coll\",\"bench\":\"%s\",\"impl\":\"%s\",\"np\":%d,\"bytes\":%zu,"
              "\"value\":%.4f,\"unit\":\"%s\"}\n",
              a.bench.c_str(), impl, np, a.bench == "barrier" || a.bench == "compute_efficiency" ? 0 : a.bytes,
              value, unit);
  std::fflush(stdout);
}

/// The compute+communicate loop of `compute_efficiency` (and of `compute_ceiling`, which does
/// not communicate): `iterations` steps of ~50 us of compute, each followed by
/// `communicate(sink)`, which returns the next sink; timed between two `barrier()`s.
/// Returns (total compute cpu time of all ranks / cores) / wall time, where `sum_all` adds a
/// value over the ranks and the cores are min(np, online cpus); the sink goes to `sink_out`.
template <class Barrier, class Communicate, class SumAll>
double compute_loop_efficiency(int iterations, int np, Barrier&& barrier, Communicate&& communicate,
                               SumAll&& sum_all, double& sink_out) {
  const std::uint64_t rounds = calibrate(50.0);
  double sink = 0, compute_us = 0;
  barrier();
  const double t0 = now_us();
  for (int i = 0; i < iterations; ++i) {
    const double c0 = thread_cpu_us();
    sink += kernel(rounds, 1.0 + i);
    compute_us += thread_cpu_us() - c0;
    sink = communicate(sink);
  }
  barrier();
  const double wall = now_us() - t0;
  const double total_compute = sum_all(compute_us);
  const double cores = std::min<double>(np, static_cast<double>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))));
  sink_out = sink;
  return total_compute / cores / wall;
}

}  // namespace coll_bench
