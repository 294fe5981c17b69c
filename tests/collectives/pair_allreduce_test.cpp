// Two-rank allreduces of 32 KiB and more: each rank reads the peer's input over its own half
// straight out of the peer's buffer, combines it, and writes its half of the result straight
// into the peer's output (process_vm_readv / process_vm_writev, allreduce_pair_copy in
// runtime/collectives/collectives.cpp). Checks the result against a sequential x0 op x1 at every
// size around the threshold and the halves' split, with a non-commutative operation and an
// element size that does not divide a page, in place and not, on world (np=2) and on two-rank
// sub-communicators (np=4, 5); that the copies really cross address spaces (the engine's
// count); and that every way a copy can be refused (a rank that does not offer, either rank's
// read, either rank's write, both) still gives every rank the whole result. Under COHORT_CMA=0
// (ctest pair_allreduce_test.np2.no_cma) nothing crosses.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include <cohort/cohort.hpp>

#include "tests/collectives/pair_support.hpp"

namespace {

using cohort::testing::cross_memory_enabled_by_environment;
using cohort::testing::engine;
using cohort::testing::pair;

/// 12 bytes: an element size that does not divide a page, so the halves' split falls inside
/// a page and the staging chunks hold a whole number of elements only.
struct Triple {
  std::uint32_t a, b, c;
};

/// Non-commutative and not associative-by-accident: x op y != y op x for almost every pair, so
/// a rank that combined y op x, or combined one half on the other rank's order, shows.
Triple affine(const Triple& x, const Triple& y) {
  return {x.a * 31u + y.a, x.b * 7u + y.b * 3u, x.c ^ (y.c * 5u + 1u)};
}

Triple input(int rank, std::size_t i, int seed) {
  const auto s = static_cast<std::uint32_t>(seed * 1000 + rank * 7);
  const auto k = static_cast<std::uint32_t>(i);
  return {k * 2654435761u + s, k ^ (s * 40503u), k * 97u + s + 3u};
}

/// Allreduces `count` Triples on c (in place or not) and checks every element on every rank
/// against x0 op x1, computed here from both ranks' inputs.
void check_allreduce(cohort::Communicator& c, std::size_t count, bool in_place, int seed) {
  std::vector<Triple> in(count), out(count, Triple{0, 0, 0});
  for (std::size_t i = 0; i < count; ++i) in[i] = input(c.rank(), i, seed);
  if (in_place) {
    c.allreduce(in, affine);
  } else {
    c.allreduce(in, out, affine);
  }
  const std::vector<Triple>& got = in_place ? in : out;
  for (std::size_t i = 0; i < count; ++i) {
    const Triple want = affine(input(0, i, seed), input(1, i, seed));
    ASSERT_TRUE(got[i].a == want.a && got[i].b == want.b && got[i].c == want.c)
        << "count=" << count << " in_place=" << in_place << " element " << i << " (rank "
        << c.rank() << " of " << c.size() << ")";
  }
}

constexpr std::size_t kMinBytes = 32 * 1024;  // kPairReduceMinBytes
constexpr std::size_t kMin = (kMinBytes + sizeof(Triple) - 1) / sizeof(Triple);  // elements

TEST(PairAllreduce, EverySizeInPlaceOrNotCrossesAddressSpaces) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP() << "the last rank of an odd job has no partner";
  const bool on = cross_memory_enabled_by_environment();
  int seed = 0;
  for (std::size_t count : {kMin - 1, kMin, kMin + 1, 2 * kMin + 341, std::size_t{87382},
                            std::size_t{262147}}) {
    for (bool in_place : {false, true}) {
      const std::uint64_t before = engine().cross_memory_calls();
      check_allreduce(c, count, in_place, ++seed);
      if (on && !engine().cross_memory().on()) {
        GTEST_SKIP() << "the kernel refused cross-memory attach here (seccomp, Yama or a "
                        "non-dumpable process): only the shared-memory fallback was checked";
      }
      const bool crosses = on && count * sizeof(Triple) >= kMinBytes;
      EXPECT_EQ(engine().cross_memory_calls(), before + (crosses ? 1 : 0)) << "count=" << count;
    }
  }
}

TEST(PairAllreduce, DoublesGiveTheSameBitsOnBothRanks) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  std::vector<double> in(300000), out(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i] = 1.0 / static_cast<double>(i + 1 + static_cast<std::size_t>(c.rank()) * 3) * 1e-3 +
            static_cast<double>(c.rank());
  }
  c.allreduce(in, out, std::plus<>{});
  for (std::size_t i = 0; i < in.size(); ++i) {
    const double x0 = 1.0 / static_cast<double>(i + 1) * 1e-3;
    const double x1 = 1.0 / static_cast<double>(i + 4) * 1e-3 + 1.0;
    const double want = x0 + x1;
    ASSERT_EQ(std::memcmp(&out[i], &want, sizeof want), 0) << "element " << i;
  }
}

