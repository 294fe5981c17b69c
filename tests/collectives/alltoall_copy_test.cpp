// Alltoalls whose blocks average 32 KiB and more: every rank reads the blocks it receives
// straight out of their senders' send buffers (process_vm_readv, alltoall_copy in
// runtime/collectives/collectives.cpp). Checks every received byte against what its sender
// computed, at block sizes around the threshold, for alltoall and alltoallv (uneven and empty
// blocks, one large block alone), on world and on sub-communicators from split, at 2, 3, 4 and 8
// ranks (8 on 2 cores: oversubscribed); that the blocks really cross address spaces (the
// engine's count) exactly when the rule says so; and that a rank that does not offer, or a read
// the kernel refuses on any rank at any point, still gives every rank every block (the staged
// exchange). Under COHORT_CMA=0 (ctest alltoall_copy_test.np3.no_cma) nothing crosses.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include <cohort/cohort.hpp>

#include "tests/collectives/pair_support.hpp"

namespace {

using cohort::testing::cross_memory_enabled_by_environment;
using cohort::testing::engine;

constexpr std::size_t kMinBytes = 32 * 1024;  // kAlltoallCopyMinBytes

/// 12 bytes, so that block boundaries fall inside pages.
struct Triple {
  std::uint32_t a, b, c;
  bool operator==(const Triple&) const = default;
};

/// Element i of the block that rank `from` sends rank `to` in round `seed`.
Triple element(int from, int to, std::size_t i, int seed) {
  const auto s = static_cast<std::uint32_t>(seed * 7919 + from * 131 + to * 17);
  const auto k = static_cast<std::uint32_t>(i);
  return {k * 2654435761u + s, k ^ (s * 40503u), k * 97u + s + 3u};
}

/// The communicators a test runs on: world, and at 4 ranks or more the halves of a split (by
/// rank parity, so that a sub-communicator's ranks are not world's).
std::vector<cohort::Communicator*> communicators() {
  static std::optional<cohort::Communicator> half;
  auto& w = cohort::testing::env().world();
  std::vector<cohort::Communicator*> v{&w};
  if (w.size() >= 4) {
    if (!half) half = w.split(w.rank() % 2, -w.rank());
    if (!half) throw std::logic_error("split with a color returned no communicator");
    v.push_back(&*half);
  }
  return v;
}

/// An alltoall of `count` Triples a block on c; checks every element on every rank.
void check_alltoall(cohort::Communicator& c, std::size_t count, int seed) {
  const auto n = static_cast<std::size_t>(c.size());
  std::vector<Triple> send(count * n), recv(count * n, Triple{0, 0, 0});
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < count; ++i) {
      send[j * count + i] = element(c.rank(), static_cast<int>(j), i, seed);
    }
  }
  c.alltoall(send, recv);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < count; ++i) {
      ASSERT_EQ(recv[j * count + i], element(static_cast<int>(j), c.rank(), i, seed))
          << "count=" << count << " from rank " << j << " element " << i << " (rank " << c.rank()
          << " of " << c.size() << ", seed " << seed << ")";
    }
  }
}

/// An alltoallv on c where rank i sends amount(i, j) Triples to rank j; checks every element.
/// Returns the bytes moved between different ranks in the whole call.
template <class Amount>
std::uint64_t check_alltoallv(cohort::Communicator& c, Amount&& amount, int seed) {
  const auto n = static_cast<std::size_t>(c.size());
  const auto me = static_cast<std::size_t>(c.rank());
  std::vector<std::size_t> sc(n), rc(n);
  std::uint64_t moved = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i != j) moved += amount(i, j) * sizeof(Triple);
    }
  }
  for (std::size_t j = 0; j < n; ++j) {
    sc[j] = amount(me, j);
    rc[j] = amount(j, me);
  }
  std::vector<Triple> send(std::accumulate(sc.begin(), sc.end(), std::size_t{0}));
  std::vector<Triple> recv(std::accumulate(rc.begin(), rc.end(), std::size_t{0}), Triple{0, 0, 0});
  std::size_t k = 0;
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < sc[j]; ++i) send[k++] = element(c.rank(), static_cast<int>(j), i, seed);
  }
  c.alltoallv(send, sc, recv, rc);
  k = 0;
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < rc[j]; ++i, ++k) {
      if (!(recv[k] == element(static_cast<int>(j), c.rank(), i, seed))) {
        ADD_FAILURE() << "alltoallv: element " << i << " from rank " << j << " (rank " << c.rank()
                      << " of " << c.size() << ", seed " << seed << ")";
        return moved;
      }
    }
  }
  return moved;
}

/// Skips the rest of a test whose copies the kernel refused (seccomp, Yama, a non-dumpable
/// process): only the staged fallback was checked then.
#define SKIP_IF_REFUSED_BY_KERNEL()                                                           \
  if (cross_memory_enabled_by_environment() && !engine().cross_memory().on()) {               \
    GTEST_SKIP() << "the kernel refused cross-memory attach here: only the staged exchange " \
                    "was checked";                                                            \
  }

