// The trace area (runtime/transport/trace.hpp): layout, recording, the full-buffer policy, and a
// reader that looks while the owner writes (run under TSan in CI).
#include "runtime/transport/trace.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "runtime/transport/segment.hpp"

namespace cohort::transport {
namespace {

struct Area {
  Area(int ranks, std::uint64_t events)
      : memory(trace_area_bytes(ranks, events) / sizeof(std::uint64_t) + 1) {
    format_trace_area(span(), ranks, events, 1000);
  }
  std::span<std::byte> span() {
    return {reinterpret_cast<std::byte*>(memory.data()), memory.size() * sizeof(std::uint64_t)};
  }
  std::vector<std::uint64_t> memory;  // 8-byte aligned, zero-filled
};

TraceEvent event(std::uint64_t i) {
  return TraceEvent{i, i + 1, i * 10, static_cast<std::uint32_t>(i), 1, 2, 0,
                    static_cast<std::uint16_t>(TraceKind::send), 0, 0};
}

TEST(TraceArea, BlocksDoNotOverlap) {
  Area a(3, 16);
  for (int r = 0; r < 3; ++r) RankTrace(a.span(), r).record(event(static_cast<std::uint64_t>(r)));
  for (int r = 0; r < 3; ++r) RankTrace(a.span(), r).count_send((r + 1) % 3, 100 + static_cast<std::uint64_t>(r));
  for (int r = 0; r < 3; ++r) {
    RankTrace t(a.span(), r);
    ASSERT_EQ(t.events().size(), 1u);
    EXPECT_EQ(t.events()[0].begin_ns, static_cast<std::uint64_t>(r));
    for (int to = 0; to < 3; ++to) {
      EXPECT_EQ(t.bytes_to(to).load(), to == (r + 1) % 3 ? 100u + static_cast<std::uint64_t>(r) : 0u);
      EXPECT_EQ(t.messages_to(to).load(), to == (r + 1) % 3 ? 1u : 0u);
    }
    EXPECT_EQ(t.stats().bytes_sent.load(), 100u + static_cast<std::uint64_t>(r));
  }
  // The last block ends inside the area.
  RankTrace last(a.span(), 2);
  auto* end = reinterpret_cast<const std::byte*>(last.events().data() + last.capacity());
  EXPECT_LE(end, a.span().data() + trace_area_bytes(3, 16));
}

TEST(TraceArea, KeepsTheFirstEventsAndCountsTheDropped) {
  Area a(1, 4);
  RankTrace t(a.span(), 0);
  for (std::uint64_t i = 0; i < 10; ++i) t.record(event(i));
  ASSERT_EQ(t.events().size(), 4u);
  for (std::uint64_t i = 0; i < 4; ++i) EXPECT_EQ(t.events()[i].seq, i);
  EXPECT_EQ(t.dropped(), 6u);
  EXPECT_EQ(t.stats().events.load(), 10u);
}

// The traced calls ask keeps_next() before reading the clock; an event the full buffer would drop
// is only counted. prefault() (at attach) leaves the block as it was.
TEST(TraceArea, FullBufferCountsWithoutStoring) {
  Area a(2, 3);
  RankTrace t(a.span(), 1);
  t.prefault();
  EXPECT_TRUE(t.events().empty());
  EXPECT_EQ(RankTrace(a.span(), 0).stats().events.load(), 0u);
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(t.keeps_next());
    t.record(event(i));
  }
  EXPECT_FALSE(t.keeps_next());
  t.count_dropped();
  t.count_dropped();
  ASSERT_EQ(t.events().size(), 3u);
  EXPECT_EQ(t.events()[2].seq, 2u);
  EXPECT_EQ(t.dropped(), 2u);
  EXPECT_TRUE(RankTrace(a.span(), 0).events().empty());
}

TEST(TraceArea, StatisticsOnlyKeepsNoEvents) {
  Area a(2, 0);
  RankTrace t(a.span(), 1);
  EXPECT_TRUE(t.on());
  EXPECT_FALSE(t.events_on());
  EXPECT_FALSE(t.keeps_next());
  t.count_send(0, 8);
  EXPECT_EQ(RankTrace(a.span(), 1).bytes_to(0).load(), 8u);
}

TEST(TraceArea, OffByDefault) {
  RankTrace t;
  EXPECT_FALSE(t.on());
  EXPECT_TRUE(t.events().empty());
  EXPECT_EQ(t.dropped(), 0u);
}

TEST(TraceArea, AReaderSeesOnlyWholeEventsWhileTheOwnerWrites) {
  constexpr std::uint64_t kEvents = 20000;
  Area a(2, kEvents);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    RankTrace t(a.span(), 1);
    for (std::uint64_t i = 0; i < kEvents; ++i) {
      t.record(event(i));
      t.count_send(0, 1);
    }
    done.store(true);
  });
  RankTrace reader(a.span(), 1);
  std::uint64_t checked = 0;
  while (!done.load() || checked < kEvents) {
    auto evs = reader.events();
    for (; checked < evs.size(); ++checked) {
      ASSERT_EQ(evs[checked].begin_ns, checked);
      ASSERT_EQ(evs[checked].bytes, checked * 10);
    }
    if (done.load() && checked == reader.events().size()) break;
  }
  writer.join();
  EXPECT_EQ(checked, kEvents);
  EXPECT_EQ(reader.bytes_to(0).load(), kEvents);
}

TEST(TraceArea, SegmentReservesItOnlyWhenAsked) {
  constexpr std::size_t kHeap = std::size_t{1} << 20;
  SegmentLayout plain = segment_layout(4, kHeap);
  SegmentLayout traced = segment_layout(4, kHeap, TraceConfig{true, 1000});
  EXPECT_EQ(plain.trace_bytes, 0u);
  EXPECT_GE(traced.trace_bytes, trace_area_bytes(4, 1000));
  EXPECT_EQ(traced.reserved_bytes(), plain.reserved_bytes() + traced.trace_bytes);

  std::vector<std::uint64_t> mem(traced.total_bytes / 8 + 8);
  std::span<std::byte> bytes(reinterpret_cast<std::byte*>(mem.data()), traced.total_bytes);
  Segment seg = Segment::format(bytes, 4, 7, false, kHeap, TraceConfig{true, 1000});
  seg.validate(7, 4);
  ASSERT_FALSE(seg.trace_area().empty());
  EXPECT_EQ(RankTrace(seg.trace_area(), 3).capacity(), 1000u);
  EXPECT_TRUE(seg.heap_area().data() >= seg.trace_area().data() + seg.trace_area().size());

  std::vector<std::uint64_t> mem2(plain.total_bytes / 8 + 8);
  Segment seg2 = Segment::format({reinterpret_cast<std::byte*>(mem2.data()), plain.total_bytes}, 4, 7, false, kHeap);
  EXPECT_TRUE(seg2.trace_area().empty());
}

}  // namespace
}  // namespace cohort::transport
