// pool_map & co over the ranks of a job (run by cohortrun at several rank counts).
#include <gtest/gtest.h>

#include <cohort/cohort.hpp>
#include <cohort/pool.hpp>
#include <cohort/shared.hpp>

#include <numeric>
#include <set>

#include "tests/support/rank_env.hpp"

namespace {

cohort::Communicator& world() { return cohort::testing::env().world(); }

struct Particle {  // a cereal type
  std::string name;
  double mass = 0;
  template <class A>
  void serialize(A& ar) {
    ar(name, mass);
  }
};

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(PoolMap, ResultsInInputOrderAtTheRootForEveryChunkSize) {
  auto& w = world();
  for (std::size_t chunk : {0, 1, 7, 1000}) {
    for (int n : {0, 1, 5, 1000}) {
      cohort::PoolOptions o;
      o.chunk_size = chunk;
      auto xs = iota(n);
      auto r = cohort::pool_map(w, xs, [](int x) { return static_cast<long>(x) * x; }, o);
      if (w.rank() == 0) {
        ASSERT_EQ(r.size(), static_cast<std::size_t>(n)) << "chunk " << chunk;
        for (int i = 0; i < n; ++i) ASSERT_EQ(r[static_cast<std::size_t>(i)], static_cast<long>(i) * i);
      } else {
        EXPECT_TRUE(r.empty());
      }
    }
  }
}

TEST(PoolMap, EveryItemRunsExactlyOnceAndEveryRankWorks) {
  auto& w = world();
  cohort::SharedArray<int> runs(w, 5000);
  cohort::SharedArray<int> by_rank(w, static_cast<std::size_t>(w.size()));
  cohort::PoolOptions o;
  o.chunk_size = 3;
  auto xs = iota(5000);
  (void)cohort::pool_map(w, xs, [&](int x) {
    std::atomic_ref<int>(runs[static_cast<std::size_t>(x)]).fetch_add(1);
    std::atomic_ref<int>(by_rank[static_cast<std::size_t>(w.rank())]).fetch_add(1);
    return x;
  }, o);
  w.barrier();
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(runs[static_cast<std::size_t>(i)], 1) << "item " << i;
  int total = 0;
  for (int r = 0; r < w.size(); ++r) total += by_rank[static_cast<std::size_t>(r)];
  EXPECT_EQ(total, 5000);
  w.barrier();
}

TEST(PoolMap, EverywhereAndAnotherRoot) {
  auto& w = world();
  cohort::PoolOptions o;
  o.everywhere = true;
  o.root = w.size() - 1;
  auto r = cohort::pool_map(w, iota(300), [](int x) { return x + 1; }, o);
  ASSERT_EQ(r.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], i + 1);
}

TEST(PoolMap, SerializedResultsAndStarmap) {
  auto& w = world();
  auto names = cohort::pool_map(w, iota(50), [](int x) { return std::string(static_cast<std::size_t>(x % 5), 'a'); });
  auto particles = cohort::pool_map(w, iota(50), [](int x) { return Particle{"p" + std::to_string(x), x * 0.5}; });
  std::vector<std::tuple<int, double>> pairs;
  for (int i = 0; i < 40; ++i) pairs.emplace_back(i, i * 0.25);
  auto sums = cohort::pool_starmap(w, pairs, [](int a, double b) { return a + b; });
  if (w.rank() == 0) {
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ(names[static_cast<std::size_t>(i)].size(), static_cast<std::size_t>(i % 5));
      EXPECT_EQ(particles[static_cast<std::size_t>(i)].name, "p" + std::to_string(i));
      EXPECT_EQ(particles[static_cast<std::size_t>(i)].mass, i * 0.5);
    }
    for (int i = 0; i < 40; ++i) EXPECT_EQ(sums[static_cast<std::size_t>(i)], i + i * 0.25);
  }
}

