// cohort::Queue at several rank counts (1 2 3 4 8, oversubscribed on 2 cores): exactly-once
// delivery, per-producer FIFO order, bounded blocking, timeouts, close, task_done/join and
// serialized item types.
#include <gtest/gtest.h>

#include <cohort/cohort.hpp>
#include <cohort/queue.hpp>
#include <cohort/shared.hpp>
#include <cohort/sync.hpp>

#include <cereal/types/map.hpp>
#include <fmt/format.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/rank_env.hpp"

namespace {

using namespace std::chrono_literals;

cohort::Communicator& world() { return cohort::testing::env().world(); }

struct Item {
  int producer;
  int seq;
};

struct Particle {  // cereal
  std::string name;
  std::vector<double> pos;
  std::map<int, std::string> tags;
  template <class A>
  void serialize(A& ar) {
    ar(name, pos, tags);
  }
};

struct Cell {  // Boost.Serialization
  int id = 0;
  std::string label;
  template <class A>
  void serialize(A& ar, unsigned) {
    ar & id & label;
  }
};

// Roles for producer/consumer tests: with one rank it does both (interleaved by the caller).
bool is_producer(int r, int n) { return n == 1 || r % 2 == 0; }
bool is_consumer(int r, int n) { return n == 1 || r % 2 == 1; }
int producers(int n) { return n == 1 ? 1 : (n + 1) / 2; }

TEST(Queue, SingleConsumerGetsEveryItemOnceInPerProducerOrder) {
  auto& w = world();
  const int n = w.size();
  const int kItems = 3000;
  cohort::Queue<Item> q(w, 16);
  if (n == 1) {
    for (int i = 0; i < kItems; ++i) {
      q.put(Item{0, i});
      Item it = q.get();
      ASSERT_EQ(it.seq, i);
    }
    return;
  }
  if (w.rank() == 0) {
    std::vector<int> next(static_cast<std::size_t>(n), 0);
    for (int i = 0; i < kItems * (n - 1); ++i) {
      Item it = q.get();
      ASSERT_GE(it.producer, 1);
      ASSERT_LT(it.producer, n);
      ASSERT_EQ(it.seq, next[static_cast<std::size_t>(it.producer)]) << "from rank " << it.producer;
      ++next[static_cast<std::size_t>(it.producer)];
    }
    EXPECT_FALSE(q.try_get().has_value());
  } else {
    for (int i = 0; i < kItems; ++i) q.put(Item{w.rank(), i});
  }
  w.barrier();
}

TEST(Queue, ManyProducersManyConsumersExactlyOnceWithClose) {
  auto& w = world();
  const int n = w.size();
  const int kItems = 2000;
  const int np = producers(n);
  cohort::Queue<Item> q(w, 64);
  cohort::SharedArray<int> seen(w, static_cast<std::size_t>(n * kItems));
  cohort::SharedValue<int> producers_left(w, np);
  const int r = w.rank();
  std::vector<int> last(static_cast<std::size_t>(n), -1);  // per-producer order seen by this consumer
  auto consume = [&](const Item& it) {
    ASSERT_TRUE(is_producer(it.producer, n));
    ASSERT_GT(it.seq, last[static_cast<std::size_t>(it.producer)]);  // FIFO per producer
    last[static_cast<std::size_t>(it.producer)] = it.seq;
    seen.atomic(static_cast<std::size_t>(it.producer * kItems + it.seq)).fetch_add(1);
  };
  if (n == 1) {
    for (int i = 0; i < kItems; ++i) {
      q.put(Item{0, i});
      if (i % 3 == 2) {
        while (auto it = q.try_get()) consume(*it);
      }
    }
    q.close();
    while (auto it = q.next()) consume(*it);
  } else {
    if (is_producer(r, n)) {
      for (int i = 0; i < kItems; ++i) q.put(Item{r, i});
      if (producers_left.fetch_sub(1) == 1) q.close();  // the last producer closes
    }
    if (is_consumer(r, n)) {
      while (auto it = q.next()) consume(*it);
      EXPECT_THROW((void)q.get(), cohort::QueueClosed);
    }
  }
  w.barrier();
  EXPECT_TRUE(q.closed());
  EXPECT_TRUE(q.drained());
  if (r == 0) {
    for (int p = 0; p < n; ++p) {
      for (int i = 0; i < kItems; ++i) {
        int expected = is_producer(p, n) ? 1 : 0;
        ASSERT_EQ(seen[static_cast<std::size_t>(p * kItems + i)], expected) << "item " << p << "/" << i;
      }
    }
    EXPECT_EQ(q.lost(), 0u);
  }
  w.barrier();
}

TEST(Queue, PoisonPillsEndTheConsumers) {
  auto& w = world();
  const int n = w.size();
  cohort::Queue<long> q(w, n == 1 ? 1024 : 8);  // one rank puts everything before getting
  cohort::SharedValue<long> sum(w);
  const long kItems = 500;
  if (w.rank() == 0) {
    for (long i = 1; i <= kItems; ++i) q.put(i);
    for (int c = 0; c < std::max(1, n - 1); ++c) q.put(-1);  // one pill per consumer
  }
  if (n == 1 || w.rank() != 0) {
    for (;;) {
      long v = q.get();
      if (v < 0) break;
      sum.fetch_add(v);
    }
  }
  w.barrier();
  EXPECT_EQ(sum.load(), kItems * (kItems + 1) / 2);
  w.barrier();
}

TEST(Queue, BoundedNonBlockingAndTimedOutcomes) {
  auto& w = world();
  cohort::Queue<int> q(w, 4);
  if (w.rank() == 0) {
    EXPECT_EQ(q.maxsize(), 4u);
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.try_get().has_value());
    EXPECT_FALSE(q.try_get(5ms).has_value());
    EXPECT_THROW((void)q.get(10ms), cohort::QueueEmpty);
    EXPECT_THROW((void)q.get(10ms), cohort::TimeoutError);  // QueueEmpty is a TimeoutError
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.try_put(i));
    EXPECT_TRUE(q.full());
    EXPECT_EQ(q.size(), 4u);
    EXPECT_FALSE(q.try_put(99));
    EXPECT_FALSE(q.try_put(99, 5ms));
    EXPECT_THROW(q.put(99, 10ms), cohort::QueueFull);
    EXPECT_EQ(q.get(), 0);
    EXPECT_TRUE(q.try_put(4));
    for (int i = 1; i <= 4; ++i) EXPECT_EQ(q.get(1s), i);
    EXPECT_TRUE(q.empty());
  }
  w.barrier();
}

