// pool_progress: pool_map over the ranks of a job, with a progress bar at rank 0.
//
//   cohortrun -n 4 build/bin/pool_progress [items]
#include <cohort/cohort.hpp>
#include <cohort/pool.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <thread>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  const int n = argc > 1 ? std::atoi(argv[1]) : 400;
  std::vector<int> items(static_cast<std::size_t>(n));
  std::iota(items.begin(), items.end(), 1);

  cohort::PoolOptions options;
  options.progress = true;  // count, rate and ETA on stderr; plain lines when not a terminal
  options.chunk_size = 4;
  auto roots = cohort::pool_map(world, items, [](int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // pretend to work
    return std::sqrt(static_cast<double>(x));
  }, options);

  if (world.rank() == 0) {
    double total = std::accumulate(roots.begin(), roots.end(), 0.0);
    fmt::print("sum of square roots of 1..{} = {:.6f}\n", n, total);
  }
  return 0;
}
