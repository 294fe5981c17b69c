// What the machine allows for the compute+communicate loop of coll_cohort (row
// `compute_efficiency`): the same ~50 us compute steps, ITERATIONS of them, with no communication
// inside the loop (a barrier before and after only). Prints (total compute cpu time / cores) /
// wall time as one of two rows:
// - `compute_ceiling`: nothing between the steps. Below 1 when other processes share the cores or
//   the hypervisor steals time; compute_efficiency cannot beat it.
// - `compute_switch_ceiling`: one sched_yield() between the steps. When ranks outnumber cores,
//   every step of an SPMD loop with a collective in it needs each rank of a core to be switched in
//   once (the collective cannot complete before every rank has computed), so this is what the
//   cores allow once the cheapest possible switch (a yield, with no synchronisation at all) is
//   paid per step; where a process switch is expensive (a guest without PCID pays a TLB flush per
//   switch) it sits well below `compute_ceiling`. With a core per rank it equals compute_ceiling.
//   cohortrun -n 8 compute_ceiling compute_ceiling 0 2000
//   cohortrun -n 8 compute_ceiling compute_switch_ceiling 0 2000
#include <cohort/cohort.hpp>

#include <sched.h>

#include <algorithm>
#include <functional>

#include "coll_common.hpp"

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& w = env.world();
  auto a = coll_bench::parse(argc, argv);
  const int np = w.size();
  const bool yield = a.bench == "compute_switch_ceiling";
  double sink = 0;
  double eff = coll_bench::compute_loop_efficiency(
      a.iterations, np, [&] { w.barrier(); },
      [yield](double s) {
        if (yield) ::sched_yield();
        return s * 1e-30;
      },
      [&](double v) { return w.allreduce(v, std::plus<>{}); }, sink);
  if (w.rank() == 0) coll_bench::emit("cohort", a, np, eff, "ratio");
  return sink > 1e300 ? 1 : 0;
}