TEST(PairAllreduce, AScratchBufferAbove16MiBIsNotKept) {
  // The read half goes through a scratch buffer kept from call to call up to 16 MiB
  // (kPairScratchKeepBytes): a 40 MiB allreduce (20 MiB halves) frees its own when it ends.
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  if (!cross_memory_enabled_by_environment()) GTEST_SKIP() << "COHORT_CMA=0: no scratch is used";
  std::vector<std::uint32_t> small(1u << 18, 1u), big(10u << 20, 2u);
  c.allreduce(small, std::plus<>{});
  EXPECT_EQ(small[12345], 2u);
  EXPECT_GE(engine().pair_scratch.size(), small.size() * sizeof(std::uint32_t) / 2);
  c.allreduce(big, std::plus<>{});
  EXPECT_EQ(big[0], 4u);
  EXPECT_EQ(big[big.size() - 1], 4u);
  EXPECT_EQ(engine().pair_scratch.capacity(), 0u);
}

TEST(PairAllreduce, ARankThatDoesNotOfferGetsEverythingStaged) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  for (int declining = 0; declining < 2; ++declining) {
    cohort::testing::expect_staged_when_one_declines(c, declining, [&] {
      check_allreduce(c, 100003, false, 50 + declining);
      check_allreduce(c, 100003, true, 60 + declining);
    });
  }
}

TEST(PairAllreduce, RankZeroChoosesStagingAndNeitherRankCrosses) {
  // Rank 0 decides (collectives::PairModes); rank 1 still offers and follows it.
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  if (c.rank() == 0) engine().pair_modes().fix(true);
  const std::uint64_t before = engine().cross_memory_calls();
  check_allreduce(c, 100003, false, 80);
  check_allreduce(c, 100003, true, 81);
  EXPECT_EQ(engine().cross_memory_calls(), before) << "rank 0 chose to stage";
  engine().pair_modes().fix(false);
  c.barrier();
  if (!cross_memory_enabled_by_environment() || !engine().cross_memory().on()) return;
  // Rank 1's choice does not matter: rank 0 copies, so both cross.
  if (c.rank() == 1) engine().pair_modes().fix(true);
  check_allreduce(c, 100003, false, 82);
  EXPECT_EQ(engine().cross_memory_calls(), before + 1);
  engine().pair_modes().fix(false);
  c.barrier();
}

TEST(PairAllreduce, RefusedCopiesAreStagedAndNothingIsLost) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  if (!cross_memory_enabled_by_environment()) GTEST_SKIP() << "COHORT_CMA=0: no copy is attempted";
  // Each rank makes two copies a call: the read of the peer's input, then the write of its
  // result. A case refuses one of them on rank 0, rank 1 or both (-1: none on that rank).
  struct Case {
    int refused[2];  // per rank: which copy the "kernel" refuses (0 read, 1 write, -1 none)
  };
  int seed = 70;
  for (Case k : {Case{{0, -1}}, Case{{-1, 0}}, Case{{0, 0}}, Case{{1, -1}}, Case{{-1, 1}},
                 Case{{1, 1}}, Case{{0, 1}}, Case{{1, 0}}}) {
    for (std::size_t count : {kMin + 1, std::size_t{262147}}) {
      for (bool in_place : {false, true}) {
        const int mine = k.refused[c.rank()];
        if (mine >= 0) engine().cross_memory().inject_failures(1, mine);
        const std::uint64_t before = engine().cross_memory_calls();
        check_allreduce(c, count, in_place, ++seed);
        EXPECT_EQ(engine().cross_memory_calls(), before) << "a refused copy is not a crossing";
        // A write is only attempted once both reads went through.
        const bool attempted = mine == 0 || (mine == 1 && k.refused[0] != 0 && k.refused[1] != 0);
        EXPECT_EQ(engine().cross_memory().on(), !attempted) << "a refusal turns the offer off";
        engine().cross_memory().inject_failures(0);
        engine().cross_memory().allow(true);
        c.barrier();
        check_allreduce(c, count, !in_place, ++seed);  // and the next call crosses again
        EXPECT_EQ(engine().cross_memory_calls(), before + 1);
      }
    }
  }
}

TEST(PairAllreduce, InterleavedWithPointToPointAndOtherCollectives) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  for (int i = 0; i < 20; ++i) {
    cohort::testing::with_message_in_flight(c, i, [&] {
      check_allreduce(c, 3000 + static_cast<std::size_t>(i) * 977, i % 2 == 0, i);
    });
    std::vector<char> b(40000, c.rank() == i % 2 ? static_cast<char>(i) : 0);
    c.broadcast(std::span(b), i % 2);
    EXPECT_EQ(b[39999], static_cast<char>(i));
  }
}

}  // namespace
