// cohortrun: what each rank waits for (hang reports) and deadlock detection.
//
// Each rank's RankSlot holds a wait record (operation, peer, tag, communicator) while the rank is
// blocked in Waiter::wait, and a `progress` counter that changes whenever the rank enters or
// leaves that slow path. The launcher samples the slots from its event loop (a few cache lines
// every 200 ms) and declares a deadlock when every rank whose process still runs has been
// blocked, with the same record, progress and doorbell, for a whole window:
//
//   DeadlockDetector d(std::chrono::milliseconds(800));
//   std::vector<RankSnapshot> now = take_snapshots(segment, running);
//   if (d.observe(now, Clock::now())) print_deadlock(now);  // "rank 0: recv(source 1, tag 5)"
//
// A rank that computes (no wait record), has not attached yet, or has finished its Environment
// counts as running: the detector errs on the side of silence. Pure functions, unit-tested
// without processes (tests/launcher/wait_report_test.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/transport/segment.hpp"

namespace cohort::launcher {

/// One rank as the launcher sees it at one instant.
struct RankSnapshot {
  int rank = 0;
  bool process_running = true;  // the launcher has not reaped it yet
  transport::RankState state = transport::RankState::pending;
  transport::WaitOp op = transport::WaitOp::none;
  int peer = -1;  // world rank, -1: any
  int tag = -1;   // -1: any; for collectives, which collective
  std::uint32_t comm = 0;
  std::uint32_t object = 0;   // pattern waits: the object's segment offset / 64
  transport::WaitOp context = transport::WaitOp::none;  // pipe_recv/pipe_send around a p2p wait
  bool timed = false;         // the wait has a time limit: it ends by itself
  std::uint64_t progress = 0;
  std::uint32_t doorbell = 0;
  // The process was runnable at the sample (/proc state R; set by the launcher, not read from the
  // slot): it may be about to see what it waits for (a rank starved of CPU on a loaded machine
  // is not deadlocked), so it is never stuck.
  bool runnable = false;
};

/// Reads rank `rank`'s slot (relaxed loads: a sample, not a synchronisation).
RankSnapshot take_snapshot(const transport::Segment& segment, int rank, bool process_running);

/// Blocked in a recorded wait (and still running Cohort code).
[[nodiscard]] bool is_blocked(const RankSnapshot& s);

/// Blocked in a recorded wait without a time limit: the only waits a deadlock is made of.
[[nodiscard]] bool is_stuck(const RankSnapshot& s);

/// "running", "blocked", "finished", "exited" or "not attached" (not started Cohort, or not a
/// Cohort program).
[[nodiscard]] std::string state_text(const RankSnapshot& s);

/// The wait record in words: "recv(source 1, tag 5)", "send(dest 2, any tag)",
/// "probe(any source, any tag)", "barrier", "collective allreduce", with ", communicator C" when C
/// is not the world; pattern waits: "Queue.get (queue at 0x4a40, empty)", "Lock.acquire (held by
/// rank 0, lock at 0x4b00)", "Pipe.recv (from rank 1)", ", with a timeout" when timed. Empty when
/// nothing is recorded.
[[nodiscard]] std::string describe_wait(transport::WaitOp op, int peer, int tag, std::uint32_t comm);
[[nodiscard]] std::string describe_wait(const RankSnapshot& s);
[[nodiscard]] std::string describe_wait(transport::WaitOp op, int peer, int tag, std::uint32_t comm,
                                        std::uint32_t object, transport::WaitOp context, bool timed);

/// A cycle in the wait-for graph (rank -> the one peer it waits for), as ranks in order with the
/// first repeated at the end ({0, 1, 0}); empty when there is none. Only ranks stuck waiting for
/// one specific peer are edges (send, recv, probe, Lock.acquire: the holder).
[[nodiscard]] std::vector<int> find_cycle(std::span<const RankSnapshot> ranks);

/// "0 -> 1 -> 0"
[[nodiscard]] std::string format_cycle(std::span<const int> cycle);

/// Declares a deadlock when, over at least `window`, every sample shows every rank whose process
/// runs stuck (is_stuck: a timed wait ends by itself) with the same wait record, progress and doorbell as at the window's start, and at
/// least one such rank. Call observe() with each new sample (every ~100-250 ms).
class DeadlockDetector {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DeadlockDetector(std::chrono::milliseconds window) : window_(window) {}

  /// True when the job is deadlocked as of this sample.
  bool observe(std::span<const RankSnapshot> ranks, Clock::time_point now);

 private:
  std::chrono::milliseconds window_;
  std::vector<RankSnapshot> base_;
  std::optional<Clock::time_point> since_;
};

}  // namespace cohort::launcher
