// What the machine allows for the compute+communicate loop of coll_cohort (row
// `compute_efficiency`): the same ~50 us compute steps, ITERATIONS of them, with no communication
// inside the loop (a barrier before and after only). Prints the row `compute_ceiling`:
// (total compute cpu time / cores) / wall time. Below 1 when other processes share the cores or
// the hypervisor steals time; compute_efficiency cannot beat it.
//   cohortrun -n 8 compute_ceiling compute_ceiling 0 2000
#include <cohort/cohort.hpp>

#include <algorithm>
#include <functional>

#include "coll_common.hpp"

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& w = env.world();
  auto a = coll_bench::parse(argc, argv);
  const int np = w.size();
  auto rounds = coll_bench::calibrate(50.0);
  double sink = 0, compute_us = 0;
  w.barrier();
  double t0 = coll_bench::now_us();
  for (int i = 0; i < a.iterations; ++i) {
    double c0 = coll_bench::thread_cpu_us();
    sink += coll_bench::kernel(rounds, 1.0 + i);
    compute_us += coll_bench::thread_cpu_us() - c0;
    sink *= 1e-30;
  }
  w.barrier();
  double wall = coll_bench::now_us() - t0;
  double total_compute = w.allreduce(compute_us, std::plus<>{});
  double cores = std::min<double>(np, static_cast<double>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))));
  if (w.rank() == 0) coll_bench::emit("cohort", a, np, total_compute / cores / wall, "ratio");
  return sink > 1e300 ? 1 : 0;
}
