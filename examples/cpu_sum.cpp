// cpu_sum: a CPU-bound job, sequential and then with a pool (the classic multiprocessing demo):
// 8 tasks, each the sum of i*i for i below 2 000 000.
//
//   build/bin/cpu_sum [workers]            an ordinary program: the Pool forks its workers
#include <cohort/pool.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {
// One out-of-line copy that both timings call, starting on a 64-byte boundary: a loop this small
// runs ~2x slower on some cpus when it happens to straddle a 64-byte boundary, so a copy inlined
// into the sequential loop and another called by the pool could differ in speed by placement
// alone (see bench/pool/sum_of_squares.hpp).
[[gnu::noinline, gnu::aligned(64)]] std::uint64_t sum_of_squares(std::uint64_t n) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    sum += i * i;
    asm volatile("" : "+r"(sum));  // keep the loop: no closed form, no vector shortcut
  }
  return sum;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::atoi(argv[1]) : 2;
  const std::vector<std::uint64_t> tasks(8, 2'000'000);

  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::uint64_t> sequential;
  for (auto n : tasks) sequential.push_back(sum_of_squares(n));
  double t_seq = seconds_since(t0);

  cohort::Pool pool(workers);
  t0 = std::chrono::steady_clock::now();
  std::vector<std::uint64_t> parallel = pool.map(tasks, sum_of_squares);
  double t_par = seconds_since(t0);

  fmt::print("sequential: {:.1f} ms\n", t_seq * 1e3);
  fmt::print("pool of {}:  {:.1f} ms (speed-up {:.2f}x)\n", workers, t_par * 1e3, t_seq / t_par);
  fmt::print("results {}: sum = {}\n", parallel == sequential ? "agree" : "DIFFER", parallel.front());
  return parallel == sequential ? 0 : 1;
}
