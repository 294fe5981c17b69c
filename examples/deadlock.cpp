// A deadlock, on purpose: every rank first waits for a message from the next rank, which is also
// waiting. cohortrun notices that every rank is blocked and nothing moves, prints who waits for
// whom and ends the job with exit status 125 (README.md, "When things go wrong"):
//
//   $ cohortrun -n 2 ./deadlock
//   cohortrun: deadlock: every running rank is blocked and nothing has changed for 0.8 s:
//   cohortrun: rank 0: recv(source 1, tag 5)
//   cohortrun: rank 1: recv(source 0, tag 5)
//   cohortrun: cycle: 0 -> 1 -> 0
//   ...
//
// The fix is to break the symmetry: even ranks send first, or use sendrecv / isend.
#include <cstdio>

#include <cohort/cohort.hpp>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& comm = env.world();
  if (comm.size() < 2) {
    std::printf("deadlock needs at least 2 ranks: cohortrun -n 2 %s\n", argv[0]);
    return 0;
  }
  constexpr cohort::Tag kTag{5};
  const int next = (comm.rank() + 1) % comm.size();
  const int previous = (comm.rank() + comm.size() - 1) % comm.size();
  std::printf("rank %d: waiting for rank %d first\n", comm.rank(), next);
  std::fflush(stdout);
  int value = comm.recv<int>(next, kTag);  // every rank waits here: nobody has sent yet
  comm.send(comm.rank(), previous, kTag);
  std::printf("rank %d: got %d (never printed)\n", comm.rank(), value);
  return 0;
}
