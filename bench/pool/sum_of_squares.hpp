// The CPU-bound task of the cpu_bound_speedup benchmark (as in examples/cpu_sum.cpp): the sum of
// i*i for i below n, kept as a loop (no closed form, no vector shortcut). Shared by pool_bench and
// parallel_ceiling so that both time exactly the same work.
//
// One out-of-line copy, starting on a 64-byte boundary, that the sequential and the parallel part
// both call: the same machine code at the same place in every program. The loop is 17 bytes; on
// this machine (Zen 4) it runs 2.2x slower when it straddles a 64-byte boundary (1.88 ms instead
// of 0.86 ms per task, measured 2026-12-03 with the identical instructions at offsets 0-56), and
// with the function inlined into the sequential loop and called out of line by pool_map, where
// each copy lands depended on the rest of the program: a change elsewhere in pool_bench.cpp put
// the pool's copy across a boundary and halved the measured speed-up.
#pragma once

#include <cstdint>

namespace pool_bench {

[[gnu::noinline, gnu::aligned(64)]] inline std::uint64_t sum_of_squares(std::uint64_t n) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    sum += i * i;
    asm volatile("" : "+r"(sum));
  }
  return sum;
}

}  // namespace pool_bench
