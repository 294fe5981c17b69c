// Collectives layer: this rank's side of the shared-memory collective protocol.
//
// Protocol (see runtime/transport/collective_area.hpp for the memory): a rank PUBLISHES into its
// own block (descriptor + inline payload in its main lines, larger payloads chunk by chunk
// through its staging slots) and names the ranks that will read each part. The
// readers wait for the token of the call they are in, copy or combine, and bump the part's
// consumed counter. The publisher reuses a part only when the counter has reached the cumulative
// number of reads it announced, so a slow reader never sees its data overwritten, whatever
// communicator the publisher moves on to. Readers check the publisher's descriptor (operation,
// root, bytes, element size, reduction id) against their own and throw CollectiveMismatch.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/transport/collective_area.hpp"
#include "runtime/transport/cross_memory.hpp"
#include "runtime/transport/segment.hpp"
#include "runtime/transport/waiter.hpp"

namespace cohort::collectives {

/// A non-blocking collective in flight (ibarrier, ibroadcast, iallreduce).
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  /// Advances without blocking; true once complete (also when it failed: see error()).
  virtual bool progress() = 0;
};

/// Per-process state of the collective protocol (the publisher's bookkeeping). Owned by the
/// Runtime; one thread per rank.
class Engine {
 public:
  Engine(const transport::Segment& segment, int self, bool oversubscribed);

  [[nodiscard]] const transport::Segment& segment() const noexcept { return segment_; }
  [[nodiscard]] const transport::CollectiveArea& area() const noexcept { return area_; }
  [[nodiscard]] transport::Waiter& waiter() noexcept { return waiter_; }
  [[nodiscard]] int self() const noexcept { return self_; }
  /// Whether the ranks have a cpu each (not oversubscribed): then the peers of a call run at the
  /// same time as this rank, and fetching the lines of later calls early pays (Call::prefetch_).
  [[nodiscard]] bool cores_of_their_own() const noexcept { return cores_of_their_own_; }

  // Publisher bookkeeping (this rank's block).
  // Per main: cumulative reads announced, and the world ranks reading its current publication.
  std::array<std::uint64_t, transport::kCollectiveMains> main_expected{};
  std::array<std::vector<int>, transport::kCollectiveMains> main_readers;
  std::uint64_t next_chunk = 0;           // global number of the next chunk this rank publishes
  std::array<std::uint64_t, transport::kCollectiveMaxSlots> slot_expected{};
  std::array<std::vector<int>, transport::kCollectiveMaxSlots> slot_readers;
  /// Per world rank: reads of this rank's publications announced to it so far (compared with
  /// the area's released() count when that rank has exited: Call::lost_reader).
  std::vector<std::uint64_t> announced;
  /// Per world rank: reads of its publications this rank has released. Kept here, not in the
  /// segment, so that a release costs no store to another line (a shared count made np=2 8 B
  /// broadcasts ~15% slower); publish_released() copies it to the area when the rank ends.
  std::vector<std::uint64_t> released_to;
  /// Copies released_to into this rank's released() counts (Runtime::~Runtime, before the rank
  /// says it has finished).
  void publish_released() noexcept;

  // Copies across address spaces (two-rank broadcasts, see broadcast_pair in collectives.cpp).
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// Whether this rank offers to copy straight from / into its peer's buffer, and the copies.
  [[nodiscard]] transport::CrossMemoryCopier& cross_memory() noexcept { return cross_memory_; }
  /// Broadcasts and allreduces whose data crossed address spaces (tests).
  [[nodiscard]] std::uint64_t cross_memory_calls() const noexcept { return cross_memory_calls_; }
  void count_cross_memory_call() noexcept { ++cross_memory_calls_; }
  /// Where a two-rank allreduce reads its peer's input (allreduce_pair_copy; blocking code).
  std::vector<std::byte> pair_scratch;

  /// Non-blocking collectives in flight. Every collective wait advances them (a peer may need
  /// this rank to consume its earlier publication before it can publish what we wait for).
  std::vector<std::shared_ptr<PendingOp>> pending;
  void progress_pending() {
    if (progressing_ || pending.empty()) return;
    progressing_ = true;
    std::erase_if(pending, [](const std::shared_ptr<PendingOp>& op) { return op->progress(); });
    progressing_ = false;
  }

 private:
  transport::Segment segment_;
  transport::CollectiveArea area_;
  transport::Waiter waiter_;
  int self_;
  bool cores_of_their_own_;
  bool progressing_ = false;
  pid_t pid_;
  transport::CrossMemoryCopier cross_memory_;
  std::uint64_t cross_memory_calls_ = 0;
};

}  // namespace cohort::collectives
