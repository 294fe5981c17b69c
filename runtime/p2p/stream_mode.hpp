// Point-to-point: which stores the sender of a large message uses to fill the stream, chosen by
// the receiver from what it measured.
//
// Why: on this kind of machine the two cores hand cache lines over at one of two speeds that
// change from minute to minute (README, Benchmarks). A pipelined copy through the stream with
// ordinary stores runs at 20-50 GB/s in the fast placement and 2-9 GB/s in the slow one, where
// the reader pulls every line out of the writer's cache. Non-temporal stores send the lines to
// memory instead and run at 16-20 GB/s in both. So neither is best all the time.
//
// How: the receiver times each large transfer from the moment it starts taking its bytes to the
// moment it has all of them (what a user waits for), and records it in a transport::ModeChooser
// (mode 1: non-temporal). It asks the sender for the chosen mode through its consumer line
// (StreamConsumer::request_nt), and now and then for the other, so that a change of placement
// is noticed. The sender reads the request when it starts a message and marks the frame with the
// mode it used, so every measurement is charged to the mode that produced it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/transport/mode_chooser.hpp"

namespace cohort::p2p {

class StreamModeChooser : public transport::ModeChooser {
 public:
  /// Transfers smaller than this are not timed (too short to tell the modes apart, and at these
  /// sizes the receiver wants the data in cache, which ordinary stores leave there).
  static constexpr std::size_t kMinBytes = std::size_t{512} << 10;
  /// After this many timed transfers, three go in the other mode.
  static constexpr std::uint32_t kExploreEvery = 256;
  /// Non-temporal stores must be this much faster to be chosen (ordinary ones leave the data
  /// where the receiver's next reads find it).
  static constexpr double kNtMargin = 1.10;

  constexpr StreamModeChooser() noexcept : ModeChooser(kExploreEvery, kNtMargin) {}
};

/// The receiver's choice, for a raw message that the sender offers as a split copy (engine.cpp,
/// "split copies"), between taking the offer (mode 0: each side copies half straight between
/// the two buffers, a kernel copy) and answering "stream it" (mode 1: the pipelined copy through
/// the pair's stream, in user space). On the guest of 2026-12-07 night a
/// kernel copy ran at ~10 GB/s a core, so split windows of 1 MiB reached 17.7-20.2 GB/s, and
/// the stream 25.8-27.6 in the host's fast placement and 12.1-17.3 in its slow one (the same
/// minutes); on the guests before, the split was the faster one every time. A split transfer
/// is timed from the answer to the last byte, a streamed one as for StreamModeChooser.
/// COHORT_P2P_SPLIT=1 (or 0) fixes the mode (1: always split, as before). One per size class
/// and sender (SplitChoices).
class SplitModeChooser : public transport::ModeChooser {
 public:
  static constexpr std::uint32_t kExploreEvery = 256;
  /// The stream must be this much faster to be chosen (a split copy takes no room in the
  /// stream and keeps both cores' caches as they were).
  static constexpr double kStreamMargin = 1.10;
  /// Transfers not timed after each change of way: a pair's first laps of its stream touch
  /// pages neither process has touched yet.
  static constexpr std::uint32_t kSettle = 4;

  constexpr SplitModeChooser() noexcept : ModeChooser(kExploreEvery, kStreamMargin, kSettle) {}
};

/// A receiver's SplitModeChooser per power of two of the message size, for one sender: 64 KiB
/// to 128 KiB, ..., 8 MiB to 16 MiB, 16 MiB and more. On the guest of 2026-12-08 (AMD EPYC
/// family 26) the stream was the faster way at every size (64 KiB ping-pong 1.5-2.6 us against
/// 5.0-6.4 split, 256 KiB windows 46 GB/s against 18.6); on the guest of 2026-12-07 the split
/// was faster from 128 KiB up; until 2026-12-08 only messages of 512 KiB and more were
/// measured, and smaller ones always took the offer.
using SplitChoices = transport::ChoosersBySize<SplitModeChooser, std::size_t{64} << 10, 9>;

/// Whether a streamed transfer's time speaks for the stream in the split-or-stream choice:
/// always, unless the store-mode chooser timed it (`timed_by_modes`) in the store mode it does
/// not prefer. Its looks at that mode take longer than the stream usually does (non-temporal
/// stores at 57-60 us a MiB where ordinary ones took 24), and when those were the stream's three
/// latest times the split looked faster and won for the next 256 transfers (13-33% of a 64 x
/// 1 MiB window run split at ~19 GB/s while the stream ran at 43).
inline bool stream_time_counts_for_split(bool timed_by_modes, bool nt,
                                         const StreamModeChooser& modes) noexcept {
  return !timed_by_modes || nt == modes.preferred();
}

}  // namespace cohort::p2p
