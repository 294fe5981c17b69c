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
  double sink = 0;
  double eff = coll_bench::compute_loop_efficiency(
      a.iterations, np, [&] { w.barrier(); }, [](double s) { return s * 1e-30; },
      [&](double v) { return w.allreduce(v, std::plus<>{}); }, sink);
  if (w.rank() == 0) coll_bench::emit("cohort", a, np, eff, "ratio");
  return sink > 1e300 ? 1 : 0;
}
