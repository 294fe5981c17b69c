// The CPU-bound task of the cpu_bound_speedup benchmark (as in examples/cpu_sum.cpp): the sum of
// i*i for i below n, kept as a loop (no closed form, no vector shortcut). Shared by pool_bench and
// parallel_ceiling so that both time exactly the same work.
#pragma once

#include <cstdint>

namespace pool_bench {

inline std::uint64_t sum_of_squares(std::uint64_t n) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    sum += i * i;
    asm volatile("" : "+r"(sum));
  }
  return sum;
}

}  // namespace pool_bench