TEST(PoolMap, FailingItemsAreListedOnEveryRankAndTheRestComplete) {
  auto& w = world();
  cohort::SharedValue<int> ran(w);
  cohort::PoolOptions o;
  o.chunk_size = 4;
  try {
    (void)cohort::pool_map(w, iota(100), [&](int x) {
      ran.fetch_add(1);
      if (x % 30 == 7) throw std::runtime_error("bad input " + std::to_string(x));
      return x;
    }, o);
    FAIL() << "expected PoolError";
  } catch (const cohort::PoolError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("4 of 100 items failed"), std::string::npos) << what;
    EXPECT_NE(what.find("item 67: bad input 67"), std::string::npos) << what;
    if (w.rank() == 0) {
      ASSERT_EQ(e.failures().size(), 4u);
      EXPECT_EQ(e.failures()[0].first, 7u);
      EXPECT_EQ(e.failures()[3].second, "bad input 97");
    }
  }
  w.barrier();
  EXPECT_EQ(ran.load(), 100);  // the failures did not stop the others
  w.barrier();
}

TEST(PoolMap, OutcomesGiveEachItemItsValueOrError) {
  auto& w = world();
  cohort::PoolOptions o;
  o.everywhere = true;
  auto out = cohort::pool_map_outcomes(w, iota(20), [](int x) {
    if (x == 3) throw std::invalid_argument("three");
    return x * 2;
  }, o);
  ASSERT_EQ(out.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    if (i == 3) {
      EXPECT_FALSE(out[3].ok());
      EXPECT_EQ(out[3].error, "three");
    } else {
      ASSERT_TRUE(out[static_cast<std::size_t>(i)].ok());
      EXPECT_EQ(*out[static_cast<std::size_t>(i)].value, i * 2);
    }
  }
}

TEST(PoolImap, OrderedStreamsInInputOrderUnorderedEachOnce) {
  auto& w = world();
  cohort::PoolOptions o;
  o.chunk_size = 2;
  std::vector<std::size_t> order;
  cohort::pool_imap(w, iota(200), [](int x) { return x * 3; },
                    [&](std::size_t i, const int& v) {
                      EXPECT_EQ(v, static_cast<int>(i) * 3);
                      order.push_back(i);
                    }, o);
  std::multiset<std::size_t> seen;
  cohort::pool_imap_unordered(w, iota(200), [](int x) { return x; },
                              [&](std::size_t i, const int& v) {
                                EXPECT_EQ(v, static_cast<int>(i));
                                seen.insert(i);
                              }, o);
  if (w.rank() == 0) {
    ASSERT_EQ(order.size(), 200u);
    for (std::size_t i = 0; i < 200; ++i) EXPECT_EQ(order[i], i);
    ASSERT_EQ(seen.size(), 200u);
    for (std::size_t i = 0; i < 200; ++i) EXPECT_EQ(seen.count(i), 1u);
  } else {
    EXPECT_TRUE(order.empty());
    EXPECT_TRUE(seen.empty());
  }
}

TEST(PoolMap, ManyCallsInARowAndAProgressBar) {
  auto& w = world();
  for (int call = 0; call < 30; ++call) {
    cohort::PoolOptions o;
    o.chunk_size = static_cast<std::size_t>(call % 4);
    o.progress = call == 29;
    auto r = cohort::pool_map(w, iota(call * 7), [call](int x) { return x + call; }, o);
    if (w.rank() == 0) {
      ASSERT_EQ(r.size(), static_cast<std::size_t>(call * 7));
      for (int i = 0; i < call * 7; ++i) ASSERT_EQ(r[static_cast<std::size_t>(i)], i + call);
    }
  }
}

TEST(PoolMap, ABadRootIsAnError) {
  cohort::PoolOptions o;
  o.root = world().size();
  EXPECT_THROW((void)cohort::pool_map(world(), iota(3), [](int x) { return x; }, o),
               cohort::InvalidArgument);
}

}  // namespace
