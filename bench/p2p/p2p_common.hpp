// Shared by the Cohort and the plain-MPI point-to-point benchmarks (bench/p2p): arguments, the
// serialized struct, and the JSON line format of BENCHMARKS.md.
#pragma once

#include "../common/bench_args.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace p2p_bench {

/// Window of outstanding non-blocking sends in the bandwidth and message-rate tests (OSU's).
inline constexpr int kWindow = 64;

// Args.bench: latency bandwidth message_rate latency_cereal_struct latency_vector_double_1000
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

/// One JSON result line (BENCHMARKS.md).
inline void report(const char* impl, const Args& a, double value, const char* unit) {
  std::printf("{\"suite\":\"p2p\",\"bench\":\"%s\",\"impl\":\"%s\",\"np\":2,\"bytes\":%zu,"
              "\"value\":%.6g,\"unit\":\"%s\"}\n",
              a.bench.c_str(), impl, a.bytes, value, unit);
  std::fflush(stdout);
}

}  // namespace p2p_bench
