// launch_hello_mpi: the plain-MPI baseline of launch_hello_cohort (same output).
#include <mpi.h>
#include <sys/resource.h>

#include <cstdio>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::printf("hello from rank %d of %d\n", rank, size);
  MPI_Finalize();
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  std::printf("rss_kib=%ld\n", usage.ru_maxrss);
  return 0;
}
