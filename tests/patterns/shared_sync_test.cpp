// Shared arrays/values and the synchronisation primitives, at several rank counts (8 ranks on
// 2 cores is oversubscribed: every wait must sleep, not spin).
#include <gtest/gtest.h>

#include <cohort/cohort.hpp>
#include <cohort/shared.hpp>
#include <cohort/sync.hpp>

#include <mutex>
#include <thread>

#include "tests/support/rank_env.hpp"

namespace {

cohort::Communicator& world() { return cohort::testing::env().world(); }

TEST(SharedArray, EveryRankSeesEveryRanksWrites) {
  auto& w = world();
  cohort::SharedArray<int> a(w, static_cast<std::size_t>(w.size()) * 100);
  cohort::Barrier barrier(w);
  for (int i = 0; i < 100; ++i) a[static_cast<std::size_t>(w.rank() * 100 + i)] = w.rank() * 1000 + i;
  barrier.wait();
  for (int r = 0; r < w.size(); ++r) {
    for (int i = 0; i < 100; ++i) ASSERT_EQ(a[static_cast<std::size_t>(r * 100 + i)], r * 1000 + i);
  }
  barrier.wait();  // nobody leaves (and reuses nothing) before all have checked
}

TEST(SharedArray, StartsZeroedOrFilled) {
  auto& w = world();
  cohort::SharedArray<double> zeros(w, 1000);
  cohort::SharedArray<double> sevens(w, 1000, 7.5);
  for (std::size_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(zeros[i], 0.0);
    ASSERT_EQ(sevens[i], 7.5);
  }
}

TEST(SharedValue, AtomicIncrementsFromEveryRankAddUp) {
  auto& w = world();
  cohort::SharedValue<long> counter(w, 5);
  cohort::SharedValue<double> sum(w);
  cohort::Barrier barrier(w);
  constexpr int kIncrements = 20000;
  for (int i = 0; i < kIncrements; ++i) {
    counter.fetch_add(1);
    sum.fetch_add(0.5);
  }
  barrier.wait();
  EXPECT_EQ(counter.load(), 5 + static_cast<long>(kIncrements) * w.size());
  EXPECT_EQ(sum.load(), 0.5 * kIncrements * w.size());
  barrier.wait();
}

TEST(Lock, MakesReadModifyWriteExact) {
  auto& w = world();
  cohort::SharedValue<long> counter(w);
  cohort::Lock lock(w);
  cohort::Barrier barrier(w);
  constexpr int kIncrements = 3000;
  for (int i = 0; i < kIncrements; ++i) {
    std::scoped_lock guard(lock);
    EXPECT_EQ(lock.owner(), w.rank());
    long v = counter.load(std::memory_order_relaxed);  // deliberately non-atomic read-modify-write
    if (i % 64 == 0) std::this_thread::yield();        // invite interleaving
    counter.store(v + 1, std::memory_order_relaxed);
  }
  barrier.wait();
  EXPECT_EQ(counter.load(), static_cast<long>(kIncrements) * w.size());
  EXPECT_FALSE(lock.recovered());
  barrier.wait();
}

TEST(Lock, TryLockForTimesOutWhileHeld) {
  auto& w = world();
  cohort::Lock lock(w);
  cohort::Barrier barrier(w);
  if (w.rank() == 0) lock.lock();
  barrier.wait();
  if (w.rank() != 0) {
    EXPECT_FALSE(lock.try_lock());
    EXPECT_FALSE(lock.try_lock_for(std::chrono::milliseconds(20)));
    EXPECT_EQ(lock.owner(), 0);
  }
  barrier.wait();
  if (w.rank() == 0) lock.unlock();
  EXPECT_THROW(lock.unlock(), cohort::Error);  // nobody holds it now
  barrier.wait();
}

TEST(RLock, IsReentrant) {
  auto& w = world();
  cohort::RLock lock(w);
  cohort::SharedValue<int> inside(w);
  cohort::Barrier barrier(w);
  for (int i = 0; i < 200; ++i) {
    std::scoped_lock a(lock);
    std::scoped_lock b(lock);
    EXPECT_EQ(inside.fetch_add(1), 0);
    inside.fetch_sub(1);
  }
  barrier.wait();
}

TEST(Semaphore, BoundsConcurrency) {
  auto& w = world();
  cohort::Semaphore sem(w, 2);
  cohort::SharedValue<int> inside(w);
  cohort::SharedValue<int> most(w);
  cohort::Barrier barrier(w);
  for (int i = 0; i < 300; ++i) {
    sem.acquire();
    int now = inside.fetch_add(1) + 1;
    int seen = most.load();
    while (now > seen && !most.compare_exchange(seen, now)) {
    }
    if (i % 16 == 0) std::this_thread::yield();
    inside.fetch_sub(1);
    sem.release();
  }
  barrier.wait();
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(sem.value(), 2u);
  if (w.size() == 1) {
    EXPECT_TRUE(sem.try_acquire());
    EXPECT_TRUE(sem.try_acquire());
    EXPECT_FALSE(sem.try_acquire_for(std::chrono::milliseconds(10)));
    sem.release(2);
  }
  barrier.wait();
}

TEST(Event, WakesEveryWaiter) {
  auto& w = world();
  cohort::Event ready(w);
  cohort::SharedValue<int> payload(w);
  cohort::Barrier barrier(w);
  EXPECT_FALSE(ready.wait_for(std::chrono::milliseconds(1)));
  barrier.wait();
  if (w.rank() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // let the others fall asleep
    payload.store(42);
    ready.set();
  }
  ready.wait();
  EXPECT_TRUE(ready.is_set());
  EXPECT_EQ(payload.load(), 42);
  barrier.wait();
}

TEST(Condition, ConsumersSeeEveryItem) {
  auto& w = world();
  cohort::Lock lock(w);
  cohort::Condition cond(w, lock);
  cohort::SharedValue<int> available(w);
  cohort::SharedValue<int> taken(w);
  cohort::Barrier barrier(w);
  const int items = 50 * w.size();
  if (w.rank() == 0) {
    for (int i = 0; i < items; ++i) {
      std::scoped_lock guard(lock);
      available.store(available.load() + 1);
      cond.notify();
    }
  }
  if (w.rank() != 0 || w.size() == 1) {
    int consumers = w.size() == 1 ? 1 : w.size() - 1;
    int mine = items / consumers + (w.rank() <= items % consumers ? 1 : 0);
    if (w.size() == 1) mine = items;
    for (int i = 0; i < mine; ++i) {
      std::unique_lock guard(lock);
      cond.wait([&] { return available.load() > 0; });
      available.store(available.load() - 1);
      taken.fetch_add(1);
    }
  }
  barrier.wait();
  EXPECT_EQ(taken.load(), items);
  EXPECT_EQ(available.load(), 0);
  barrier.wait();
}

TEST(Barrier, ReturnsEachArrivalIndexOnce) {
  auto& w = world();
  cohort::Barrier barrier(w);
  cohort::SharedArray<int> seen(w, static_cast<std::size_t>(w.size()));
  for (int round = 0; round < 50; ++round) {
    int index = barrier.wait();
    ASSERT_GE(index, 0);
    ASSERT_LT(index, w.size());
    std::atomic_ref<int>(seen[static_cast<std::size_t>(index)]).fetch_add(1);
  }
  barrier.wait();
  for (int i = 0; i < w.size(); ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], 50);
  barrier.wait();
}

TEST(SharedObjects, SizeMismatchAcrossRanksIsAnError) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP() << "needs two ranks";
  cohort::Barrier barrier(w);
  barrier.wait();
  if (w.rank() == 0) {
    cohort::SharedArray<int> a(w, 10);
    barrier.wait();
  } else {
    barrier.wait();
    EXPECT_THROW(cohort::SharedArray<int>(w, 11), cohort::InvalidArgument);
  }
  barrier.wait();
}

}  // namespace
