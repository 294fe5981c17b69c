// The transport Waiter's policy (spin budgets as times, turned into counts with the measured cost
// of a pause) and its phases: spin, yield, then sleep until Segment::wake.
#include "runtime/transport/waiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

namespace cohort::transport {
namespace {

TEST(WaitPolicy, SpinBudgetIsATimeTurnedIntoPolls) {
  // 2 ms of 25 ns pauses with a core of its own; 0.5 us when ranks outnumber cores.
  EXPECT_EQ(WaitPolicy::make(false, 25.0).spins, 80000u);
  EXPECT_EQ(WaitPolicy::make(false, 50.0).spins, 40000u);
  EXPECT_EQ(WaitPolicy::make(true, 25.0).spins, 20u);
  // A machine with a cheap pause polls more often for the same time.
  EXPECT_GT(WaitPolicy::make(false, 5.0).spins, WaitPolicy::make(false, 40.0).spins);
}

TEST(WaitPolicy, AWaitCountsAsLongAfter50usWhateverItsSpinBudget) {
  // Point-to-point drains its rings once a wait is long (a sender blocked on a full ring must
  // not wait out the 2 ms spin): 50 us of pauses, or the whole spin when that is shorter.
  EXPECT_EQ(WaitPolicy::make(false, 25.0).patience, 2000u);
  EXPECT_LT(WaitPolicy::make(false, 25.0).patience, WaitPolicy::make(false, 25.0).spins);
  EXPECT_EQ(WaitPolicy::make(true, 25.0).patience, WaitPolicy::make(true, 25.0).spins);
}

TEST(WaitPolicy, OversubscribedSpinsLessAndStillYieldsBeforeSleeping) {
  for (double ns : {1.0, 10.0, 26.0, 140.0}) {
    WaitPolicy alone = WaitPolicy::make(false, ns);
    WaitPolicy crowded = WaitPolicy::make(true, ns);
    EXPECT_LT(crowded.spins, alone.spins) << ns;
    EXPECT_GT(crowded.yields, 0u) << ns;
    EXPECT_GT(alone.yields, 0u) << ns;
    EXPECT_GT(crowded.sleep_slice.count(), 0) << ns;
  }
}

TEST(WaitPolicy, OnlyOversubscribedWaitsYieldForATime) {
  // Ranks outnumbering cores yield (handing the core to a rank with work) for a bounded time
  // before sleeping; a rank with a core of its own yields a few times only.
  WaitPolicy crowded = WaitPolicy::make(true, 26.0);
  EXPECT_GT(crowded.yield_time.count(), 0);
  EXPECT_LT(crowded.yield_time, crowded.sleep_slice);
  EXPECT_EQ(WaitPolicy::make(false, 26.0).yield_time.count(), 0);
}

TEST(WaitPolicy, ClampsAbsurdPauseCosts) {
  // A pause measured at 0 (coarse clock) or at microseconds (a descheduled measurement) still
  // gives a bounded spin phase of a few polls at least.
  EXPECT_LE(WaitPolicy::make(false, 0.0).spins, 4000000u);
  EXPECT_GE(WaitPolicy::make(true, 1e6).spins, 16u);
  EXPECT_GE(WaitPolicy::make(false, 1e6).spins, 16u);
}

TEST(WaitPolicy, PauseCostIsMeasuredOnce) {
  double a = relax_ns();
  EXPECT_TRUE(std::isfinite(a));
  EXPECT_GT(a, 0.0);
  EXPECT_EQ(relax_ns(), a);
  EXPECT_EQ(WaitPolicy::for_job(false).spins, WaitPolicy::make(false, a).spins);
}

/// A zero-filled, cache-line aligned segment of `ranks` ranks in this process.
struct LocalSegment {
  static constexpr std::size_t kHeap = 4096;
  explicit LocalSegment(int ranks, bool oversubscribed)
      : mem(segment_layout(ranks, kHeap).total_bytes + kCacheLine) {
    auto* base = reinterpret_cast<std::byte*>(
        (reinterpret_cast<std::uintptr_t>(mem.data()) + kCacheLine - 1) / kCacheLine * kCacheLine);
    seg = Segment::format({base, segment_layout(ranks, kHeap).total_bytes}, ranks, 7,
                          oversubscribed, kHeap);
  }
  std::vector<std::byte> mem;
  Segment seg;
};

TEST(Waiter, ALongWaitEndsAsleepAndAWakeEndsIt) {
  for (bool oversubscribed : {false, true}) {
    LocalSegment local(2, oversubscribed);
    const Segment& seg = local.seg;
    std::atomic<bool> flag{false};
    std::thread waiting([&] {
      Waiter w(seg, 1, oversubscribed);
      w.wait([&] { return flag.load(std::memory_order_acquire); },
             WaitFor{WaitOp::barrier, 0, -1, 0}, [] { return -1; }, [](int) {});
    });
    // Every wait must reach its futex sleep (the spin and yield phases are bounded), with its
    // wait record set for the hang reports.
    RankSlot& s = seg.slot(1);
    while (s.sleeping.load() == 0) std::this_thread::yield();
    EXPECT_EQ(s.wait_op.load(), static_cast<std::uint32_t>(WaitOp::barrier));
    flag.store(true, std::memory_order_release);
    seg.wake(1);
    waiting.join();  // hangs (and the test times out) if the wake is lost
    EXPECT_EQ(s.wait_op.load(), static_cast<std::uint32_t>(WaitOp::none));
    EXPECT_EQ(s.sleeping.load(), 0u);
  }
}

TEST(Waiter, ALostPeerEndsTheWait) {
  LocalSegment local(2, true);
  const Segment& seg = local.seg;
  int lost = -1;
  std::thread waiting([&] {
    Waiter w(seg, 0, true);
    try {
      w.wait([] { return false; }, WaitFor{}, [&] { return seg.alive(1) ? -1 : 1; },
             [](int peer) { throw peer; });
    } catch (int peer) {
      lost = peer;
    }
  });
  seg.slot(1).state.store(static_cast<std::uint32_t>(RankState::exited));
  seg.wake(0);
  waiting.join();
  EXPECT_EQ(lost, 1);
}

TEST(Waiter, MoreWaitersThanCoresPassATokenAround) {
  // 8 threads (the tests run 8 and 16 ranks on 2 cores) pass a token round a ring, each waiting
  // with the oversubscribed policy: every hand-off must complete whatever phase the next one is
  // in (spinning, yielding or asleep).
  constexpr int kThreads = 8;
  constexpr int kRounds = 300;
  LocalSegment local(kThreads, true);
  const Segment& seg = local.seg;
  std::atomic<int> token{0};
  std::vector<std::thread> threads;
  std::vector<int> turns(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Waiter w(seg, t, true);
      for (int round = 0; round < kRounds; ++round) {
        const int mine = round * kThreads + t;
        w.wait([&] { return token.load(std::memory_order_acquire) == mine; }, WaitFor{},
               [] { return -1; }, [](int) {});
        ++turns[static_cast<std::size_t>(t)];
        token.store(mine + 1, std::memory_order_seq_cst);
        seg.wake((t + 1) % kThreads);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(token.load(), kThreads * kRounds);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(turns[static_cast<std::size_t>(t)], kRounds);
}

}  // namespace
}  // namespace cohort::transport
