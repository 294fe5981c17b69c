#include "runtime/transport/trace.hpp"

#include <new>

namespace cohort::transport {
namespace {
constexpr std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

std::size_t row_bytes(int ranks) noexcept {
  return align_up(sizeof(std::uint64_t) * static_cast<std::size_t>(ranks), 64);
}
}  // namespace

std::size_t trace_block_bytes(int ranks, std::uint64_t events_per_rank) noexcept {
  return align_up(sizeof(RankStats) + 2 * row_bytes(ranks) +
                      sizeof(TraceEvent) * static_cast<std::size_t>(events_per_rank),
                  64);
}

std::size_t trace_area_bytes(int ranks, std::uint64_t events_per_rank) noexcept {
  return sizeof(TraceAreaHeader) +
         trace_block_bytes(ranks, events_per_rank) * static_cast<std::size_t>(ranks);
}

void format_trace_area(std::span<std::byte> area, int ranks, std::uint64_t events_per_rank,
                       std::uint64_t origin_ns) noexcept {
  auto* h = new (area.data()) TraceAreaHeader{};
  h->ranks = static_cast<std::uint32_t>(ranks);
  h->events_per_rank = events_per_rank;
  h->origin_ns = origin_ns;
  const std::size_t block = trace_block_bytes(ranks, events_per_rank);
  for (int r = 0; r < ranks; ++r) {
    std::byte* b = area.data() + sizeof(TraceAreaHeader) + block * static_cast<std::size_t>(r);
    new (b) RankStats{};
    auto* row = reinterpret_cast<std::atomic<std::uint64_t>*>(b + sizeof(RankStats));
    for (int i = 0; i < 2 * ranks; ++i) new (row + i) std::atomic<std::uint64_t>(0);
  }
}

RankTrace::RankTrace(std::span<std::byte> area, int rank) noexcept {
  const auto& h = *reinterpret_cast<const TraceAreaHeader*>(area.data());
  ranks_ = static_cast<int>(h.ranks);
  capacity_ = h.events_per_rank;
  std::byte* b = area.data() + sizeof(TraceAreaHeader) +
                 trace_block_bytes(ranks_, capacity_) * static_cast<std::size_t>(rank);
  stats_ = reinterpret_cast<RankStats*>(b);
  bytes_to_ = reinterpret_cast<std::atomic<std::uint64_t>*>(b + sizeof(RankStats));
  messages_to_ = reinterpret_cast<std::atomic<std::uint64_t>*>(b + sizeof(RankStats) + row_bytes(ranks_));
  events_ = reinterpret_cast<TraceEvent*>(b + sizeof(RankStats) + 2 * row_bytes(ranks_));
}

void RankTrace::prefault() const noexcept {
  auto* bytes = reinterpret_cast<std::byte*>(events_);
  const std::size_t n = sizeof(TraceEvent) * static_cast<std::size_t>(capacity_);
  // Nothing is counted yet, so no reader looks at these bytes; they are zero already.
  for (std::size_t i = 0; i < n; i += 4096) bytes[i] = std::byte{0};
}

std::span<const TraceEvent> RankTrace::events() const noexcept {
  if (stats_ == nullptr) return {};
  std::uint64_t n = stats_->events.load(std::memory_order_acquire);
  return {events_, static_cast<std::size_t>(n < capacity_ ? n : capacity_)};
}

std::uint64_t RankTrace::dropped() const noexcept {
  if (stats_ == nullptr) return 0;
  std::uint64_t n = stats_->events.load(std::memory_order_acquire);
  return n > capacity_ ? n - capacity_ : 0;
}

const char* trace_kind_name(TraceKind kind) noexcept {
  switch (kind) {
    case TraceKind::send: return "send";
    case TraceKind::isend: return "isend";
    case TraceKind::recv: return "recv";
    case TraceKind::recv_done: return "irecv done";
    case TraceKind::probe: return "probe";
    case TraceKind::wait: return "wait";
    case TraceKind::collective: return "collective";
    case TraceKind::pool_task: return "pool task";
    case TraceKind::queue_put: return "queue put";
    case TraceKind::queue_get: return "queue get";
  }
  return "event";
}

}  // namespace cohort::transport
