// Where publications start in each rank's staging ring (RingStart, Call::take_chunks in
// runtime/collectives/collectives.cpp), which decides the pages their readers touch: on machines
// where a process's first access to a page is slow, a job's first calls paid for every page of
// every peer's ring.
// - Consecutive alltoalls of one-chunk blocks alternate between the two halves of the ring, so
//   a reader touches 2 slots of each peer instead of all of them: the slots a run of alltoalls
//   announces chunks in (the engine's per-slot counts), and every block.
// - Large allreduces and iallreduces of less than half a ring start at the ring's start again
//   when its first slots are free: calls separated by a barrier use slot 0 only; allreduces of
//   half a ring alternate between the halves.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

#include <cohort/cohort.hpp>

#include "tests/collectives/pair_support.hpp"

namespace {

/// This rank's count of announced chunks per staging slot (the engine's slot_expected).
std::vector<std::uint64_t> slot_counts() {
  auto& engine = cohort::testing::engine();
  return {engine.slot_expected.begin(), engine.slot_expected.end()};
}

/// slot_counts() once every peer is done reading what earlier tests published.
std::vector<std::uint64_t> slot_counts_after_earlier_reads() {
  cohort::testing::env().world().barrier();
  return slot_counts();
}

/// The slots whose announced-chunk count changed since `before`.
std::set<std::size_t> slots_used(const std::vector<std::uint64_t>& before) {
  auto& engine = cohort::testing::engine();
  std::set<std::size_t> used;
  for (std::size_t s = 0; s < engine.area().slots(); ++s) {
    if (engine.slot_expected[s] != before[s]) used.insert(s);
  }
  return used;
}

TEST(AlltoallRing, OneChunkBlocksUseTwoHalvesOfTheRingOnly) {
  auto& w = cohort::testing::env().world();
  const auto n = static_cast<std::size_t>(w.size());
  if (n == 1) GTEST_SKIP();
  auto& engine = cohort::testing::engine();
  const std::size_t slots = engine.area().slots();
  const std::size_t half = slots / 2;
  ASSERT_LE(n - 1, half) << "this test expects at most " << half + 1 << " ranks";
  const std::vector<std::uint64_t> before = slot_counts();
  const std::size_t block = 8192;  // one chunk a block (4 KiB up to a chunk)
  for (int call = 0; call < 40; ++call) {
    std::vector<std::uint8_t> send(block * n), recv(block * n, 0);
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < block; i += 512) {
        send[j * block + i] = static_cast<std::uint8_t>(w.rank() * 31 + static_cast<int>(j) * 7 + call);
      }
    }
    w.alltoall(send, recv);
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < block; i += 512) {
        ASSERT_EQ(recv[j * block + i],
                  static_cast<std::uint8_t>(static_cast<int>(j) * 31 + w.rank() * 7 + call))
            << "call " << call << " block from rank " << j;
      }
    }
  }
  // Every slot the run announced chunks in lies in [0, n - 1) or [half, half + n - 1).
  const std::set<std::size_t> used = slots_used(before);
  EXPECT_EQ(used.size(), 2 * (n - 1));
  for (std::size_t s : used) {
    EXPECT_TRUE(s < n - 1 || (s >= half && s < half + n - 1)) << "slot " << s << " of " << slots;
  }
}

