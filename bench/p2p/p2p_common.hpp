// Shared by the Cohort and the plain-MPI point-to-point benchmarks (bench/p2p): arguments, the
// serialized struct, and the JSON line format of BENCHMARKS.md.
#pragma once

#include "../common/bench_args.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace p2p_bench {

/// Window of outstanding non-blocking sends in the bandwidth and message-rate tests (OSU's).
inline constexpr int kWindow = 64;

// Args.bench: latency bandwidth message_rate latency_cereal_struct latency_vector_double_1000
// cereal_struct_over_8b
using bench_common::Args;
using bench_common::now_us;
using bench_common::parse;

/// A small struct that needs serialization (a string member), as programs send them.
struct Particle {
  int id = 0;
  double x = 0, y = 0, z = 0;
  std::string name;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, x, y, z, name);
  }
};

inline Particle sample_particle() { return Particle{42, 1.0, 2.0, 3.0, "particle-42"}; }

/// `slow(b) / fast(b)` for one run: both latencies are measured in kBlocks alternating blocks of
/// a.iterations / kBlocks ping-pongs each (8-byte messages for `fast`), and the median of the
/// blocks' ratios is returned. Two separate runs minutes apart compare two different placements
/// of the host's vCPUs (README, Benchmarks); blocks a few milliseconds apart compare the same one.
template <class Slow, class Fast>
double alternating_ratio(const Args& a, Slow&& slow, Fast&& fast) {
  constexpr int kBlocks = 21;
  Args b = a;
  b.iterations = std::max(1, a.iterations / kBlocks);
  b.warmup = std::max(1, b.iterations / 10);
  Args b8 = b;
  b8.bytes = 8;
  std::vector<double> ratios;
  slow(b);  // a first block of each warms caches and the allocator
  fast(b8);
  for (int i = 0; i < kBlocks; ++i) {
    const double f = fast(b8);
    const double s = slow(b);
    ratios.push_back(s / f);
  }
  std::nth_element(ratios.begin(), ratios.begin() + kBlocks / 2, ratios.end());
  return ratios[kBlocks / 2];
}

/// One JSON result line (BENCHMARKS.md).
inline void report(const char* impl, const Args& a, double value, const char* unit) {
  std::printf("{\"suite\":\"p2p\",\"bench\":\"%s\",\"impl\":\"%s\",\"np\":2,\"bytes\":%zu,"
              "\"value\":%.6g,\"unit\":\"%s\"}\n",
              a.bench.c_str(), impl, a.bytes, value, unit);
  std::fflush(stdout);
}

}  // namespace p2p_bench
