#include "runtime/transport/segment.hpp"

#include <climits>
#include <new>

#include <fmt/format.h>

#include "cohort/errors.hpp"
#include "runtime/platform/futex.hpp"
#include "runtime/transport/collective_area.hpp"
#include "runtime/transport/mailboxes.hpp"
#include "runtime/transport/shared_heap.hpp"
#include "runtime/transport/trace.hpp"

namespace cohort::transport {
namespace {
constexpr std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
}  // namespace

SegmentLayout segment_layout(int ranks, std::size_t heap_bytes, TraceConfig trace) {
  SegmentLayout l{};
  l.control_offset = sizeof(SegmentHeader);
  l.mailbox_offset = align_up(l.control_offset + sizeof(RankSlot) * static_cast<std::size_t>(ranks), 4096);
  l.mailbox_bytes = align_up(mailbox_area_bytes(ranks), 4096);
  l.collective_offset = l.mailbox_offset + l.mailbox_bytes;
  l.collective_bytes = align_up(collective_area_bytes(ranks), 4096);
  l.trace_offset = l.collective_offset + l.collective_bytes;
  l.trace_bytes = trace.enabled ? align_up(trace_area_bytes(ranks, trace.events_per_rank), 4096) : 0;
  l.heap_offset = l.trace_offset + l.trace_bytes;
  l.heap_bytes = align_up(heap_area_bytes(heap_bytes), 4096);
  l.total_bytes = l.heap_offset + l.heap_bytes;
  return l;
}

Segment Segment::format(std::span<std::byte> memory, int ranks, std::uint64_t job,
                        bool oversubscribed, std::size_t heap_bytes, TraceConfig trace) {
  SegmentLayout l = segment_layout(ranks, heap_bytes, trace);
  if (memory.size() < l.total_bytes) {
    throw ResourceError(fmt::format("segment of {} bytes is too small for {} ranks ({} needed)",
                                    memory.size(), ranks, l.total_bytes));
  }
  auto* h = new (memory.data()) SegmentHeader{};
  h->ranks = static_cast<std::uint32_t>(ranks);
  h->job = job;
  h->control_offset = l.control_offset;
  h->mailbox_offset = l.mailbox_offset;
  h->collective_offset = l.collective_offset;
  h->heap_offset = l.heap_offset;
  h->heap_bytes = heap_bytes;
  h->oversubscribed = oversubscribed ? 1 : 0;
  if (trace.enabled) {
    h->trace_offset = l.trace_offset;
    h->trace_events = trace.events_per_rank;
  }
  for (int r = 0; r < ranks; ++r) {
    new (memory.data() + l.control_offset + sizeof(RankSlot) * static_cast<std::size_t>(r)) RankSlot{};
  }
  Segment seg(memory);
  // The mailbox area needs no writes: all-zero is the empty state of every pair, and the memory
  // is zero-filled (a fresh memfd). Writing anyway would fault in a page per pair at launch (992
  // pages at 32 ranks, ~1.4 ms of cohortrun's start-up); now a pair's pages fault in on first use.
  format_collective_area(seg.collective_area(), ranks);
  format_heap_area(seg.heap_area(), heap_bytes);
  if (trace.enabled) {
    format_trace_area(seg.trace_area(), ranks, trace.events_per_rank, trace_clock_ns());
  }
  h->version.store(kSegmentVersion, std::memory_order_relaxed);
  h->total_bytes.store(l.total_bytes, std::memory_order_relaxed);
  h->magic.store(kSegmentMagic, std::memory_order_release);  // published last
  return seg;
}

void Segment::validate(std::uint64_t expected_job, int expected_ranks) const {
  if (memory_.size() < sizeof(SegmentHeader)) {
    throw ContractError(fmt::format("cohort: job segment is {} bytes, smaller than its header",
                                    memory_.size()));
  }
  const SegmentHeader& h = header();
  if (h.magic.load(std::memory_order_acquire) != kSegmentMagic) {
    throw ContractError("cohort: COHORT_SEGMENT_FD does not refer to a Cohort job segment "
                        "(bad magic); start the program with cohortrun");
  }
  if (h.version.load() != kSegmentVersion) {
    throw ContractError(fmt::format("cohort: job segment has layout version {}, this library "
                                    "speaks {}; launch with the cohortrun of the same release",
                                    h.version.load(), kSegmentVersion));
  }
  if (h.job != expected_job || static_cast<int>(h.ranks) != expected_ranks) {
    throw ContractError(fmt::format(
        "cohort: job segment belongs to job {:016x} of {} ranks, the environment says job "
        "{:016x} of {} ranks", h.job, h.ranks, expected_job, expected_ranks));
  }
  if (h.total_bytes.load() > memory_.size() ||
      segment_layout(expected_ranks, h.heap_bytes, trace_config()).total_bytes !=
          h.total_bytes.load()) {
    throw ContractError(fmt::format("cohort: job segment size {} does not match its layout",
                                    h.total_bytes.load()));
  }
}

std::span<std::byte> Segment::mailbox_area() const noexcept {
  SegmentLayout l = segment_layout(ranks(), header().heap_bytes);
  return memory_.subspan(header().mailbox_offset, l.mailbox_bytes);
}

std::span<std::byte> Segment::collective_area() const noexcept {
  SegmentLayout l = segment_layout(ranks(), header().heap_bytes);
  return memory_.subspan(header().collective_offset, l.collective_bytes);
}

std::span<std::byte> Segment::trace_area() const noexcept {
  if (header().trace_offset == 0) return {};
  SegmentLayout l = segment_layout(ranks(), header().heap_bytes, trace_config());
  return memory_.subspan(header().trace_offset, l.trace_bytes);
}

std::span<std::byte> Segment::heap_area() const noexcept {
  SegmentLayout l = segment_layout(ranks(), header().heap_bytes);
  return memory_.subspan(header().heap_offset, l.heap_bytes);
}

void Segment::wake(int rank) const noexcept {
  RankSlot& s = slot(rank);
  // The caller published its data before calling; the fence orders that store before the load
  // of `sleeping` (pairs with the fence in the sleeper between `sleeping = 1` and its re-check).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (s.sleeping.load(std::memory_order_relaxed) != 0) {
    s.doorbell.fetch_add(1, std::memory_order_release);
    platform::futex_wake(s.doorbell, INT_MAX);
  }
}

void Segment::wake_all() const noexcept {
  for (int r = 0; r < ranks(); ++r) {
    RankSlot& s = slot(r);
    s.doorbell.fetch_add(1, std::memory_order_seq_cst);
    platform::futex_wake(s.doorbell, INT_MAX);
  }
}

}  // namespace cohort::transport
