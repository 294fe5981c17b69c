// cohort::Queue when ranks die: a consumer killed in the middle of a get, a producer killed in
// the middle of a put, and a consumer whose producers are all gone. Forked ranks (cohort::spawn),
// so that a death does not end the test job.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cohort/cohort.hpp>
#include <cohort/pipe.hpp>
#include <cohort/queue.hpp>
#include <cohort/spawn.hpp>
#include <cohort/sync.hpp>

#include <chrono>
#include <thread>

namespace cohort::detail {
extern void (*queue_claim_hook)(const char* op);  // runtime/patterns/queue.cpp
}

namespace {

using namespace std::chrono_literals;

void die_on_claim(const char*) { ::kill(::getpid(), SIGKILL); }

// Waits (bounded) until `pred` holds.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 20000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(500us);
  }
  return false;
}

TEST(QueueDeath, AConsumerKilledDuringGetLosesOnlyItsItem) {
  // The survivors report through their exit codes (results() fails as soon as one rank died).
  constexpr int kItems = 300;
  auto job = cohort::spawn(3, [](cohort::Communicator& w) {
    cohort::Queue<int> q(w, 4);
    cohort::Event go(w);
    if (w.rank() == 2) {
      cohort::detail::queue_claim_hook = &die_on_claim;
      (void)q.get();
    }
    if (w.rank() == 0) {
      q.put(0);
      if (!eventually([&] { return q.size() == 0; })) ::_exit(2);
      go.set();
      for (int i = 1; i < kItems; ++i) q.put(i);
      q.close();
      ::_exit(0);
    }
    go.wait();
    int expected = 1;
    while (auto v = q.next()) {
      if (*v != expected) ::_exit(4);  // FIFO, nothing duplicated or skipped
      ++expected;
    }
    ::_exit(expected == kItems && q.lost() == 1 ? 0 : 3);
  });
  ASSERT_TRUE(job.join(60s));
  auto codes = job.exit_codes();
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 0) << "the survivor did not get exactly the other items";
  EXPECT_EQ(codes[2], -SIGKILL);
}

TEST(QueueDeath, AProducerKilledDuringPutLeavesAHoleThatIsSkipped) {
  constexpr int kItems = 200;
  auto job = cohort::spawn(3, [](cohort::Communicator& w) {
    cohort::Queue<int> q(w, 8);
    cohort::Event go(w);
    if (w.rank() == 2) {
      cohort::detail::queue_claim_hook = &die_on_claim;
      q.put(-1);  // dies after claiming position 0, before publishing it
      ::_exit(9);
    }
    if (w.rank() == 0) {
      if (!eventually([&] { return q.size() == 1; })) ::_exit(2);  // position 0 is claimed
      go.set();
      for (int i = 0; i < kItems; ++i) q.put(i);
      q.close();
      ::_exit(0);
    }
    go.wait();
    int expected = 0;
    while (auto v = q.next()) {
      if (*v != expected) ::_exit(4);
      ++expected;
    }
    ::_exit(expected == kItems && q.lost() == 1 ? 0 : 3);
  });
  ASSERT_TRUE(job.join(60s));
  auto codes = job.exit_codes();
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 0) << "the consumer did not get exactly the live producer's items in order";
  EXPECT_EQ(codes[2], -SIGKILL);
}

TEST(QueueDeath, GetThrowsPeerLostWhenEveryProducerIsGone) {
  auto job = cohort::spawn(3, [](cohort::Communicator& w) {
    cohort::Queue<int> q(w, 8);
    if (w.rank() != 0) {
      q.put(w.rank());
      return 0;  // exits: nobody will put again
    }
    int sum = q.get() + q.get();  // items put before the producers left still arrive
    try {
      (void)q.get();
    } catch (const cohort::PeerLost&) {
      return sum == 3 ? 1 : -1;
    }
    return -2;
  });
  EXPECT_EQ(job.results<int>(), (std::vector<int>{1, 0, 0}));
}

TEST(QueueDeath, GetWithATimeoutReturnsWhenProducersAreGone) {
  auto job = cohort::spawn(2, [](cohort::Communicator& w) {
    cohort::Queue<int> q(w, 8);
    if (w.rank() == 1) return 0;
    std::this_thread::sleep_for(50ms);
    return q.try_get(100ms).has_value() ? -1 : 1;
  });
  EXPECT_EQ(job.results<int>(), (std::vector<int>{1, 0}));
}

TEST(PipeDeath, RecvThrowsPeerLostWhenThePeerIsGone) {
  auto job = cohort::spawn(2, [](cohort::Communicator& w) {
    cohort::Pipe pipe(w, 0, 1);
    if (w.rank() == 1) {
      pipe.send(41);
      return 0;  // exits without closing
    }
    int first = pipe.recv<int>();  // sent before the peer left: still delivered
    try {
      (void)pipe.recv<int>();
    } catch (const cohort::PeerLost& e) {
      return first == 41 && e.peer() == 1 ? 1 : -1;
    }
    return -2;
  });
  EXPECT_EQ(job.results<int>(), (std::vector<int>{1, 0}));
}

}  // namespace
