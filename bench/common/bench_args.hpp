// Shared by every OSU-style benchmark program (Cohort and plain-MPI twins): the command line
// `BENCH BYTES [ITERATIONS [WARMUP]]` and a microsecond clock.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bench_common {

struct Args {
  std::string bench;
  std::size_t bytes = 8;
  int iterations = 1000;
  int warmup = 100;
};

inline Args parse(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s BENCH BYTES [ITERATIONS [WARMUP]]\n", argv[0]);
    std::exit(2);
  }
  Args a;
  a.bench = argv[1];
  a.bytes = static_cast<std::size_t>(std::strtoull(argv[2], nullptr, 10));
  if (argc > 3) a.iterations = std::atoi(argv[3]);
  if (argc > 4) a.warmup = std::atoi(argv[4]);
  return a;
}

inline double now_us() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace bench_common
