// Two-rank broadcasts of 32 KiB and more copy straight between the two ranks' buffers
// (process_vm_readv / process_vm_writev, broadcast_pair in runtime/collectives/collectives.cpp).
// Checks the data at every size around the threshold and the halves' split, for both roots, on
// world (np=2) and on two-rank sub-communicators (np=4, 5), that the copies really cross address
// spaces (the engine's count), and that every way a copy can be refused (a rank that does not
// offer, the root's write, the reader's read, both) still delivers the data through the staging
// chunks. Under COHORT_CMA=0 (ctest pair_broadcast_test.np2.no_cma) nothing crosses.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include <cohort/cohort.hpp>

#include "tests/collectives/pair_support.hpp"

namespace {

using cohort::testing::cross_memory_enabled_by_environment;
using cohort::testing::engine;
using cohort::testing::pair;


std::uint8_t byte_at(int seed, std::size_t i) {
  return static_cast<std::uint8_t>((i * 131 + static_cast<std::size_t>(seed) * 17 + (i >> 12)) & 0xff);
}

/// Broadcasts `bytes` from `root` on c and checks every byte on every rank.
void check_broadcast(cohort::Communicator& c, std::size_t bytes, int root, int seed) {
  std::vector<std::uint8_t> buf(bytes, 0);
  if (c.rank() == root) {
    for (std::size_t i = 0; i < bytes; ++i) buf[i] = byte_at(seed, i);
  }
  c.broadcast(buf, root);
  for (std::size_t i = 0; i < bytes; ++i) {
    ASSERT_EQ(buf[i], byte_at(seed, i)) << "bytes=" << bytes << " root=" << root << " i=" << i
                                        << " (rank " << c.rank() << " of " << c.size() << ")";
  }
}

constexpr std::size_t kMin = 32 * 1024;  // kPairCopyMinBytes

TEST(PairBroadcast, EverySizeAndRootCrossesAddressSpaces) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP() << "the last rank of an odd job has no partner";
  const bool on = cross_memory_enabled_by_environment();
  int seed = 0;
  for (std::size_t bytes : {kMin - 1, kMin, kMin + 1, 2 * kMin + 4095, 2 * kMin + 4096,
                            (1ul << 20) + 5, (3ul << 20) + 7}) {
    for (int root = 0; root < 2; ++root) {
      const std::uint64_t before = engine().cross_memory_calls();
      check_broadcast(c, bytes, root, ++seed);
      if (on && !engine().cross_memory().on()) {
        GTEST_SKIP() << "the kernel refused cross-memory attach here (seccomp, Yama or a "
                        "non-dumpable process): only the shared-memory fallback was checked";
      }
      const std::uint64_t expect = before + (on && bytes >= kMin ? 1 : 0);
      EXPECT_EQ(engine().cross_memory_calls(), expect) << "bytes=" << bytes << " root=" << root;
    }
  }
}

TEST(PairBroadcast, ARankThatDoesNotOfferGetsEverythingStaged) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  for (int declining = 0; declining < 2; ++declining) {
    for (int root = 0; root < 2; ++root) {
      cohort::testing::expect_staged_when_one_declines(
          c, declining, [&] { check_broadcast(c, (1ul << 20) + 3, root, 100 + root); });
    }
  }
}

TEST(PairBroadcast, RefusedCopiesAreStagedAndNothingIsLost) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  if (!cross_memory_enabled_by_environment()) GTEST_SKIP() << "COHORT_CMA=0: no copy is attempted";
  // Which ranks' next copy the "kernel" refuses: the root's write, the reader's read, both.
  struct Case { bool root_fails, reader_fails; };
  for (Case k : {Case{true, false}, Case{false, true}, Case{true, true}}) {
    for (int root = 0; root < 2; ++root) {
      for (std::size_t bytes : {kMin + 1, (1ul << 20) + 4097}) {
        const bool fails = c.rank() == root ? k.root_fails : k.reader_fails;
        if (fails) engine().cross_memory().inject_failures(1);
        const std::uint64_t before = engine().cross_memory_calls();
        check_broadcast(c, bytes, root, 200 + root);
        EXPECT_EQ(engine().cross_memory_calls(), before) << "a refused copy is not a crossing";
        EXPECT_EQ(engine().cross_memory().on(), !fails) << "a refusal turns the offer off";
        engine().cross_memory().allow(true);
        c.barrier();
        check_broadcast(c, bytes, 1 - root, 300 + root);  // and the next call crosses again
        EXPECT_EQ(engine().cross_memory_calls(), before + 1);
      }
    }
  }
}

TEST(PairBroadcast, BuffersAtAnyDistanceApartCross) {
  // The reader's buffer 0, 1, 16, 63, 64 and 100 bytes past the root's modulo 4 KiB (the kernel
  // copies page by page; 1-63 is the distance that makes glibc's memcpy slow) and an odd size.
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  const bool on = cross_memory_enabled_by_environment();
  constexpr std::size_t kBytes = (1ul << 20) + 100;
  std::vector<std::uint8_t> storage(kBytes + 2 * 4096);
  auto* page = reinterpret_cast<std::uint8_t*>(
      (reinterpret_cast<std::uintptr_t>(storage.data()) + 4095) & ~std::uintptr_t{4095});
  for (std::size_t distance : {0ul, 1ul, 16ul, 63ul, 64ul, 100ul}) {
    for (int root = 0; root < 2; ++root) {
      std::span<std::uint8_t> buf(page + (c.rank() == root ? 0 : distance), kBytes);
      for (std::size_t i = 0; i < kBytes; ++i) buf[i] = c.rank() == root ? byte_at(7, i) : 0;
      const std::uint64_t before = engine().cross_memory_calls();
      c.broadcast(buf, root);
      for (std::size_t i = 0; i < kBytes; ++i) {
        ASSERT_EQ(buf[i], byte_at(7, i)) << "distance=" << distance << " root=" << root << " i=" << i;
      }
      EXPECT_EQ(engine().cross_memory_calls(), before + (on ? 1 : 0)) << "distance=" << distance;
    }
  }
}

TEST(PairBroadcast, InterleavedWithPointToPointAndOtherCollectives) {
  auto& c = pair();
  if (c.size() != 2) GTEST_SKIP();
  for (int i = 0; i < 20; ++i) {
    cohort::testing::with_message_in_flight(c, i, [&] {
      check_broadcast(c, 40000 + static_cast<std::size_t>(i) * 4099, i % 2, i);
    });
    EXPECT_EQ(c.allreduce(1, std::plus<>{}), 2);
  }
}

}  // namespace
