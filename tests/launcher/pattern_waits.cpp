// pattern_waits: ranks blocked in the multiprocessing layer's waits, for the hang report and the
// deadlock detector (README.md, "When things go wrong").
//   pattern_waits lock_order          rank 0 holds lock A and wants B, rank 1 holds B and wants A:
//                                     a deadlock (cycle 0 -> 1 -> 0), exit 125
//   pattern_waits queue_starved       every rank in Queue.get, nobody puts: a deadlock, exit 125
//   pattern_waits slow_producer MS    rank 0 in Queue.get while rank 1 computes MS ms, then puts:
//                                     not a deadlock, exit 0
//   pattern_waits timed_event MS      rank 0 in Event.wait_for(MS ms) (times out), then sets a
//                                     second event that rank 1 waits for: not a deadlock, exit 0
//   pattern_waits pipe_slow MS        rank 0 in Pipe.recv while rank 1 computes MS ms: exit 0
//   pattern_waits condition           every rank in Condition.wait, nobody notifies: exit 125
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <cohort/cohort.hpp>

namespace {
void compute(long ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
}  // namespace

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& comm = env.world();
  const std::string mode = argc > 1 ? argv[1] : "";
  const long ms = argc > 2 ? std::atol(argv[2]) : 0;
  if (mode == "lock_order") {
    cohort::Lock a(comm);
    cohort::Lock b(comm);
    if (comm.rank() == 0) a.lock();
    if (comm.rank() == 1) b.lock();
    comm.barrier();
    if (comm.rank() == 0) b.lock();
    if (comm.rank() == 1) a.lock();
    std::printf("rank %d got both locks (never)\n", comm.rank());
  } else if (mode == "queue_starved") {
    cohort::Queue<int> q(comm);
    std::printf("rank %d got %d (never)\n", comm.rank(), q.get());
  } else if (mode == "slow_producer") {
    cohort::Queue<int> q(comm);
    if (comm.rank() == 1) {
      compute(ms);
      q.put(7);
    } else if (comm.rank() == 0) {
      std::printf("rank 0 got %d\n", q.get());
    }
  } else if (mode == "timed_event") {
    cohort::Event first(comm);
    cohort::Event second(comm);
    if (comm.rank() == 0) {
      bool set = first.wait_for(std::chrono::milliseconds(ms));
      std::printf("rank 0: first event %s\n", set ? "set (never)" : "timed out");
      second.set();
    } else {
      second.wait();
      std::printf("rank %d: second event set\n", comm.rank());
    }
  } else if (mode == "pipe_slow") {
    cohort::Pipe pipe(comm, 0, 1);
    if (comm.rank() == 1) {
      compute(ms);
      pipe.send(5);
    } else if (comm.rank() == 0) {
      std::printf("rank 0 got %d\n", pipe.recv<int>());
    }
  } else if (mode == "condition") {
    cohort::Lock lock(comm);
    cohort::Condition cond(comm, lock);
    lock.lock();
    cond.wait();
    std::printf("rank %d notified (never)\n", comm.rank());
  } else {
    std::fprintf(stderr, "pattern_waits: unknown mode '%s'\n", mode.c_str());
    return 4;
  }
  return 0;
}
