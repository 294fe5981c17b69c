// Non-blocking collectives: ibarrier, ibroadcast, iallreduce, several in flight, interleaved with
// blocking collectives on the same and on other communicators.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <vector>

#include <cohort/cohort.hpp>

#include "tests/support/rank_env.hpp"

namespace {

cohort::Communicator& world() { return cohort::testing::env().world(); }

TEST(NonBlocking, IbarrierCompletesAndTestPolls) {
  auto& w = world();
  for (int k = 0; k < 50; ++k) {
    auto req = w.ibarrier();
    if (k % 2 == 0) {
      while (!req.test()) {
      }
    } else {
      req.wait();
    }
    EXPECT_FALSE(req.active());
  }
}

TEST(NonBlocking, IbroadcastEveryRootAndSize) {
  auto& w = world();
  for (std::size_t n : {0ul, 1ul, 10ul, 11ul, 50000ul}) {
    for (int root = 0; root < w.size(); ++root) {
      std::vector<std::int64_t> v(n, w.rank() == root ? root * 7 + 1 : -1);
      auto req = w.ibroadcast(v, root);
      // A blocking collective on the same communicator while the broadcast is in flight.
      int sum = w.allreduce(1, std::plus<>{});
      EXPECT_EQ(sum, w.size());
      req.wait();
      for (auto x : v) ASSERT_EQ(x, root * 7 + 1) << "n=" << n << " root=" << root;
    }
  }
  double x = w.rank() == 0 ? 2.5 : 0.0;
  auto req = w.ibroadcast(x, 0);
  req.wait();
  EXPECT_EQ(x, 2.5);
}

TEST(NonBlocking, IallreduceSeveralInFlight) {
  auto& w = world();
  for (std::size_t n : {1ul, 10ul, 30000ul}) {
    std::vector<double> a(n), b(n), ra(n), rb(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = w.rank() + 0.25 * static_cast<double>(i);
      b[i] = -w.rank() * 2.0;
    }
    auto r1 = w.iallreduce(a, ra, std::plus<>{});
    auto r2 = w.iallreduce(b, rb, cohort::min);
    auto dup = w.dup();  // a blocking collective (and a new communicator) in between
    dup.barrier();
    r2.wait();
    r1.wait();
    double rank_sum = w.size() * (w.size() - 1) / 2.0;
    for (std::size_t i = 0; i < n; ++i) {
      double e = 0;
      for (int r = 0; r < w.size(); ++r) e += r + 0.25 * static_cast<double>(i);
      ASSERT_EQ(ra[i], e);
      ASSERT_EQ(rb[i], -(w.size() - 1) * 2.0);
    }
    (void)rank_sum;
  }
  std::int64_t total = 0;
  auto req = w.iallreduce(static_cast<std::int64_t>(w.rank()), total, std::plus<>{});
  while (!req.test()) {
  }
  EXPECT_EQ(total, static_cast<std::int64_t>(w.size()) * (w.size() - 1) / 2);
}

TEST(NonBlocking, InFlightAcrossManyBlockingCollectives) {
  // More blocking calls than a rank has main lines (16): their publications wait for the
  // readers of the pending ones, which the blocking waits advance.
  auto& w = world();
  std::vector<int> v(10, w.rank() == 0 ? 42 : 0);
  std::vector<double> big(20000, w.rank() == w.size() - 1 ? 1.5 : 0.0);
  auto a = w.ibroadcast(v, 0);
  auto b = w.ibroadcast(big, w.size() - 1);
  auto c = w.ibarrier();
  for (int k = 0; k < 40; ++k) {
    EXPECT_EQ(w.allreduce(1, std::plus<>{}), w.size());
    int x = w.rank() == k % w.size() ? k : -1;
    w.broadcast(x, k % w.size());
    EXPECT_EQ(x, k);
  }
  c.wait();
  b.wait();
  a.wait();
  EXPECT_EQ(v[9], 42);
  EXPECT_EQ(big[19999], 1.5);
}

TEST(NonBlocking, RequestDestroyedWhileActiveCompletes) {
  auto& w = world();
  std::vector<int> v(1000, w.rank() == 0 ? 9 : 0);
  {
    auto req = w.ibroadcast(v, 0);
  }  // the destructor waits
  EXPECT_EQ(v[999], 9);
  w.barrier();
}

}  // namespace