TEST(Queue, PutBlocksWhileFullUntilAConsumerGets) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP() << "needs a second rank";
  cohort::Queue<int> q(w, 2);
  cohort::SharedValue<int> got(w);
  cohort::Barrier barrier(w);
  if (w.rank() == 0) {
    q.put(1);
    q.put(2);
    barrier.wait();
    q.put(3);  // blocks until rank 1 has taken one
    EXPECT_EQ(got.load(), 1) << "put returned while the queue was still full";
  } else if (w.rank() == 1) {
    barrier.wait();
    std::this_thread::sleep_for(20ms);  // let rank 0 block (the check holds either way)
    got.store(1);
    EXPECT_EQ(q.get(), 1);
    EXPECT_EQ(q.get(), 2);
    EXPECT_EQ(q.get(), 3);
  } else {
    barrier.wait();
  }
  w.barrier();
  EXPECT_TRUE(q.empty());
  w.barrier();
}

TEST(Queue, CloseDrainsThenEnds) {
  auto& w = world();
  cohort::Queue<int> q(w, 16);
  if (w.rank() == 0) {
    for (int i = 1; i <= 10; ++i) q.put(i);
    q.close();
    q.close();  // harmless
    EXPECT_THROW(q.put(11), cohort::QueueClosed);
    EXPECT_THROW((void)q.try_put(11), cohort::QueueClosed);
  }
  w.barrier();
  EXPECT_TRUE(q.closed());
  int sum = 0;
  while (auto v = q.next()) sum += *v;
  int total = w.allreduce(sum, std::plus<>());
  EXPECT_EQ(total, 55);
  EXPECT_FALSE(q.try_get().has_value());
  EXPECT_THROW((void)q.get(), cohort::QueueClosed);
  EXPECT_THROW((void)q.get(10ms), cohort::QueueClosed);
  EXPECT_TRUE(q.drained());
  w.barrier();
}

