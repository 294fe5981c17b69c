#include "runtime/transport/segment.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "cohort/errors.hpp"
#include "runtime/platform/futex.hpp"
#include "runtime/platform/shared_memory.hpp"
#include "runtime/transport/collective_area.hpp"

namespace cohort::transport {
namespace {

TEST(Segment, LayoutIsAlignedAndGrowsWithRanks) {
  for (int n : {1, 2, 3, 8, 64}) {
    SegmentLayout l = segment_layout(n);
    EXPECT_EQ(l.control_offset % kCacheLine, 0u);
    EXPECT_EQ(l.mailbox_offset % 4096, 0u);
    EXPECT_GE(l.mailbox_offset, l.control_offset + n * sizeof(RankSlot));
    EXPECT_EQ(l.collective_offset, l.mailbox_offset + l.mailbox_bytes);
    EXPECT_EQ(l.heap_offset, l.collective_offset + l.collective_bytes);
    EXPECT_EQ(l.total_bytes, l.heap_offset + l.heap_bytes);
    EXPECT_EQ(l.reserved_bytes() % 4096, 0u);
  }
  EXPECT_LE(segment_layout(2).total_bytes, segment_layout(64).total_bytes);
}

TEST(Segment, SixtyFourRanksFitInDockersDefaultDevShm) {
  // What a job commits at launch (the heap is committed only as it is used).
  EXPECT_LT(segment_layout(64).reserved_bytes(), 64u << 20);
  EXPECT_LT(segment_layout(64, 0).total_bytes, 64u << 20);
}

TEST(Segment, EveryJobUpToSixtyFourRanksFitsInDockersDefaultDevShm) {
  // The collective staging ring is larger at small rank counts: no rank count may exceed it.
  for (int n = 1; n <= 64; ++n) {
    EXPECT_LT(segment_layout(n).reserved_bytes(), 64u << 20) << n << " ranks";
  }
}

TEST(CollectiveArea, StagingSlotsFitTheirHeadersAndBlocks) {
  for (int n : {1, 2, 4, 8, 9, 16, 17, 64, 65, 128}) {
    const std::size_t slots = collective_slots(n);
    EXPECT_GE(slots, 2u) << n;
    EXPECT_LE(slots, kCollectiveMaxSlots) << n;
    EXPECT_EQ(collective_chunk_bytes(n) % kCacheLine, 0u) << n;
    const std::size_t released = (static_cast<std::size_t>(n) * 8 + kCacheLine - 1) / kCacheLine * kCacheLine;
    EXPECT_EQ(collective_block_bytes(n),
              CollectiveArea::kSlotData + slots * collective_chunk_bytes(n) + released);
    EXPECT_EQ(collective_block_bytes(n) % kCacheLine, 0u) << n;
  }
}

TEST(CollectiveArea, ReleasedCountsAreEachRanksOwnAndInsideItsBlock) {
  for (int n : {1, 2, 7, 8, 9, 64}) {
    std::vector<std::byte> memory(collective_area_bytes(n));
    format_collective_area(memory, n);
    CollectiveArea area(memory, n);
    for (int r = 0; r < n; ++r) {
      for (int p = 0; p < n; ++p) {
        auto* at = reinterpret_cast<std::byte*>(&area.released(r, p));
        EXPECT_GE(at, area.slot_data(r, collective_slots(n) - 1) + collective_chunk_bytes(n)) << n;
        EXPECT_LE(at + 8, memory.data() + kCacheLine + static_cast<std::size_t>(r + 1) * collective_block_bytes(n));
        EXPECT_EQ(area.released(r, p).load(), 0u);
        area.released(r, p).store(static_cast<std::uint64_t>(r * 1000 + p));
      }
    }
    for (int r = 0; r < n; ++r) {
      for (int p = 0; p < n; ++p) EXPECT_EQ(area.released(r, p).load(), static_cast<std::uint64_t>(r * 1000 + p));
    }
  }
}

TEST(Segment, FormatPublishesAValidHeader) {
  int n = 5;
  auto fd = platform::create_shared_memory("segment-test", segment_layout(n).total_bytes);
  platform::Mapping map(fd.get(), segment_layout(n).total_bytes, "segment-test");
  Segment seg = Segment::format(map.bytes(), n, 42, true);
  EXPECT_NO_THROW(seg.validate(42, n));
  EXPECT_EQ(seg.ranks(), n);
  EXPECT_EQ(seg.header().oversubscribed, 1u);
  for (int r = 0; r < n; ++r) EXPECT_TRUE(seg.alive(r));
  seg.slot(3).state.store(static_cast<std::uint32_t>(RankState::exited));
  EXPECT_FALSE(seg.alive(3));
  EXPECT_THROW(seg.validate(43, n), ContractError);
  EXPECT_THROW(seg.validate(42, n + 1), ContractError);
}

TEST(Segment, RejectsMemoryWithoutMagic) {
  std::vector<std::byte> zeros(segment_layout(2).total_bytes);
  Segment seg(zeros);
  EXPECT_THROW(seg.validate(0, 2), ContractError);
}

TEST(Segment, WakeReachesASleeper) {
  std::vector<std::byte> mem(segment_layout(2).total_bytes + kCacheLine);
  auto* base = reinterpret_cast<std::byte*>(
      (reinterpret_cast<std::uintptr_t>(mem.data()) + kCacheLine - 1) / kCacheLine * kCacheLine);
  Segment seg = Segment::format({base, segment_layout(2).total_bytes}, 2, 1, false);
  std::atomic<bool> flag{false};
  std::thread sleeper([&] {
    RankSlot& s = seg.slot(1);
    for (;;) {
      std::uint32_t bell = s.doorbell.load();
      s.sleeping.store(1);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (flag.load(std::memory_order_relaxed)) break;
      platform::futex_wait(s.doorbell, bell);
    }
    s.sleeping.store(0);
  });
  flag.store(true, std::memory_order_relaxed);
  seg.wake(1);
  sleeper.join();  // hangs (and the test times out) if the wake is lost
  SUCCEED();
}

}  // namespace
}  // namespace cohort::transport
