// Transport layer: the job segment's layout. Pure data over memory the segment does not own.
//
//   offset 0                      SegmentHeader (2 cache lines; magic/version/size published last)
//   control_offset                RankSlot[ranks]   (1 cache line each: state, doorbell, wait record)
//   mailbox_offset                mailbox area      (runtime/transport/mailboxes.hpp)
//   collective_offset             collective area   (runtime/transport/collective_area.hpp)
//   trace_offset                  trace area        (runtime/transport/trace.hpp; only with
//                                                    cohortrun --trace/--stats, else 0 bytes)
//   heap_offset                   shared heap       (runtime/transport/shared_heap.hpp)
//   total_bytes
//
// Everything in the segment is addressed by offsets, never pointers: each process maps it at
// its own address.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace cohort::transport {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::uint64_t kSegmentMagic = 0x00544f4852'4f43ULL;  // "COHORT\0\0" little-endian
inline constexpr std::uint32_t kSegmentVersion = 1;

/// Lifecycle of a rank, written by the rank (attached, finished) and the launcher (exited).
enum class RankState : std::uint32_t {
  pending = 0,   // not attached yet
  attached = 1,  // running Cohort code
  finished = 2,  // Environment destroyed normally; will send nothing more
  exited = 3,    // the process is gone (set by the launcher or the spawning parent)
};

/// What a blocked call waits for (hang reports, deadlock detection). Written by its rank only.
/// The multiprocessing layer's waits (queue_get ... pipe_send) follow the p2p and collective ones;
/// wait_object says which object (its offset in the segment / 64), wait_peer the holder (locks).
/// kWaitTimed is or-ed into wait_op for a wait with a time limit (never part of a deadlock).
enum class WaitOp : std::uint32_t {
  none = 0, send, recv, probe, barrier, collective, other,
  queue_get, queue_put, queue_join, lock, semaphore, event, condition, sync_barrier,
  pipe_recv, pipe_send,
};
inline constexpr std::uint32_t kWaitTimed = 0x100;

/// One rank's control slot. Concurrency: `state`, `pid`, `wait_*` written by the owner rank (and
/// `state`/`exit_status` by the launcher after the process is gone); `doorbell` bumped by anyone
/// who wants the owner to re-check its mailboxes (see wake()); `sleeping` written by the owner.
struct alignas(kCacheLine) RankSlot {
  std::atomic<std::uint32_t> state;      // RankState
  std::atomic<std::uint32_t> doorbell;   // futex word
  std::atomic<std::uint32_t> sleeping;   // 1 while the owner sleeps (or is about to) on doorbell
  std::atomic<std::int32_t> pid;
  std::atomic<std::uint32_t> wait_op;    // WaitOp
  std::atomic<std::int32_t> wait_peer;
  std::atomic<std::int32_t> wait_tag;
  std::atomic<std::uint32_t> wait_comm;
  std::atomic<std::uint64_t> progress;   // changed by the owner as it works (the Waiter bumps it
                                         // entering and leaving its sleep path; p2p stores its
                                         // completion count): the deadlock detector looks for change
  std::atomic<std::int32_t> exit_status; // wait(2) status, set by the launcher when state=exited
  std::atomic<std::uint32_t> wait_object;   // pattern waits: which object (segment offset / 64)
  std::atomic<std::uint32_t> wait_context;  // WaitOp pipe_recv/pipe_send around a p2p wait, or 0
};
static_assert(sizeof(RankSlot) == kCacheLine);

/// Default size of the shared heap (SharedArray, SharedValue, locks). Its pages are not reserved
/// at launch (they are committed as they are touched), so a large default costs nothing unused.
inline constexpr std::size_t kDefaultHeapBytes = std::size_t{64} << 20;

