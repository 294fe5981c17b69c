// Transport layer: the trace area of the job segment (cohortrun --trace / --stats). Pure data
// over memory it does not own; unit-tested with threads (tests/trace/trace_area_test.cpp).
//
// Reserved only when the launcher was asked for a trace or statistics (the segment header's
// trace_offset is 0 otherwise), so that the launcher can read everything after the job has
// ended, however it ended (a rank killed by SIGKILL included):
//
//   TraceAreaHeader                1 cache line: ranks, events per rank, clock origin
//   per rank r (RankTraceBlock):
//     RankStats                    counters, written by rank r only
//     bytes_to[ranks]              bytes rank r sent to each rank (row r of the matrix)
//     messages_to[ranks]           messages rank r sent to each rank
//     TraceEvent[events_per_rank]  rank r's events, in the order they ended
//
// When a rank's event buffer is full, later events are dropped and counted (`RankStats::events`
// keeps counting; dropped = events - capacity): the trace shows the beginning of the job in full
// and says how much is missing. Counters never stop.
//
// Time: std::chrono::steady_clock (CLOCK_MONOTONIC through the vDSO), one clock for every rank
// of the node, in nanoseconds.
//
// Concurrency: each block is written by its rank only (single writer, no read-modify-write:
// a relaxed load and store of the rank's own counters). An event's fields are written before the
// release store that counts it, so a reader that loads `events` with acquire may read that many
// (up to the capacity) while the rank still runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace cohort::transport {

/// Nanoseconds of the one clock every rank shares.
inline std::uint64_t trace_clock_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

/// What an event is. Stored as 16 bits; names in trace_kind_name().
enum class TraceKind : std::uint16_t {
  send = 1,         // blocking send: peer = destination, seq = message number on that pair
  isend = 2,        // non-blocking send posted (the message's flow starts here)
  recv = 3,         // blocking receive: peer = matched source, seq as the sender's
  recv_done = 4,    // a non-blocking receive completed (instant; the flow ends here)
  probe = 5,        // blocking probe
  wait = 6,         // a blocked wait (the Waiter's slow path): detail = WaitOp
  collective = 7,   // a blocking collective call: detail = collective kind, peer = root
  pool_task = 8,    // pool-map chunk computed by this rank: bytes = items
  queue_put = 9,    // Queue::put (bytes = payload)
  queue_get = 10,   // Queue::get
};

/// One span (begin < end) or instant (begin == end). 48 bytes.
struct TraceEvent {
  std::uint64_t begin_ns;
  std::uint64_t end_ns;
  std::uint64_t bytes;  // payload bytes, or items for pool tasks
  std::uint32_t seq;    // p2p: the message's number on its (sender, receiver) pair, from 1; 0: none
  std::int32_t peer;    // world rank, -1: none or any
  std::int32_t tag;     // -1: none or any
  std::uint32_t comm;   // communicator context
  std::uint16_t kind;   // TraceKind
  std::uint16_t detail; // WaitOp for waits, collective kind for collectives
  std::uint32_t flags;  // kTraceFailed
};
static_assert(sizeof(TraceEvent) == 48);

/// The operation ended with an exception.
inline constexpr std::uint32_t kTraceFailed = 1;

/// Per-rank counters. `wait_ns` is time blocked outside collectives (the Waiter's slow path),
/// `collective_ns` time inside blocking collectives (their own waits included).
struct alignas(64) RankStats {
  std::atomic<std::uint64_t> events;  // events recorded (including dropped ones)
  std::atomic<std::uint64_t> messages_sent;
  std::atomic<std::uint64_t> bytes_sent;
  std::atomic<std::uint64_t> messages_received;
  std::atomic<std::uint64_t> bytes_received;
  std::atomic<std::uint64_t> waits;
  std::atomic<std::uint64_t> wait_ns;
  std::atomic<std::uint64_t> collectives;
  std::atomic<std::uint64_t> collective_ns;
  std::atomic<std::uint64_t> pool_chunks;
  std::atomic<std::uint64_t> pool_items;
  std::atomic<std::uint64_t> pool_busy_ns;
  std::atomic<std::uint64_t> queue_puts;
  std::atomic<std::uint64_t> queue_gets;
};

