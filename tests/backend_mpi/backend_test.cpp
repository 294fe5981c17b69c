// The MPI backend's own behaviour (the shared tests in tests/p2p, tests/collectives,
// tests/patterns run on it too).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <cohort/cohort.hpp>
#include <cohort/pool.hpp>

#include "runtime/runtime.hpp"
#include "tests/support/rank_env.hpp"

namespace {

cohort::Communicator& world() { return cohort::testing::env().world(); }

bool shared_segment() { return cohort::detail::Runtime::current()->segment_shared(); }

TEST(BackendMpi, SpawnAndPoolSayTheyAreUnsupported) {
  try {
    auto job = cohort::spawn(2, [](cohort::Communicator&) {});
    ADD_FAILURE() << "spawn did not throw";
  } catch (const cohort::Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("not available on the MPI backend"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mpirun"), std::string::npos) << e.what();
  }
}

TEST(BackendMpi, SharedObjectsNeedOneNode) {
  auto& w = world();
  if (shared_segment()) {
    cohort::SharedValue<long> counter(w, 0);
    counter.fetch_add(w.rank() + 1);
    w.barrier();
    EXPECT_EQ(counter.load(), static_cast<long>(w.size()) * (w.size() + 1) / 2);
    w.barrier();
  } else {
    try {
      cohort::SharedArray<int> a(w, 16);
      ADD_FAILURE() << "SharedArray did not throw on a private segment";
    } catch (const cohort::Unsupported& e) {
      EXPECT_NE(std::string(e.what()).find("one node"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("SharedArray"), std::string::npos) << e.what();
    }
  }
}

// pool_map on one node uses the shared chunk counter; across nodes (a private segment) the root
// hands chunks out by message. Either way every item is computed once, results come back in
// order, failures are listed, and consecutive calls on one communicator do not mix.
TEST(BackendMpi, PoolMapOnOneNodeAndAcrossNodes) {
  auto& w = world();
  for (std::size_t n : {0u, 1u, 7u, 1000u}) {
    std::vector<int> items(n);
    for (std::size_t i = 0; i < n; ++i) items[i] = static_cast<int>(i);
    cohort::PoolOptions o;
    o.chunk_size = n == 1000 ? 0 : 1;
    auto squares = cohort::pool_map(w, items, [](int x) { return static_cast<long>(x) * x; }, o);
    if (w.rank() == 0) {
      ASSERT_EQ(squares.size(), n);
      for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(squares[i], static_cast<long>(i * i));
    }
  }
  std::vector<int> items(50);
  for (int i = 0; i < 50; ++i) items[static_cast<std::size_t>(i)] = i;
  try {
    (void)cohort::pool_map(w, items, [](int x) {
      if (x % 10 == 3) throw std::runtime_error("bad item");
      return x;
    });
    if (w.rank() == 0) ADD_FAILURE() << "pool_map did not report the failing items";
  } catch (const cohort::PoolError& e) {
    if (w.rank() == 0) {
      EXPECT_EQ(e.failures().size(), 5u) << e.what();  // the root has the list
    }
    EXPECT_NE(std::string(e.what()).find("5 of 50 items failed"), std::string::npos) << e.what();
  }
  cohort::PoolOptions everywhere;
  everywhere.everywhere = true;
  auto doubled = cohort::pool_map(w, items, [](int x) { return 2 * x; }, everywhere);
  ASSERT_EQ(doubled.size(), items.size());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(doubled[static_cast<std::size_t>(i)], 2 * i);
}

// Floating-point sums at every rank count equal the left fold x0 + x1 + ... bit for bit (MPI's
// own association differs from 3 ranks on), on every rank, blocking and through the chain.
TEST(BackendMpi, FloatingSumsAreTheLeftFold) {
  auto& w = world();
  auto x = [](int r, std::size_t i) { return 1.0 / (3.0 + r) + 1e16 * static_cast<double>((r + static_cast<int>(i)) % 2); };
  for (std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{20000}}) {
    std::vector<double> in(n), out(n);
    for (std::size_t i = 0; i < n; ++i) in[i] = x(w.rank(), i);
    w.allreduce(in, out, std::plus<>{});
    std::vector<double> scan(n);
    w.scan(in, scan, std::plus<>{});
    for (std::size_t i = 0; i < n; ++i) {
      double fold = x(0, i), prefix = x(0, i);
      for (int r = 1; r < w.size(); ++r) fold += x(r, i);
      for (int r = 1; r <= w.rank(); ++r) prefix += x(r, i);
      ASSERT_EQ(std::memcmp(&out[i], &fold, sizeof fold), 0) << "allreduce element " << i;
      ASSERT_EQ(std::memcmp(&scan[i], &prefix, sizeof prefix), 0) << "scan element " << i;
    }
  }
}

// A user operation in a non-blocking allreduce reaches its own function object even while other
// reductions with other operations run before it completes.
TEST(BackendMpi, IallreduceUserOperationAmongOtherReductions) {
  auto& w = world();
  // Decimal concatenation: associative, not commutative. {digits as a number, 10^count}.
  struct Digits {
    std::uint64_t value, scale;
  };
  auto concat = [](Digits a, Digits b) { return Digits{a.value * b.scale + b.value, a.scale * b.scale}; };
  Digits mine{static_cast<std::uint64_t>(w.rank() + 1), 10}, result{0, 1};
  auto req = w.iallreduce(mine, result, concat);
  auto sub = [](std::int64_t a, std::int64_t b) { return a - b; };
  std::int64_t diff = w.allreduce(static_cast<std::int64_t>(w.rank() + 1), sub);
  req.wait();
  std::uint64_t got = result.value;
  std::uint64_t expect = 0;
  std::int64_t expect_diff = 1;
  for (int r = 0; r < w.size(); ++r) expect = expect * 10 + static_cast<std::uint64_t>(r + 1);
  for (int r = 1; r < w.size(); ++r) expect_diff -= r + 1;
  EXPECT_EQ(got, expect);
  EXPECT_EQ(diff, expect_diff);
}

TEST(BackendMpi, CommunicatorsHaveDistinctContexts) {
  auto& w = world();
  auto d = w.dup();
  auto half = w.split(w.rank() % 2, w.rank());
  ASSERT_TRUE(half.has_value());
  EXPECT_NE(d.impl().context(), w.impl().context());
  EXPECT_NE(half->impl().context(), d.impl().context());
  // The same context on every member.
  auto ids = w.allgather(d.impl().context());
  for (auto id : ids) EXPECT_EQ(id, d.impl().context());
  // Messages on one do not match receives on the other.
  int right = (w.rank() + 1) % w.size(), left = (w.rank() + w.size() - 1) % w.size();
  d.send(1, right, cohort::Tag{5});
  w.send(2, right, cohort::Tag{5});
  EXPECT_EQ(w.recv<int>(left, cohort::Tag{5}), 2);
  EXPECT_EQ(d.recv<int>(left, cohort::Tag{5}), 1);
}

}  // namespace
