// wait_behaviour: a Cohort-linked rank for the hang report and deadlock detection tests.
//   wait_behaviour ring_deadlock          every rank recv(next rank, tag 5) first: a cycle
//   wait_behaviour slow_sender MS [fail]  rank 1 computes MS ms, then sends to rank 0, which
//                                         waits in recv(source 1, tag 9); exit 0 (with "fail",
//                                         rank 1 exits with 6 instead of sending)
//   wait_behaviour token_ring MS          a token goes round the ring as fast as it can for MS
//                                         ms (every rank is in recv nearly all the time); exit 0
//   wait_behaviour paced_ring MS PAUSE    the same, each holder computing PAUSE ms before passing
//   wait_behaviour slow_barrier MS        rank 0 computes MS ms before a barrier; exit 0
//   wait_behaviour throw                  rank 1 throws (uncaught) while rank 0 waits in
//                                         recv(source 1, tag 9)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include <cohort/cohort.hpp>

namespace {

using Clock = std::chrono::steady_clock;

void compute(long ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Rank 0 starts the token; it stops the ring (token -1) once `ms` have passed.
void ring(cohort::Communicator& comm, long ms, long pause_ms) {
  constexpr cohort::Tag kToken{3};
  const int n = comm.size();
  const int next = (comm.rank() + 1) % n;
  const int previous = (comm.rank() + n - 1) % n;
  auto end = Clock::now() + std::chrono::milliseconds(ms);
  long rounds = 0;
  if (comm.rank() == 0) comm.send(1L, next, kToken);
  for (;;) {
    long token = comm.recv<long>(previous, kToken);
    if (token < 0) {
      if (comm.rank() != 0) comm.send(token, next, kToken);
      break;
    }
    if (pause_ms > 0) compute(pause_ms);
    if (comm.rank() == 0) {
      ++rounds;
      comm.send(Clock::now() >= end ? -1L : token + 1, next, kToken);
    } else {
      comm.send(token, next, kToken);
    }
  }
  if (comm.rank() == 0) std::printf("ring: %s rounds\n", rounds > 0 ? "some" : "no");
}

}  // namespace

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& comm = env.world();
  std::string mode = argc > 1 ? argv[1] : "";
  long a = argc > 2 ? std::atol(argv[2]) : 0;
  long b = argc > 3 ? std::atol(argv[3]) : 0;  // "fail" reads as 0
  if (mode == "ring_deadlock") {
    int next = (comm.rank() + 1) % comm.size();
    int value = comm.recv<int>(next, cohort::Tag{5});
    std::printf("rank %d got %d (never)\n", comm.rank(), value);
  } else if (mode == "slow_sender") {
    if (comm.rank() == 0) {
      int v = comm.recv<int>(1, cohort::Tag{9});
      std::printf("rank 0 got %d\n", v);
    } else if (comm.rank() == 1) {
      compute(a);
      if (argc > 3 && std::string(argv[3]) == "fail") std::exit(6);
      comm.send(42, 0, cohort::Tag{9});
    }
  } else if (mode == "token_ring" || mode == "paced_ring") {
    ring(comm, a, mode == "paced_ring" ? b : 0);
  } else if (mode == "throw") {
    if (comm.rank() == 1) {
      compute(200);
      throw std::runtime_error("rank 1 gave up");
    }
    if (comm.rank() == 0) comm.recv<int>(1, cohort::Tag{9});
  } else if (mode == "slow_barrier") {
    if (comm.rank() == 0) compute(a);
    comm.barrier();
    if (comm.rank() == 0) std::printf("barrier passed\n");
  } else {
    std::fprintf(stderr, "wait_behaviour: unknown mode '%s'\n", mode.c_str());
    return 4;
  }
  return 0;
}
