// OSU-style collective latencies over Cohort (suite `coll`; the plain-MPI twin is coll_mpi.cpp).
// Prints one JSON line from rank 0: the average over ranks of the mean time per operation.
//   cohortrun -n 4 coll_cohort allreduce 8 10000 1000
#include <cohort/cohort.hpp>

#include <functional>
#include <vector>

#include "coll_common.hpp"

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& w = env.world();
  auto a = coll_bench::parse(argc, argv);
  const int np = w.size();
  const auto n = static_cast<std::size_t>(np);
  std::vector<char> in(a.bench == "alltoall" || a.bench == "scatter" ? a.bytes * n : a.bytes, 1), out;
  std::vector<float> fin(std::max<std::size_t>(a.bytes / sizeof(float), 1), 1.0f), fout(fin.size());
  if (a.bench == "gather" || a.bench == "alltoall") out.resize(a.bytes * n);
  if (a.bench == "scatter") out.resize(a.bytes);

  if (a.bench == "compute_efficiency") {
    double sink = 0;
    double eff = coll_bench::compute_loop_efficiency(
        a.iterations, np, [&] { w.barrier(); },
        [&](double s) { return w.allreduce(s, std::plus<>{}) * 1e-30; },
        [&](double v) { return w.allreduce(v, std::plus<>{}); }, sink);
    if (w.rank() == 0) coll_bench::emit("cohort", a, np, eff, "ratio");
    return sink > 1e300 ? 1 : 0;
  }

  auto op = [&] {
    if (a.bench == "barrier") {
      w.barrier();
    } else if (a.bench == "bcast") {
      w.broadcast(std::span(in), 0);
    } else if (a.bench == "reduce") {
      w.reduce(fin, fout, std::plus<>{}, 0);
    } else if (a.bench == "allreduce") {
      w.allreduce(fin, fout, std::plus<>{});
    } else if (a.bench == "gather") {
      w.gather(in, out, 0);
    } else if (a.bench == "scatter") {
      w.scatter(in, out, 0);
    } else if (a.bench == "alltoall") {
      w.alltoall(in, out);
    } else {
      std::fprintf(stderr, "unknown benchmark %s\n", a.bench.c_str());
      std::exit(2);
    }
  };
  for (int i = 0; i < a.warmup; ++i) op();
  w.barrier();
  double t0 = coll_bench::now_us();
  for (int i = 0; i < a.iterations; ++i) op();
  double mine = (coll_bench::now_us() - t0) / a.iterations;
  double sum = w.allreduce(mine, std::plus<>{});
  if (w.rank() == 0) coll_bench::emit("cohort", a, np, sum / np, "us");
  return 0;
}
