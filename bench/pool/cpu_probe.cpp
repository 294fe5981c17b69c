// Diagnostic, not a suite row: where the time of `pool_bench cpu` goes, round by round.
//
//   cohortrun -n 2 cpu_probe [ROUNDS]
//
// Each round is timed as pool_bench cpu times it (rank 0 runs the 8 tasks alone while the other
// rank waits in a barrier, then pool_map runs them on both). Printed per round: the sequential
// time and each task's; the parallel time and speed-up; when rank 1 left the barrier; and each
// item as r<rank>@<start>+<duration> (us from rank 0's start of the parallel part), then how many
// items each rank ran. Round 0 includes the first pool call's set-up.
#include <cohort/cohort.hpp>
#include <cohort/pool.hpp>
#include <cohort/shared.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "sum_of_squares.hpp"

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double us(std::int64_t ns) { return static_cast<double>(ns) / 1e3; }

constexpr std::size_t kItems = 8;
// Shared record: per item (in the order they started) rank, start, end; then the item counter
// and rank 1's start of the parallel part.
constexpr std::size_t kCounter = kItems * 3;
constexpr std::size_t kRank1Start = kItems * 3 + 1;

}  // namespace

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  const int rounds = argc > 1 ? std::stoi(argv[1]) : 5;
  const std::vector<std::uint64_t> tasks(kItems, 2'000'000);
  cohort::SharedArray<std::int64_t> rec(world, kItems * 3 + 2);
  for (int r = 0; r < rounds; ++r) {
    world.barrier();
    std::vector<double> seq;
    std::int64_t t_seq = 0;
    if (world.rank() == 0) {
      std::int64_t t0 = now_ns();
      for (auto n : tasks) {
        std::int64_t a = now_ns();
        if (pool_bench::sum_of_squares(n) == 0) return 1;
        seq.push_back(us(now_ns() - a));
      }
      t_seq = now_ns() - t0;
    }
    world.barrier();
    std::int64_t t0 = now_ns();
    if (world.rank() == 1) rec[kRank1Start] = t0;
    auto out = cohort::pool_map(world, tasks, [&](std::uint64_t n) {
      std::int64_t a = now_ns();
      std::uint64_t s = pool_bench::sum_of_squares(n);
      std::int64_t b = now_ns();
      auto k = static_cast<std::size_t>(rec.atomic(kCounter).fetch_add(1));
      rec[k * 3] = world.rank();
      rec[k * 3 + 1] = a;
      rec[k * 3 + 2] = b;
      return s;
    });
    std::int64_t t1 = now_ns();
    world.barrier();
    if (world.rank() == 0) {
      std::string line = fmt::format("round {} seq {:.0f} us [", r, us(t_seq));
      for (double s : seq) line += fmt::format(" {:.0f}", s);
      line += fmt::format(" ] par {:.0f} us speed-up {:.3f}; rank 1 started {:+.0f}; items:", us(t1 - t0),
                          static_cast<double>(t_seq) / static_cast<double>(t1 - t0), us(rec[kRank1Start] - t0));
      int counts[2] = {0, 0};
      for (std::size_t k = 0; k < kItems; ++k) {
        auto rank = rec[k * 3];
        if (rank == 0 || rank == 1) ++counts[rank];
        line += fmt::format(" r{}@{:.0f}+{:.0f}", rank, us(rec[k * 3 + 1] - t0), us(rec[k * 3 + 2] - rec[k * 3 + 1]));
      }
      line += fmt::format(" | {}+{}", counts[0], counts[1]);
      fmt::print("{}\n", line);
      rec.atomic(kCounter).store(0);
    }
    world.barrier();
  }
  return 0;
}