TEST(StagingRing, LargeAllreducesRestartAtTheRingStartWhenItIsFree) {
  auto& w = cohort::testing::env().world();
  const int n = w.size();
  if (n == 1) GTEST_SKIP();
  const std::vector<std::uint64_t> before = slot_counts_after_earlier_reads();
  // 16 KiB of doubles: one staging chunk, staged at every size of job (two ranks copy across
  // address spaces only from 32 KiB).
  const std::size_t count = 2048;
  for (int call = 0; call < 40; ++call) {
    std::vector<double> s(count);
    for (std::size_t i = 0; i < count; ++i) s[i] = w.rank() + 1.0 + call + static_cast<double>(i);
    w.allreduce(s, std::plus<>{});
    for (std::size_t i = 0; i < count; i += 97) {
      ASSERT_EQ(s[i], n * (n + 1) / 2.0 + n * (call + static_cast<double>(i))) << "call " << call;
    }
    w.barrier();  // every reader of this call's chunk is done with it
  }
  // Each call found the ring's first slot free, so every chunk went through slot 0; without the
  // rule they went round the ring.
  EXPECT_EQ(slots_used(before), std::set<std::size_t>{0}) << "rank " << w.rank();
  // Back to back, a rank may find slot 0 still being read and go on to the next slots: the
  // results stay right.
  for (int call = 0; call < 40; ++call) {
    std::vector<double> s(count, w.rank() + 1.0 + call);
    w.allreduce(s, std::plus<>{});
    ASSERT_EQ(s[count - 1], n * (n + 1) / 2.0 + n * static_cast<double>(call)) << "call " << call;
  }
}

TEST(StagingRing, LargeIallreducesRestartAtTheRingStartWhenItIsFree) {
  auto& w = cohort::testing::env().world();
  const int n = w.size();
  if (n == 1) GTEST_SKIP();
  const std::vector<std::uint64_t> before = slot_counts_after_earlier_reads();
  const std::size_t count = 2048;  // 16 KiB: one staging chunk
  for (int call = 0; call < 40; ++call) {
    std::vector<double> in(count), out(count, -1.0);
    for (std::size_t i = 0; i < count; ++i) in[i] = w.rank() + 1.0 + call + static_cast<double>(i);
    w.iallreduce(in, out, std::plus<>{}).wait();
    for (std::size_t i = 0; i < count; i += 97) {
      ASSERT_EQ(out[i], n * (n + 1) / 2.0 + n * (call + static_cast<double>(i))) << "call " << call;
    }
    w.barrier();
  }
  // Every rank published (a contribution to rank 0, or rank 0 the result), always in slot 0.
  EXPECT_EQ(slots_used(before), std::set<std::size_t>{0}) << "rank " << w.rank();
  // Several in flight at once: a rank finds slot 0 busy and goes on round the ring.
  std::vector<std::vector<double>> ins(4, std::vector<double>(count)), outs(4, std::vector<double>(count));
  std::vector<cohort::CollectiveRequest> reqs;
  for (std::size_t k = 0; k < ins.size(); ++k) {
    for (std::size_t i = 0; i < count; ++i) ins[k][i] = w.rank() * 2.0 + static_cast<double>(k + i);
    reqs.push_back(w.iallreduce(ins[k], outs[k], std::plus<>{}));
  }
  for (auto& r : reqs) r.wait();
  for (std::size_t k = 0; k < ins.size(); ++k) {
    ASSERT_EQ(outs[k][11], n * (n - 1.0) + n * static_cast<double>(k + 11)) << "request " << k;
  }
}

TEST(StagingRing, AllreducesOfHalfARingGoRoundTheRing) {
  auto& w = cohort::testing::env().world();
  const int n = w.size();
  // Two ranks combine 32 KiB and more across address spaces, without the staging slots.
  if (n <= 2) GTEST_SKIP();
  auto& engine = cohort::testing::engine();
  const std::size_t slots = engine.area().slots();
  const std::vector<std::uint64_t> before = slot_counts();
  // Half a ring of chunks: restarting would only add a first touch of the other half whenever a
  // rank found the first still being read, so these alternate between the halves as before.
  const std::size_t count = engine.area().chunk_bytes() * (slots / 2) / sizeof(double);
  for (int call = 0; call < 6; ++call) {
    std::vector<double> s(count, w.rank() + 1.0 + call);
    w.allreduce(s, std::plus<>{});
    ASSERT_EQ(s[count - 1], n * (n + 1) / 2.0 + n * static_cast<double>(call)) << "call " << call;
    w.barrier();
  }
  std::set<std::size_t> all;
  for (std::size_t i = 0; i < slots; ++i) all.insert(i);
  EXPECT_EQ(slots_used(before), all) << "rank " << w.rank();
}

}  // namespace
