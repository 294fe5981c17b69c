// MPI's progress rule: a rank's outstanding non-blocking operations keep moving whatever it blocks
// in next (a collective, a Queue, another receive). Before the Waiter's background work, each of
// these programs deadlocked (the launcher's detector ended them with exit 125).
// Pairs: even rank 2k is a sender, odd rank 2k+1 its receiver; an odd rank count leaves the last
// rank only taking part in the collectives.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include <cohort/cohort.hpp>
#include <cohort/queue.hpp>
#include <cohort/sync.hpp>

#include "tests/support/rank_env.hpp"

namespace {

using cohort::Tag;

cohort::Communicator& world() { return cohort::testing::env().world(); }

// Larger than any pair's stream (1 MiB at 2 ranks): it cannot be sent without the receiver's help.
constexpr std::size_t kBig = std::size_t{6} << 20;

std::vector<std::uint32_t> payload(int seed) {
  std::vector<std::uint32_t> v(kBig / sizeof(std::uint32_t));
  std::iota(v.begin(), v.end(), static_cast<std::uint32_t>(seed) * 7919u);
  return v;
}

enum class Role { sender, receiver, none };

Role role(const cohort::Communicator& c) {
  if (c.rank() % 2 == 1) return Role::receiver;
  return c.rank() + 1 < c.size() ? Role::sender : Role::none;
}

TEST(ProgressRule, IsendMovesWhileItsSenderBlocksInCollectives) {
  auto& c = world();
  switch (role(c)) {
    case Role::sender: {
      auto data = payload(c.rank());
      cohort::Request r = c.isend(data, c.rank() + 1, Tag{1});
      c.barrier();
      c.barrier();  // the receiver arrives only after it has the whole message
      r.wait();
      break;
    }
    case Role::receiver: {
      c.barrier();
      auto got = c.recv<std::vector<std::uint32_t>>(c.rank() - 1, Tag{1});
      EXPECT_EQ(got, payload(c.rank() - 1));
      c.barrier();
      break;
    }
    case Role::none:
      c.barrier();
      c.barrier();
      break;
  }
}

TEST(ProgressRule, PostedIrecvDrainsWhileItsReceiverBlocksInACollective) {
  auto& c = world();
  switch (role(c)) {
    case Role::sender:
      c.send(payload(c.rank()), c.rank() + 1, Tag{2});  // needs the receiver to empty the stream
      c.allreduce(1, std::plus<>{});
      break;
    case Role::receiver: {
      std::vector<std::uint32_t> got;
      cohort::Request r = c.irecv(got, c.rank() - 1, Tag{2});
      int ranks = c.allreduce(1, std::plus<>{});
      EXPECT_EQ(ranks, c.size());
      r.wait();
      EXPECT_EQ(got, payload(c.rank() - 1));
      break;
    }
    case Role::none:
      c.allreduce(1, std::plus<>{});
      break;
  }
}

TEST(ProgressRule, IsendMovesWhileItsSenderWaitsOnAQueue) {
  auto& c = world();
  cohort::Queue<int> done(c, 16);  // collective
  switch (role(c)) {
    case Role::sender: {
      auto data = payload(c.rank() + 100);
      cohort::Request r = c.isend(data, c.rank() + 1, Tag{3});
      int from = done.get();  // some receiver says it has its message
      EXPECT_EQ(from % 2, 1);
      r.wait();
      break;
    }
    case Role::receiver: {
      auto got = c.recv<std::vector<std::uint32_t>>(c.rank() - 1, Tag{3});
      EXPECT_EQ(got, payload(c.rank() - 1 + 100));
      done.put(c.rank());
      break;
    }
    case Role::none:
      break;
  }
  c.barrier();
}

TEST(ProgressRule, IsendMovesWhileItsSenderWaitsForALock) {
  auto& c = world();
  cohort::Lock lock(c);  // collective
  const Role me = role(c);
  if (me == Role::receiver && c.rank() == 1) lock.lock();  // held until rank 1 has its message
  c.barrier();
  switch (me) {
    case Role::sender: {
      auto data = payload(c.rank() + 200);
      cohort::Request r = c.isend(data, c.rank() + 1, Tag{5});
      if (c.rank() == 0) {
        lock.lock();
        lock.unlock();
      }
      r.wait();
      break;
    }
    case Role::receiver: {
      auto got = c.recv<std::vector<std::uint32_t>>(c.rank() - 1, Tag{5});
      EXPECT_EQ(got, payload(c.rank() - 1 + 200));
      if (c.rank() == 1) lock.unlock();
      break;
    }
    case Role::none:
      break;
  }
  c.barrier();
}

TEST(ProgressRule, NonBlockingBarrierMovesWhileItsOwnerBlocksInARecv) {
  auto& c = world();
  if (c.size() < 2) GTEST_SKIP() << "needs two ranks";
  if (c.rank() == 0) {
    cohort::CollectiveRequest b = c.ibarrier();
    int v = c.recv<int>(1, Tag{4});  // rank 1 sends only after the barrier completed for it
    EXPECT_EQ(v, 42);
    b.wait();
  } else {
    c.ibarrier().wait();
    if (c.rank() == 1) c.send(42, 0, Tag{4});
  }
}

}  // namespace
