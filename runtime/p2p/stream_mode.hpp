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
// moment it has all of them (what a user waits for), and keeps a running rate per store mode.
// It asks the sender for the faster one through its consumer line (StreamConsumer::request_nt),
// and now and then for the other, so that a change of placement is noticed. The sender reads the
// request when it starts a message and marks the frame with the mode it used, so every
// measurement is charged to the mode that produced it. Pure: unit-tested with made-up timings.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cohort::p2p {

class StreamModeChooser {
 public:
  /// Transfers smaller than this are not timed (too short to tell the modes apart, and at these
  /// sizes the receiver wants the data in cache, which ordinary stores leave there).
  static constexpr std::size_t kMinBytes = std::size_t{512} << 10;
  /// After this many timed transfers in the better mode, one goes in the other mode.
  static constexpr std::uint32_t kExploreEvery = 128;
  /// Non-temporal stores must be this much faster to be chosen (ordinary ones leave the data
  /// where the receiver's next reads find it).
  static constexpr double kNtMargin = 1.10;

  /// Records a transfer of `bytes` sent with non-temporal stores or not that took `ns`, and
  /// returns the mode to ask the sender for next.
  bool record(bool nt, std::size_t bytes, std::uint64_t ns) noexcept {
    ++count_[nt ? 1 : 0];
    // The first transfer after a change of mode starts from caches the other mode left (lines
    // evicted by non-temporal stores, or left in the other core's cache): not counted.
    const bool settled = nt == last_nt_;
    last_nt_ = nt;
    if (settled) {
      const double rate = static_cast<double>(bytes) / static_cast<double>(ns == 0 ? 1 : ns);
      double& r = rate_[nt ? 1 : 0];
      r = r == 0 ? rate : (r + rate) / 2;  // a placement change shows within two transfers
      ++timed_;
    }
    if (probing_) {
      // Asked for the other mode: keep asking until a settled transfer in it arrives (those
      // under way when we asked come first), or give up if the sender never switches.
      if ((settled && nt == want_) || ++probe_age_ > kProbePatience) probing_ = false;
      else return want_;
    }
    if (rate_[0] == 0 || rate_[1] == 0) {  // time ordinary stores twice, then try the other mode
      if (timed_ >= 2) probe(rate_[1] == 0);
      return want_;
    }
    const bool best = rate_[1] > rate_[0] * kNtMargin;
    if (++since_probe_ >= kExploreEvery) {
      probe(!best);
      return want_;
    }
    want_ = best;
    return want_;
  }

  /// Running rates in bytes per nanosecond (GB/s): [0] ordinary stores, [1] non-temporal; 0
  /// until measured.
  [[nodiscard]] double rate(bool nt) const noexcept { return rate_[nt ? 1 : 0]; }
  /// Transfers received in each mode (timed or not).
  [[nodiscard]] std::uint64_t count(bool nt) const noexcept { return count_[nt ? 1 : 0]; }

 private:
  static constexpr std::uint32_t kProbePatience = 8;

  void probe(bool nt) noexcept {
    want_ = nt;
    probing_ = true;
    probe_age_ = 0;
    since_probe_ = 0;
  }

  double rate_[2] = {0, 0};
  std::uint64_t timed_ = 0;
  std::uint64_t count_[2] = {0, 0};
  std::uint32_t since_probe_ = 0;
  std::uint32_t probe_age_ = 0;
  bool want_ = false;
  bool last_nt_ = false;
  bool probing_ = false;
};

}  // namespace cohort::p2p
