// cohort::spawn and cohort::Process: forked ranks from an ordinary program (no launcher).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cohort/cohort.hpp>
#include <cohort/shared.hpp>
#include <cohort/spawn.hpp>
#include <cohort/sync.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

#include "runtime/collectives/engine.hpp"
#include "runtime/runtime.hpp"

namespace {

using namespace std::chrono_literals;

TEST(Spawn, ResultsComeBackInRankOrder) {
  cohort::Job job = cohort::spawn(4, [](cohort::Communicator& world) {
    EXPECT_EQ(world.size(), 4);
    return world.rank() * world.rank();
  });
  EXPECT_EQ(job.results<int>(), (std::vector<int>{0, 1, 4, 9}));
  for (auto code : job.exit_codes()) EXPECT_EQ(code, 0);
}

TEST(Spawn, StringAndVectorResults) {
  auto job = cohort::spawn(3, [](cohort::Communicator& w) { return std::string(w.rank() + 1, 'x'); });
  EXPECT_EQ(job.results<std::string>(), (std::vector<std::string>{"x", "xx", "xxx"}));
  auto big = cohort::spawn(2, [](cohort::Communicator& w) {
    return std::vector<double>(200000, w.rank() + 0.5);  // 1.6 MB: more than a pipe holds
  });
  auto vs = big.results<std::vector<double>>();
  ASSERT_EQ(vs.size(), 2u);
  EXPECT_EQ(vs[1].size(), 200000u);
  EXPECT_EQ(vs[1][199999], 1.5);
}

TEST(Spawn, RanksShareMemoryAndSynchronise) {
  auto job = cohort::spawn(5, [](cohort::Communicator& w) {
    cohort::SharedArray<int> slots(w, 5);
    cohort::Barrier barrier(w);
    slots[static_cast<std::size_t>(w.rank())] = w.rank() + 10;
    barrier.wait();
    int sum = 0;
    for (int v : slots) sum += v;
    return sum;
  });
  for (int s : job.results<int>()) EXPECT_EQ(s, 10 + 11 + 12 + 13 + 14);
}

TEST(Spawn, TwoRanksBroadcastAcrossTheirAddressSpaces) {
  // Spawned ranks are siblings under this process (their parent), as cohortrun's are under the
  // launcher: a two-rank broadcast of 1 MiB copies straight between them (broadcast_pair).
  auto job = cohort::spawn(2, [](cohort::Communicator& w) {
    std::vector<std::uint32_t> v(1 << 18, 0);
    if (w.rank() == 1) {
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint32_t>(i * 2654435761u);
    }
    w.broadcast(std::span(v), 1);
    std::uint64_t wrong = 0;
    for (std::size_t i = 0; i < v.size(); ++i) wrong += v[i] != static_cast<std::uint32_t>(i * 2654435761u);
    return std::vector<std::uint64_t>{wrong,
                                      cohort::detail::Runtime::current()->collectives().cross_memory_calls()};
  });
  const char* cma = std::getenv("COHORT_CMA");
  const std::uint64_t crossed = cma != nullptr && cma[0] == '0' ? 0 : 1;
  for (const auto& r : job.results<std::vector<std::uint64_t>>()) {
    EXPECT_EQ(r[0], 0u) << "wrong elements";
    EXPECT_EQ(r[1], crossed) << "broadcasts that crossed address spaces";
  }
}

TEST(Spawn, AnExceptionNamesTheRankAndItsMessage) {
  auto job = cohort::spawn(3, [](cohort::Communicator& w) {
    if (w.rank() == 1) throw std::runtime_error("bad item 17");
    return 0;
  });
  try {
    (void)job.results<int>();
    FAIL() << "expected SpawnError";
  } catch (const cohort::SpawnError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("1 of 3 ranks failed"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("bad item 17"), std::string::npos) << msg;
  }
  EXPECT_EQ(job.exit_codes()[1], 1);
}

TEST(Spawn, ADeadPeerBreaksABarrierInsteadOfHangingIt) {
  auto job = cohort::spawn(3, [](cohort::Communicator& w) {
    cohort::Barrier barrier(w);
    if (w.rank() == 2) ::kill(::getpid(), SIGKILL);
    try {
      barrier.wait();
    } catch (const cohort::PeerLost& e) {
      return e.peer();
    }
    return -1;
  });
  ASSERT_TRUE(job.join(30s));
  EXPECT_EQ(job.exit_codes()[2], -SIGKILL);
  EXPECT_THROW(job.check(), cohort::SpawnError);
  auto codes = job.exit_codes();
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 0);
}

TEST(Spawn, ALockHeldByADeadRankIsTakenOver) {
  auto job = cohort::spawn(2, [](cohort::Communicator& w) {
    cohort::Lock lock(w);
    cohort::Event taken(w);
    if (w.rank() == 1) {
      lock.lock();
      taken.set();
      ::_exit(0);  // dies holding the lock (no destructor, no unlock)
    }
    taken.wait();
    lock.lock();  // must not deadlock
    bool recovered = lock.recovered();
    lock.unlock();
    if (!recovered) throw std::runtime_error("the lock was not reported as recovered");
  });
  ASSERT_TRUE(job.join(30s));
  EXPECT_NO_THROW(job.check());
  EXPECT_EQ(job.exit_codes(), (std::vector<std::optional<int>>{0, 0}));
  try {
    (void)job.results<int>();
    FAIL() << "a rank that returns nothing has no result";
  } catch (const cohort::SpawnError& e) {
    EXPECT_NE(std::string(e.what()).find("exited without returning a result"), std::string::npos);
  }
}

TEST(Process, StartJoinExitCode) {
  cohort::Process p([] { ::_exit(3); });
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.pid(), -1);
  p.start();
  EXPECT_GT(p.pid(), 0);
  EXPECT_TRUE(p.join(30s));
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exit_code(), 3);
  EXPECT_THROW(p.start(), cohort::Error);
}

TEST(Process, JoinTimesOutThenTerminate) {
  cohort::Process p([] { std::this_thread::sleep_for(60s); });
  p.start();
  EXPECT_FALSE(p.join(50ms));
  EXPECT_TRUE(p.is_alive());
  EXPECT_EQ(p.exit_code(), std::nullopt);
  p.terminate();
  EXPECT_TRUE(p.join(30s));
  EXPECT_EQ(p.exit_code(), -SIGTERM);
}

TEST(Process, AHundredStartedInALoop) {
  cohort::SpawnOptions options;
  std::vector<cohort::Process> procs;
  procs.reserve(100);
  for (int i = 0; i < 100; ++i) {
    procs.emplace_back([i] { ::_exit(i % 7); }, options);
    procs.back().start();
  }
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(procs[static_cast<std::size_t>(i)].join(30s));
    EXPECT_EQ(procs[static_cast<std::size_t>(i)].exit_code(), i % 7);
  }
}

TEST(Spawn, RejectsABadRankCount) {
  EXPECT_THROW(cohort::spawn(0, [] {}), cohort::InvalidArgument);
}

}  // namespace
