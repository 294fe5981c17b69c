// shared_array: ranks fill disjoint parts of one array that every rank maps (multiprocessing.Array).
//
//   cohortrun -n 4 build/bin/shared_array [length]
#include <cohort/cohort.hpp>
#include <cohort/shared.hpp>
#include <cohort/sync.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1'000'000;

  cohort::SharedArray<double> squares(world, n);  // size chosen at run time, zero-filled
  cohort::Barrier barrier(world);

  // Each rank fills a contiguous block: no two ranks write the same element, so no lock.
  const std::size_t size = static_cast<std::size_t>(world.size());
  const std::size_t rank = static_cast<std::size_t>(world.rank());
  const std::size_t begin = n * rank / size, end = n * (rank + 1) / size;
  for (std::size_t i = begin; i < end; ++i) squares[i] = static_cast<double>(i) * static_cast<double>(i);
  barrier.wait();  // after this, every rank sees every element

  if (world.rank() == 0) {
    double sum = 0;
    for (double v : squares) sum += v;
    const double nn = static_cast<double>(n);
    const double exact = (nn - 1) * nn * (2 * nn - 1) / 6;
    fmt::print("sum of i*i for i < {} computed by {} ranks: {:.6e} (exact {:.6e})\n", n,
               world.size(), sum, exact);
    fmt::print("squares[{}] = {}\n", n - 1, squares[n - 1]);
    return std::fabs(sum - exact) <= 1e-9 * exact ? 0 : 1;
  }
  return 0;
}
