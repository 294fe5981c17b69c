// Parallel pi by the midpoint rule: the collectives in a few lines.
//   cohortrun -n 4 ./collectives [intervals]
// Rank 0 broadcasts the number of intervals, every rank integrates its share, allreduce sums the
// shares (in rank order: the same bits on every rank and every run), gather collects how much
// each rank did, and a split communicator shows sub-groups.
#include <cohort/cohort.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numbers>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();

  std::int64_t intervals = 0;
  if (world.rank() == 0) intervals = argc > 1 ? std::atoll(argv[1]) : 10'000'000;
  world.broadcast(intervals, 0);

  const double h = 1.0 / static_cast<double>(intervals);
  double share = 0.0;
  std::int64_t mine = 0;
  for (std::int64_t i = world.rank(); i < intervals; i += world.size()) {
    const double x = h * (static_cast<double>(i) + 0.5);
    share += 4.0 / (1.0 + x * x);
    ++mine;
  }
  const double pi = world.allreduce(share * h, std::plus<>{});
  const auto counts = world.gather(mine, 0);

  // Even and odd ranks: each half computes how many intervals it covered.
  auto half = world.split(world.rank() % 2, world.rank());
  const std::int64_t half_total = half->allreduce(mine, std::plus<>{});
  const std::int64_t largest = world.allreduce(mine, cohort::max);

  if (world.rank() == 0) {
    std::printf("pi = %.15f (error %.2e) from %lld intervals on %d ranks\n", pi,
                std::fabs(pi - std::numbers::pi), static_cast<long long>(intervals), world.size());
    for (std::size_t r = 0; r < counts.size(); ++r) {
      std::printf("  rank %zu integrated %lld intervals\n", r, static_cast<long long>(counts[r]));
    }
    std::printf("even ranks covered %lld intervals; the busiest rank %lld\n",
                static_cast<long long>(half_total), static_cast<long long>(largest));
  }
  return 0;
}
