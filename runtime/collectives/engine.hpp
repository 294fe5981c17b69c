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
#include "runtime/transport/mode_chooser.hpp"
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

/// How two-rank allreduces of 32 KiB and more move their data: by copying across address spaces
/// (mode 0: each rank reads the peer's input over its half and writes its half of the result
/// into the peer's output, one kernel copy of each byte each way) or through the staging slots
/// (mode 1: each rank copies its input into its slots and combines the peer's with its own, all
/// in user space). Which is faster depends on the machine: a kernel copy ran at 10-18 GB/s a
/// core on the guests this was measured on, a user-space copy between the cores at 2-50 GB/s
/// with the host's placement of the vCPUs (np=2, 1 MiB, 200 calls, the same minutes: 110-160 us
/// copied against 71-133 staged on the guest of 2026-12-07 night; the other way round on the
/// guests before), and a process's first touches of the staging slots' pages cost 3-6 us a page
/// on some guests, so a job's first staged calls are slow. So rank 0, which decides for both,
/// times each call it could have made either way and keeps a transport::ModeChooser per power
/// of two of the size (32 KiB, 64 KiB, ... 16 MiB and more). COHORT_PAIR_STAGED=1 (or 0) fixes
/// the mode.
class PairModes {
 public:
  /// Staging must be this much faster to be chosen (copying takes no staging slot and its
  /// first calls are not slow).
  static constexpr double kStagedMargin = 1.10;
  /// After this many timed calls of a size, three go in the mode not chosen.
  static constexpr std::uint32_t kExploreEvery = 256;
  /// Calls not timed after each change of mode: a job's first staged calls of
  /// 1 MiB take laps of the staging ring whose pages this process has not touched yet (0.3-3 ms
  /// a call against 0.07-0.13 once warm on the guest of 2026-12-07 night; with 2 instead of 4,
  /// the look at staging found it slower than copying in half of the 200-call runs).
  static constexpr std::uint32_t kSettleCalls = 4;
  static constexpr int kSizes = 10;

  PairModes();
  /// Whether rank 0 stages this call of `bytes` (>= 32 KiB).
  [[nodiscard]] bool staged(std::uint64_t bytes) noexcept;
  /// Records a call of `bytes` made in either mode that could have been made in the other.
  void record(std::uint64_t bytes, bool staged, std::uint64_t ns) noexcept;
  /// The chooser of calls of `bytes` (tests, COHORT_DEBUG).
  [[nodiscard]] transport::ModeChooser& chooser(std::uint64_t bytes) noexcept;
  /// Fixes the mode, as COHORT_PAIR_STAGED does (tests of one mode).
  void fix(bool staged) noexcept { forced_ = staged ? 1 : 0; }
  /// COHORT_DEBUG=1: one line per size whose calls were timed.
  void report(int self) const;

 private:
  struct Chooser : transport::ModeChooser {
    constexpr Chooser() noexcept : ModeChooser(kExploreEvery, kStagedMargin, kSettleCalls) {}
  };
  transport::ChoosersBySize<Chooser, std::size_t{32} << 10, kSizes> choosers_;
  int forced_ = -1;
};

/// Per-process state of the collective protocol (the publisher's bookkeeping). Owned by the
/// Runtime; one thread per rank.
class Engine {
 public:
  Engine(const transport::Segment& segment, int self, bool oversubscribed);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

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
  /// Which of the two ways two-rank allreduces take (PairModes).
  [[nodiscard]] PairModes& pair_modes() noexcept { return pair_modes_; }
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
  PairModes pair_modes_;
};

}  // namespace cohort::collectives