TEST(AlltoallCopy, BlocksAroundTheThresholdCrossExactlyWhenLargeEnough) {
  const bool on = cross_memory_enabled_by_environment();
  int seed = 0;
  for (cohort::Communicator* c : communicators()) {
    if (c->size() == 1) continue;
    constexpr std::size_t kMin = (kMinBytes + sizeof(Triple) - 1) / sizeof(Triple);
    for (std::size_t count : {kMin - 1, kMin, kMin + 1, std::size_t{20011}, std::size_t{100003}}) {
      for (int round = 0; round < 2; ++round) {
        const std::uint64_t before = engine().cross_memory_calls();
        check_alltoall(*c, count, ++seed);
        SKIP_IF_REFUSED_BY_KERNEL();
        const bool crosses = on && count * sizeof(Triple) >= kMinBytes;
        EXPECT_EQ(engine().cross_memory_calls(), before + (crosses ? 1 : 0))
            << "count=" << count << " on a communicator of " << c->size();
      }
    }
  }
}

TEST(AlltoallCopy, AlltoallvCrossesWhenTheAverageBlockIsLargeEnough) {
  const bool on = cross_memory_enabled_by_environment();
  int seed = 100;
  for (cohort::Communicator* c : communicators()) {
    const auto n = static_cast<std::size_t>(c->size());
    if (n == 1) continue;
    const std::size_t pairs = n * (n - 1);
    // The threshold's average, in one block from rank 0 to rank 1 and nothing else: just
    // reached, and just missed.
    const std::size_t threshold = kMinBytes * pairs;
    const std::size_t reached = (threshold + sizeof(Triple) - 1) / sizeof(Triple);
    const std::size_t missed = (threshold - 1) / sizeof(Triple);
    std::vector<std::function<std::size_t(std::size_t, std::size_t)>> shapes{
        [](std::size_t i, std::size_t j) { return ((i * 3 + j * 5) % 7) * 2011; },
        [](std::size_t i, std::size_t j) { return ((i + j) % 3) * 4001; },
        [&](std::size_t i, std::size_t j) { return i == 0 && j == 1 ? reached : 0; },
        [&](std::size_t i, std::size_t j) { return i == 0 && j == 1 ? missed : 0; },
        [](std::size_t i, std::size_t j) { return i == j ? 50000 : 0; },  // nothing between ranks
    };
    for (auto& shape : shapes) {
      const std::uint64_t before = engine().cross_memory_calls();
      const std::uint64_t moved = check_alltoallv(*c, shape, ++seed);
      SKIP_IF_REFUSED_BY_KERNEL();
      const bool crosses = on && moved >= threshold;
      EXPECT_EQ(engine().cross_memory_calls(), before + (crosses ? 1 : 0))
          << "moved=" << moved << " on a communicator of " << n;
    }
  }
}

TEST(AlltoallCopy, ARankThatDoesNotOfferGetsEverythingStaged) {
  auto& w = cohort::testing::env().world();
  if (w.size() == 1) GTEST_SKIP();
  for (int declining = 0; declining < w.size(); ++declining) {
    cohort::testing::expect_staged_when_one_declines(w, declining, [&] {
      check_alltoall(w, 30011, 200 + declining);
      (void)check_alltoallv(w, [](std::size_t i, std::size_t j) { return (i + 2 * j) % 4 * 9001; },
                            300 + declining);
    });
  }
}

TEST(AlltoallCopy, ARefusedReadAnywhereStagesEverythingAndNothingIsLost) {
  auto& w = cohort::testing::env().world();
  if (w.size() == 1) GTEST_SKIP();
  if (!cross_memory_enabled_by_environment()) GTEST_SKIP() << "COHORT_CMA=0: no read is attempted";
  int seed = 400;
  // Each rank reads one block from each peer (n - 1 reads): refuse the first or the last read
  // on one rank at a time.
  for (int refusing = 0; refusing < w.size(); ++refusing) {
    for (int after : {0, w.size() - 2}) {
      if (w.rank() == refusing) engine().cross_memory().inject_failures(1, after);
      const std::uint64_t before = engine().cross_memory_calls();
      check_alltoall(w, 12007, ++seed);
      EXPECT_EQ(engine().cross_memory_calls(), before) << "rank " << refusing << " was refused";
      EXPECT_EQ(engine().cross_memory().on(), w.rank() != refusing)
          << "a refusal turns the offer off on its rank only";
      engine().cross_memory().inject_failures(0);
      engine().cross_memory().allow(true);
      w.barrier();
      check_alltoall(w, 12007, ++seed);  // and the next call crosses again
      EXPECT_EQ(engine().cross_memory_calls(), before + 1);
    }
  }
}

TEST(AlltoallCopy, InterleavedWithPointToPointAndStagedAlltoalls) {
  // Copied and staged alltoalls alternate (the staged ones' chunk numbers and the copied ones'
  // main lines interleave) while point-to-point messages are in flight on the same communicator.
  for (cohort::Communicator* c : communicators()) {
    const int n = c->size();
    if (n == 1) continue;
    const int right = (c->rank() + 1) % n;
    const int left = (c->rank() + n - 1) % n;
    for (int i = 0; i < 12; ++i) {
      std::vector<double> mine(5000, c->rank() + i), theirs(5000);
      auto req = c->irecv(std::span(theirs), left, cohort::Tag{i});
      auto sent = c->isend(std::span<const double>(mine), right, cohort::Tag{i});
      check_alltoall(*c, i % 2 == 0 ? 700 : 9000 + static_cast<std::size_t>(i) * 13, 500 + i);
      req.wait();
      sent.wait();
      EXPECT_EQ(theirs[4999], left + i);
    }
  }
}

}  // namespace