/// The first two cache lines. `magic`, `version` and `total_bytes` are written last (release) by the
/// creator; an attaching rank waits until `magic` reads kSegmentMagic (acquire).
struct alignas(kCacheLine) SegmentHeader {
  std::atomic<std::uint64_t> magic;
  std::atomic<std::uint32_t> version;
  std::uint32_t ranks;
  std::atomic<std::uint64_t> total_bytes;
  std::uint64_t job;
  std::uint64_t control_offset;
  std::uint64_t mailbox_offset;
  std::uint64_t collective_offset;
  std::atomic<std::uint32_t> abort;            // nonzero: the job is being torn down
  std::uint32_t oversubscribed;
  std::uint64_t heap_offset;
  std::uint64_t heap_bytes;
  std::uint64_t trace_offset;     // 0: no trace area (neither --trace nor --stats)
  std::uint64_t trace_events;     // events per rank in the trace area (0: statistics only)
};
static_assert(sizeof(SegmentHeader) == 2 * kCacheLine);

/// The optional trace area (cohortrun --trace / --stats): present or not, and the size of each
/// rank's event buffer.
struct TraceConfig {
  bool enabled = false;
  std::uint64_t events_per_rank = 0;
};

/// Byte offsets of each region for a job of `ranks` ranks.
struct SegmentLayout {
  std::size_t control_offset;
  std::size_t mailbox_offset;
  std::size_t mailbox_bytes;
  std::size_t collective_offset;
  std::size_t collective_bytes;
  std::size_t trace_offset;
  std::size_t trace_bytes;
  std::size_t heap_offset;
  std::size_t heap_bytes;
  std::size_t total_bytes;
  /// Bytes to reserve (commit) at creation: everything but the heap.
  [[nodiscard]] std::size_t reserved_bytes() const noexcept { return heap_offset; }
};

/// Pure function: the layout for `ranks` ranks, a shared heap of `heap_bytes` and the trace area.
SegmentLayout segment_layout(int ranks, std::size_t heap_bytes = kDefaultHeapBytes,
                             TraceConfig trace = {});

/// A view of a formatted segment (does not own the memory).
class Segment {
 public:
  Segment() = default;
  explicit Segment(std::span<std::byte> memory) noexcept : memory_(memory) {}

  /// Formats `memory` (at least segment_layout(ranks).total_bytes, zero-filled) for a job and
  /// publishes the header last. Called once, by the launcher or the spawning process.
  static Segment format(std::span<std::byte> memory, int ranks, std::uint64_t job,
                        bool oversubscribed, std::size_t heap_bytes = kDefaultHeapBytes,
                        TraceConfig trace = {});

  /// Checks magic, version and size; throws cohort::ContractError describing the mismatch.
  void validate(std::uint64_t expected_job, int expected_ranks) const;

  [[nodiscard]] SegmentHeader& header() const noexcept {
    return *reinterpret_cast<SegmentHeader*>(memory_.data());
  }
  [[nodiscard]] int ranks() const noexcept { return static_cast<int>(header().ranks); }
  [[nodiscard]] RankSlot& slot(int rank) const noexcept {
    return reinterpret_cast<RankSlot*>(memory_.data() + header().control_offset)[rank];
  }
  [[nodiscard]] std::span<std::byte> mailbox_area() const noexcept;
  [[nodiscard]] std::span<std::byte> collective_area() const noexcept;
  [[nodiscard]] std::span<std::byte> heap_area() const noexcept;
  /// The trace area (runtime/transport/trace.hpp); empty when the job has none.
  [[nodiscard]] std::span<std::byte> trace_area() const noexcept;
  [[nodiscard]] TraceConfig trace_config() const noexcept {
    return {header().trace_offset != 0, header().trace_events};
  }
  [[nodiscard]] std::span<std::byte> memory() const noexcept { return memory_; }

  /// True while `rank` can still send (pending, attached).
  [[nodiscard]] bool alive(int rank) const noexcept {
    auto s = static_cast<RankState>(slot(rank).state.load(std::memory_order_acquire));
    return s == RankState::pending || s == RankState::attached;
  }

  /// Makes `rank` re-check its mailboxes: bumps its doorbell and wakes it, with a futex syscall
  /// only if it said it is asleep. Callable by any process; lock-free.
  void wake(int rank) const noexcept;

  /// Wakes every rank unconditionally (launcher: a rank died or the job is aborting).
  void wake_all() const noexcept;

 private:
  std::span<std::byte> memory_;
};

}  // namespace cohort::transport
