// The plain-MPI twin of coll_cohort.cpp (built with mpicxx, run with mpirun): same operations,
// same measurement, same JSON line with impl "openmpi".
#include <mpi.h>

#include <vector>

#include "coll_common.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, np = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  auto a = coll_bench::parse(argc, argv);
  const auto n = static_cast<std::size_t>(np);
  std::vector<char> in(a.bench == "alltoall" || a.bench == "scatter" ? a.bytes * n : a.bytes, 1), out;
  std::vector<float> fin(std::max<std::size_t>(a.bytes / sizeof(float), 1), 1.0f), fout(fin.size());
  if (a.bench == "gather" || a.bench == "alltoall") out.resize(a.bytes * n);
  if (a.bench == "scatter") out.resize(a.bytes);
  const int count = static_cast<int>(a.bytes);
  const int fcount = static_cast<int>(fin.size());

  if (a.bench == "compute_efficiency") {
    double sink = 0;
    double eff = coll_bench::compute_loop_efficiency(
        a.iterations, np, [] { MPI_Barrier(MPI_COMM_WORLD); },
        [](double s) {
          double x = 0;
          MPI_Allreduce(&s, &x, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
          return x * 1e-30;
        },
        [](double v) {
          double total = 0;
          MPI_Allreduce(&v, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
          return total;
        },
        sink);
    if (rank == 0) coll_bench::emit("openmpi", a, np, eff, "ratio");
    MPI_Finalize();
    return sink > 1e300 ? 1 : 0;
  }

  auto op = [&] {
    if (a.bench == "barrier") {
      MPI_Barrier(MPI_COMM_WORLD);
    } else if (a.bench == "bcast") {
      MPI_Bcast(in.data(), count, MPI_CHAR, 0, MPI_COMM_WORLD);
    } else if (a.bench == "reduce") {
      MPI_Reduce(fin.data(), fout.data(), fcount, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
    } else if (a.bench == "allreduce") {
      MPI_Allreduce(fin.data(), fout.data(), fcount, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    } else if (a.bench == "gather") {
      MPI_Gather(in.data(), count, MPI_CHAR, out.data(), count, MPI_CHAR, 0, MPI_COMM_WORLD);
    } else if (a.bench == "scatter") {
      MPI_Scatter(in.data(), count, MPI_CHAR, out.data(), count, MPI_CHAR, 0, MPI_COMM_WORLD);
    } else if (a.bench == "alltoall") {
      MPI_Alltoall(in.data(), count, MPI_CHAR, out.data(), count, MPI_CHAR, MPI_COMM_WORLD);
    } else {
      std::fprintf(stderr, "unknown benchmark %s\n", a.bench.c_str());
      std::exit(2);
    }
  };
  for (int i = 0; i < a.warmup; ++i) op();
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = coll_bench::now_us();
  for (int i = 0; i < a.iterations; ++i) op();
  double mine = (coll_bench::now_us() - t0) / a.iterations;
  double sum = 0;
  MPI_Allreduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) coll_bench::emit("openmpi", a, np, sum / np, "us");
  MPI_Finalize();
  return 0;
}
