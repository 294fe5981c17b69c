// pool_errors: a worker function that throws on some items. The other items still complete, and
// the caller learns exactly which items failed and why: as an exception listing them, or as
// per-item outcomes.
//
//   cohortrun -n 3 build/bin/pool_errors
#include <cohort/cohort.hpp>
#include <cohort/pool.hpp>
#include <fmt/format.h>

#include <numeric>
#include <stdexcept>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  std::vector<int> items(30);
  std::iota(items.begin(), items.end(), 0);
  auto risky = [](int x) {
    if (x % 13 == 5) throw std::domain_error(fmt::format("cannot handle {}", x));
    return 100 / (x % 7 + 1);
  };

  try {
    (void)cohort::pool_map(world, items, risky);
  } catch (const cohort::PoolError& e) {
    if (world.rank() == 0) fmt::print("pool_map threw:\n{}\n", e.what());
  }

  auto outcomes = cohort::pool_map_outcomes(world, items, risky);
  if (world.rank() == 0) {
    int ok = 0;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      if (outcomes[i].ok()) ++ok;
      else fmt::print("item {} failed: {}\n", i, outcomes[i].error);
    }
    fmt::print("{} of {} items succeeded\n", ok, outcomes.size());
  }
  return 0;
}