/// First line of the area.
struct alignas(64) TraceAreaHeader {
  std::uint32_t ranks;
  std::uint32_t reserved;
  std::uint64_t events_per_rank;  // 0: statistics only
  std::uint64_t origin_ns;        // trace_clock_ns() when the launcher formatted the segment
};

/// Bytes of one rank's block and of the whole area.
std::size_t trace_block_bytes(int ranks, std::uint64_t events_per_rank) noexcept;
std::size_t trace_area_bytes(int ranks, std::uint64_t events_per_rank) noexcept;

/// Formats a zero-filled area.
void format_trace_area(std::span<std::byte> area, int ranks, std::uint64_t events_per_rank,
                       std::uint64_t origin_ns) noexcept;

/// One rank's view of its block (or a reader's view of any block). Cheap to copy; a
/// default-constructed view is off and records nothing.
class RankTrace {
 public:
  RankTrace() = default;
  /// The block of `rank` in a formatted area.
  RankTrace(std::span<std::byte> area, int rank) noexcept;

  [[nodiscard]] bool on() const noexcept { return stats_ != nullptr; }
  [[nodiscard]] bool events_on() const noexcept { return capacity_ != 0; }
  [[nodiscard]] int ranks() const noexcept { return ranks_; }
  [[nodiscard]] std::uint64_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] RankStats& stats() const noexcept { return *stats_; }
  [[nodiscard]] std::atomic<std::uint64_t>& bytes_to(int peer) const noexcept { return bytes_to_[peer]; }
  [[nodiscard]] std::atomic<std::uint64_t>& messages_to(int peer) const noexcept { return messages_to_[peer]; }

  /// Owner only. Appends `e` (dropped when the buffer is full; always counted).
  void record(const TraceEvent& e) const noexcept {
    std::uint64_t n = stats_->events.load(std::memory_order_relaxed);
    if (n < capacity_) {
      events_[n] = e;
      // The buffer is written once, front to back, and is cold: fetch the line a few events
      // ahead for writing, so that a later event's store does not wait for memory (~25-50 ns
      // per event on the 2-core VM, bench/trace).
      if (n + kPrefetchEvents < capacity_) __builtin_prefetch(&events_[n + kPrefetchEvents], 1, 3);
    }
    stats_->events.store(n + 1, std::memory_order_release);
  }
  /// Owner only: whether the next event will be kept (false when the buffer is full or events
  /// are off), so that a caller can skip reading the clock for an event that would be dropped.
  [[nodiscard]] bool keeps_next() const noexcept {
    return stats_->events.load(std::memory_order_relaxed) < capacity_;
  }
  /// Owner only: counts an event that is not kept (the buffer is full).
  void count_dropped() const noexcept { add(stats_->events, 1); }
  /// Owner only, once at attach: touches each page of the event buffer, so that its page faults
  /// (shared memory is allocated on first touch) happen at start rather than in traced calls.
  void prefault() const noexcept;
  /// Owner only: counter += v.
  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t v) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
  /// Owner only: a message of `bytes` to `peer`.
  void count_send(int peer, std::uint64_t bytes) const noexcept {
    add(stats_->messages_sent, 1);
    add(stats_->bytes_sent, bytes);
    add(messages_to_[peer], 1);
    add(bytes_to_[peer], bytes);
  }
  void count_receive(std::uint64_t bytes) const noexcept {
    add(stats_->messages_received, 1);
    add(stats_->bytes_received, bytes);
  }

  /// Reader: the events recorded so far (at most the capacity), and how many were dropped.
  [[nodiscard]] std::span<const TraceEvent> events() const noexcept;
  [[nodiscard]] std::uint64_t dropped() const noexcept;

 private:
  static constexpr std::uint64_t kPrefetchEvents = 8;
  RankStats* stats_ = nullptr;
  std::atomic<std::uint64_t>* bytes_to_ = nullptr;
  std::atomic<std::uint64_t>* messages_to_ = nullptr;
  TraceEvent* events_ = nullptr;
  std::uint64_t capacity_ = 0;
  int ranks_ = 0;
};

/// Names for the trace and the statistics.
const char* trace_kind_name(TraceKind kind) noexcept;

}  // namespace cohort::transport
