// fault_trial: one fault-injection trial (driven by tests/faults/run_faults.py).
//
//   cohortrun -n N fault_trial SCENARIO VICTIM DELAY_MS
//
// Every rank runs SCENARIO's loop forever; rank VICTIM SIGKILLs itself DELAY_MS after the start
// (from a timer thread, so the kill lands wherever the rank is: inside a send, a recv, a
// collective...), or, for `lock`, once it holds the lock after DELAY_MS. Before dying it writes
// "fault: killing rank V at T" (T: CLOCK_MONOTONIC nanoseconds) so that the driver can measure the
// time from the kill to the end of the job. Each rank first prints "fault: rank R pid P job J"; a
// survivor whose blocked call throws PeerLost prints "fault: rank R PeerLost at T" and exits 3.
// Scenarios: send, recv, collective, pool_map, queue_get, lock.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <cohort/cohort.hpp>

namespace {

void die_now(int rank) {
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::steady_clock::now().time_since_epoch()).count();
  char line[128];
  int len = std::snprintf(line, sizeof line, "fault: killing rank %d at %lld\n", rank,
                          static_cast<long long>(now));
  (void)!::write(STDERR_FILENO, line, static_cast<std::size_t>(len));
  ::kill(::getpid(), SIGKILL);
  for (;;) ::pause();
}

void spin_for(std::chrono::microseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  cohort::Communicator& world = env.world();
  const int n = world.size();
  const int me = world.rank();
  if (argc < 4 || n < 2) {
    std::fprintf(stderr, "usage: cohortrun -n N (N >= 2) fault_trial SCENARIO VICTIM DELAY_MS\n");
    return 2;
  }
  const std::string scenario = argv[1];
  const int victim = std::atoi(argv[2]);
  const auto delay = std::chrono::milliseconds(std::atol(argv[3]));
  const char* job = std::getenv("COHORT_JOB");
  std::printf("fault: rank %d pid %d job %s\n", me, static_cast<int>(::getpid()), job ? job : "-");
  std::fflush(stdout);

  // Objects of the multiprocessing layer are collective: every scenario creates the same ones.
  cohort::Lock lock(world);
  cohort::SharedValue<long> counter(world);
  cohort::Queue<std::vector<int>> queue(world, 64);
  world.barrier();
  const auto start = std::chrono::steady_clock::now();
  if (me == victim && scenario != "lock") {
    std::thread([me, delay] {
      std::this_thread::sleep_for(delay);
      die_now(me);
    }).detach();
  }
  const int next = (me + 1) % n;
  const int prev = (me + n - 1) % n;
  constexpr cohort::Tag kTag{4};
  std::vector<char> big(256 * 1024, 'x');
  std::vector<char> in;
  try {
  for (long i = 0;; ++i) {
    if (scenario == "send") {
      // A ring of large (pipelined) and small messages: every rank is mostly in send or recv.
      cohort::Request r = world.irecv(in, prev, kTag);
      world.send(i % 2 == 0 ? big : std::vector<char>(i % 100, 'y'), next, kTag);
      r.wait();
    } else if (scenario == "recv") {
      // The victim receives from everyone; the others send to it at a slow pace.
      if (me == victim) {
        (void)world.recv(in, cohort::any_source, kTag);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        world.send(std::vector<char>(64, 'z'), victim, kTag);
      }
    } else if (scenario == "collective") {
      long sum = world.allreduce(i + me, std::plus<>());
      if (sum < 0) return 3;
      std::vector<int> b(1000, static_cast<int>(i));
      world.broadcast(b, static_cast<int>(i % n));
      world.barrier();
    } else if (scenario == "pool_map") {
      std::vector<int> items(64);
      auto out = cohort::pool_map(world, items, [](int x) {
        spin_for(std::chrono::microseconds(200));
        return x + 1;
      });
      (void)out;
    } else if (scenario == "queue_get") {
      // The victim (and every other odd rank) consumes; the rest produce at a slow pace.
      if (me == victim || me % 2 == 1) {
        (void)queue.get();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        queue.put(std::vector<int>(16, me));
      }
    } else if (scenario == "lock") {
      lock.lock();
      counter.fetch_add(1);
      if (me == victim && std::chrono::steady_clock::now() - start >= delay) die_now(me);
      spin_for(std::chrono::microseconds(100));
      lock.unlock();
    } else {
      std::fprintf(stderr, "fault_trial: unknown scenario %s\n", scenario.c_str());
      return 2;
    }
  }
  } catch (const cohort::PeerLost& e) {
    // A survivor whose blocked call failed (unless cohortrun's SIGTERM came first): when.
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch()).count();
    std::fprintf(stderr, "fault: rank %d PeerLost at %lld: %s\n", me, static_cast<long long>(now), e.what());
    return 3;
  }
}
