// A program that initialises MPI itself: Cohort uses it and leaves MPI_Finalize to the program.
#include <mpi.h>

#include <cstdio>

#include <cohort/cohort.hpp>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  {
    cohort::Environment env(argc, argv);
    auto& world = env.world();
    rank = world.rank();
    size = world.size();
    long sum = world.allreduce(static_cast<long>(rank + 1), std::plus<>{});
    if (sum != static_cast<long>(size) * (size + 1) / 2) {
      std::fprintf(stderr, "user_init: rank %d: allreduce gave %ld\n", rank, sum);
      return 1;
    }
  }
  int finalized = 1;
  MPI_Finalized(&finalized);
  // The program's own MPI calls still work after ~Environment.
  int total = 0;
  MPI_Allreduce(&rank, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (finalized == 0 && total == size * (size - 1) / 2) {
    std::printf("user_init: rank %d of %d: MPI still initialized after ~Environment, OK\n", rank, size);
  }
  std::fflush(stdout);
  MPI_Finalize();
  return finalized == 0 ? 0 : 1;
}