TEST(Queue, TaskDoneAndJoin) {
  auto& w = world();
  const int n = w.size();
  cohort::Queue<int> q(w, 32);
  const int kItems = 200;
  if (w.rank() == 0) {
    q.put(7);
    EXPECT_FALSE(q.join(10ms));  // one unfinished item
    EXPECT_EQ(q.get(), 7);
    EXPECT_FALSE(q.join(5ms));  // got, not yet done
    q.task_done();
    EXPECT_TRUE(q.join(1s));
    EXPECT_THROW(q.task_done(), cohort::Error);  // more task_done than items
  }
  w.barrier();
  cohort::SharedValue<int> done(w);
  if (w.rank() == 0) {
    for (int i = 0; i < kItems; ++i) {
      q.put(i);
      if (n == 1) {
        (void)q.get();
        done.fetch_add(1);
        q.task_done();
      }
    }
    q.join();
    EXPECT_EQ(done.load(), kItems);  // join returned only after every task_done
    q.close();
  } else {
    while (auto v = q.next()) {
      done.fetch_add(1);
      q.task_done();
    }
  }
  w.barrier();
}

TEST(Queue, StringsVectorsCerealAndBoostItems) {
  auto& w = world();
  const int n = w.size();
  cohort::Queue<std::string> strings(w, 8);
  cohort::Queue<std::vector<double>> vectors(w, 8);
  cohort::Queue<Particle> particles(w, 8);
  cohort::Queue<Cell> cells(w, 8);
  const int kItems = 60;
  auto text = [](int p, int i) {
    // 0 .. ~5 KiB: inline, one chunk, several chunks.
    std::string s = fmt::format("{}:", p);
    s.append(static_cast<std::size_t>((i * 97) % 5000), static_cast<char>('a' + i % 26));
    return s;
  };
  const int r = w.rank();
  const int consumer = n == 1 ? 0 : 1;
  auto check_from = [&](int p, int i) {
    std::string s = strings.get();
    EXPECT_EQ(s, text(p, i));
    auto v = vectors.get();
    ASSERT_EQ(v.size(), static_cast<std::size_t>(i * 13));
    if (!v.empty()) {
      EXPECT_EQ(v.back(), p + i * 0.5);
    }
    Particle pa = particles.get();
    EXPECT_EQ(pa.name, fmt::format("p{}", i));
    EXPECT_EQ(pa.tags.at(i), text(p, i));
    Cell c = cells.get();
    EXPECT_EQ(c.id, i);
    EXPECT_EQ(c.label, fmt::format("cell {}", i));
  };
  if (r == 0) {
    for (int i = 0; i < kItems; ++i) {
      strings.put(text(0, i));
      vectors.put(std::vector<double>(static_cast<std::size_t>(i * 13), 0 + i * 0.5));
      particles.put(Particle{fmt::format("p{}", i), {1.0, 2.0, 3.0}, {{i, text(0, i)}}});
      cells.put(Cell{i, fmt::format("cell {}", i)});
      if (n == 1) {
        check_from(0, i);
      }
    }
  } else if (r == consumer) {
    for (int i = 0; i < kItems; ++i) check_from(0, i);
  }
  w.barrier();
}

TEST(Queue, LargeItemsWaitForPoolSpace) {
  auto& w = world();
  const int n = w.size();
  // A 8 KiB pool holds two 3 KiB items at a time; many more pass through it.
  cohort::Queue<std::vector<int>> q(w, cohort::QueueOptions{16, 8 << 10});
  const int kItems = 100;
  const int r = w.rank();
  auto item = [](int i) { return std::vector<int>(768, i); };
  if (r == 0) {
    EXPECT_THROW(q.put(std::vector<int>(5000, 1)), cohort::InvalidArgument);  // 20 KB > pool
    for (int i = 0; i < kItems; ++i) {
      q.put(item(i));
      if (n == 1) {
        EXPECT_EQ(q.get(), item(i));
      }
    }
  } else if (r == n - 1) {
    for (int i = 0; i < kItems; ++i) ASSERT_EQ(q.get(), item(i));
  }
  w.barrier();
}

TEST(Queue, EveryRankCreatesTheSameQueueAndMismatchIsAnError) {
  auto& w = world();
  cohort::Queue<int> a(w, 10);
  cohort::Queue<int> b(w, 10);
  if (w.rank() == 0) {
    a.put(1);
    b.put(2);
  }
  w.barrier();
  if (w.rank() == w.size() - 1) {
    EXPECT_EQ(a.get(), 1);
    EXPECT_EQ(b.get(), 2);
  }
  EXPECT_THROW(cohort::Queue<int>(w, 0), cohort::InvalidArgument);
  w.barrier();
}

}  // namespace
