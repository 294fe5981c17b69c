// Benchmarks of the multiprocessing layer (bench/suites/patterns.py runs them):
//   cohortrun -n W pool_bench map N CHUNK REPEATS   pool_map of N tiny tasks (x*x): tasks/s
//   cohortrun -n W pool_bench cpu REPEATS           8 x sum of i*i below 2e6: speed-up vs rank 0 alone
//                                                   (after one uncounted warm-up round)
//   pool_bench spawn N REPEATS                      start + join N cohort::Process: ms
// Each prints one `name=value` line (the median of REPEATS runs) at rank 0.
#include <cohort/cohort.hpp>
#include <cohort/pool.hpp>
#include <cohort/spawn.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "sum_of_squares.hpp"

namespace {
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

using pool_bench::sum_of_squares;

int bench_map(cohort::Communicator& world, std::size_t n, std::size_t chunk, int repeats) {
  std::vector<std::int64_t> xs(n);
  std::iota(xs.begin(), xs.end(), 0);
  cohort::PoolOptions o;
  o.chunk_size = chunk;
  std::vector<double> rates;
  for (int r = 0; r < repeats + 1; ++r) {
    world.barrier();
    auto t0 = Clock::now();
    auto out = cohort::pool_map(world, xs, [](std::int64_t x) { return x * x; }, o);
    double s = seconds(t0);
    if (world.rank() == 0 && (out.size() != n || out[n - 1] != static_cast<std::int64_t>(n - 1) * static_cast<std::int64_t>(n - 1))) {
      fmt::print(stderr, "wrong result\n");
      return 1;
    }
    if (r > 0) rates.push_back(static_cast<double>(n) / s);  // the first run warms up
  }
  if (world.rank() == 0) fmt::print("tasks_per_s={:.1f}\n", median(rates));
  return 0;
}

// One round: rank 0 runs the 8 tasks alone (the others wait in a barrier, asleep, as a Pool's
// idle workers would), then every rank runs pool_map over them; the round's speed-up is the
// ratio of the two. Round 0 is a warm-up that is not counted: the first pool call on a
// communicator sets up its private communicator and shared blocks (a Python Pool is likewise
// created before its timed map, and parallel_ceiling's child is forked before its rounds).
int bench_cpu(cohort::Communicator& world, int repeats) {
  const std::vector<std::uint64_t> tasks(8, 2'000'000);
  // The sum of i*i for i < n is (n-1) n (2n-1) / 6: checks the loop's results (no overflow in
  // 64 bits for n = 2e6: (n-1) n / 2 * (2n-1) is ~8e18).
  std::uint64_t expected = 0;
  for (auto n : tasks) expected += (n - 1) * n / 2 * (2 * n - 1) / 3;
  std::vector<double> speedups, seq_ms, par_ms;
  for (int r = 0; r < repeats + 1; ++r) {
    world.barrier();
    double t_seq = 0;
    if (world.rank() == 0) {
      auto t0 = Clock::now();
      std::uint64_t total = 0;
      for (auto n : tasks) total += sum_of_squares(n);
      t_seq = seconds(t0);
      if (total != expected) return 1;
    }
    world.barrier();
    auto t0 = Clock::now();
    auto out = cohort::pool_map(world, tasks, sum_of_squares);
    double t_par = seconds(t0);
    if (world.rank() == 0) {
      if (std::accumulate(out.begin(), out.end(), std::uint64_t{0}) != expected) {
        fmt::print(stderr, "wrong result\n");
        return 1;
      }
      if (r > 0) {
        speedups.push_back(t_seq / t_par);
        seq_ms.push_back(t_seq * 1e3);
        par_ms.push_back(t_par * 1e3);
      }
    }
  }
  if (world.rank() == 0) {
    fmt::print("speedup={:.3f}\n", median(speedups));
    fmt::print("rounds={} sequential_ms={:.3f} parallel_ms={:.3f} (medians); each round:", repeats,
               median(seq_ms), median(par_ms));
    for (double s : speedups) fmt::print(" {:.2f}", s);
    fmt::print("\n");
  }
  return 0;
}

int bench_spawn(int n, int repeats) {
  std::vector<double> ms;
  for (int r = 0; r < repeats + 1; ++r) {
    auto t0 = Clock::now();
    std::vector<cohort::Process> procs;
    procs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      procs.emplace_back([] {});
      procs.back().start();
    }
    for (auto& p : procs) {
      p.join();
      if (p.exit_code() != 0) return 1;
    }
    if (r > 0) ms.push_back(seconds(t0) * 1e3);
  }
  fmt::print("ms={:.3f}\n", median(ms));
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 3 && args[0] == "spawn") return bench_spawn(std::stoi(args[1]), std::stoi(args[2]));
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  if (args.size() >= 4 && args[0] == "map") {
    return bench_map(world, std::stoul(args[1]), std::stoul(args[2]), std::stoi(args[3]));
  }
  if (args.size() >= 2 && args[0] == "cpu") return bench_cpu(world, std::stoi(args[1]));
  fmt::print(stderr, "usage: pool_bench map N CHUNK REPEATS | cpu REPEATS | spawn N REPEATS\n");
  return 2;
}
