// A rank dies while another waits for it. Rank 1 is killed (SIGKILL, as the out-of-memory killer
// would) while rank 0 waits in recv from it. Rank 0's recv throws cohort::PeerLost naming rank 1
// instead of hanging; cohortrun ends the job, prints a table of every rank (pid, state, exit,
// the call it was blocked in) and exits with 128 + 9 = 137, rank 1's status (README.md, "When things go wrong"):
//
//   $ cohortrun -n 2 ./rank_failure
//   cohortrun: rank 1 (pid 4243) killed by SIGKILL
//   cohortrun: rank 0 terminated by cohortrun (another rank failed)
//   cohortrun: rank   pid  state       exit     blocked in
//   cohortrun:    0  4242  terminated  SIGTERM  recv(source 1, tag 7)
//   cohortrun:    1  4243  failed      SIGKILL  -
//
// (Rank 0 may print its PeerLost message first, if it wakes before cohortrun's SIGTERM reaches
// it.) Ranks other than 0 and 1 wait in a barrier that rank 1 never reaches.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <cohort/cohort.hpp>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& comm = env.world();
  if (comm.size() < 2) {
    std::printf("rank_failure needs at least 2 ranks: cohortrun -n 2 %s\n", argv[0]);
    return 0;
  }
  constexpr cohort::Tag kResult{7};
  try {
    if (comm.rank() == 0) {
      std::printf("rank 0: waiting for rank 1's result\n");
      std::fflush(stdout);
      double result = comm.recv<double>(1, kResult);
      std::printf("rank 0: got %g (never printed)\n", result);
    } else if (comm.rank() == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));  // "computing"
      std::printf("rank 1: dying\n");
      std::fflush(stdout);
      ::raise(SIGKILL);
    } else {
      comm.barrier();
    }
  } catch (const cohort::PeerLost& e) {
    std::fprintf(stderr, "rank %d: lost rank %d: %s\n", comm.rank(), e.peer(), e.what());
    return 3;
  }
  return 0;
}
