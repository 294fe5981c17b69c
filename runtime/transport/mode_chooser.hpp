// Transport: a choice between two ways of moving the same bytes, made from what each measured.
//
// Why: on this kind of machine the speed of a way of copying depends on the host's placement of
// the two vCPUs and on the CPU generation, and it changes under a running job. The store mode of
// a point-to-point stream (p2p/stream_mode.hpp) and the two-rank broadcasts and allreduces
// (copy across address spaces, or through the staging slots: collectives/engine.hpp) each pick
// one of two modes this way.
//
// How: the caller times each transfer it could have made either way and records it with the
// mode that made it; the chooser keeps a rate per mode (the median of its last three timed
// transfers, so that one transfer that met a preemption does not flip the choice) and says which
// to use next: the default mode (0) until the other one (1) is at least `margin` times faster,
// and now and then three transfers' worth of the other one, so that a change is noticed. The
// first transfers after a change of mode start from the caches (and page mappings) the other
// mode left and are not counted, nor is the first transfer of all (cold caches, buffers not yet
// faulted in). Pure: unit-tested with made-up timings (tests/unit/stream_mode_test.cpp,
// tests/unit/pair_modes_test.cpp).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cohort::transport {

/// A chooser's mode fixed by environment variable `name`: 0 or 1 when it starts with "0" or "1"
/// (tests and benchmarks of one mode), -1 otherwise (the measured choice).
inline int mode_fixed_by_environment(const char* name) noexcept {
  const char* v = std::getenv(name);
  return v != nullptr && (v[0] == '0' || v[0] == '1') ? v[0] - '0' : -1;
}

class ModeChooser {
 public:
  /// After `explore_every` timed transfers, kSamples timed transfers go in the mode not chosen;
  /// mode 1 is chosen only when it is `margin` times faster than mode 0; the first transfer of
  /// all and the first `settle` (at least 1) after each change of mode are not timed.
  constexpr ModeChooser(std::uint32_t explore_every, double margin,
                        std::uint32_t settle = 1) noexcept
      : explore_every_(explore_every), margin_(margin), settle_(settle < 1 ? 1 : settle),
        since_change_(settle_ - 1) {}

  /// Records a transfer of `bytes` made in `mode` (false: 0, true: 1) that took `ns`, and
  /// returns the mode to use next.
  bool record(bool mode, std::size_t bytes, std::uint64_t ns) noexcept {
    const int m = mode ? 1 : 0;
    ++count_[m];
    if (mode != last_) since_change_ = 0;
    last_ = mode;
    const bool settled = since_change_ >= settle_;
    if (!settled) ++since_change_;
    if (settled) {
      samples_[m][seen_[m]++ % kSamples] =
          static_cast<double>(bytes) / static_cast<double>(ns == 0 ? 1 : ns);
      ++timed_;
    }
    if (probing_) {
      // Asked for the other mode: keep asking until kSamples settled transfers in it have
      // arrived (those under way when we asked come first), or give up if they never come.
      if (++probe_age_ > kProbePatience + settle_ + kSamples ||
          (settled && mode == want_ && seen_[m] >= kSamples)) {
        probing_ = false;
      } else {
        return want_;
      }
    }
    if (seen_[0] == 0 || seen_[1] == 0) {  // time mode 0 twice, then look at the other mode
      if (timed_ >= 2) probe(seen_[1] == 0);
      return want_;
    }
    const bool best = preferred();
    if (++since_probe_ >= explore_every_) {
      probe(!best);
      return want_;
    }
    want_ = best;
    return want_;
  }

  /// The mode to use next (what the last record() returned; mode 0 before any).
  [[nodiscard]] bool want() const noexcept { return want_; }
  /// The mode this chooser judges faster from what it has measured, whatever it is looking at
  /// now: the faster one (by `margin` for mode 1) once both are measured, else the one measured
  /// (mode 0 before any).
  [[nodiscard]] bool preferred() const noexcept {
    if (seen_[0] == 0 || seen_[1] == 0) return seen_[0] == 0 && seen_[1] != 0;
    return rate(true) > rate(false) * margin_;
  }
  /// The rate of each mode in bytes per nanosecond (GB/s): the median of its last kSamples
  /// timed transfers (one transfer that met a preemption or an interrupt moves nothing); 0
  /// until measured.
  [[nodiscard]] double rate(bool mode) const noexcept {
    const int m = mode ? 1 : 0;
    const std::uint64_t n = seen_[m] < kSamples ? seen_[m] : kSamples;
    if (n == 0) return 0;
    double v[kSamples];
    for (std::uint64_t i = 0; i < n; ++i) v[i] = samples_[m][i];
    if (n == 1) return v[0];
    if (n == 2) return (v[0] + v[1]) / 2;
    return std::max(std::min(v[0], v[1]), std::min(std::max(v[0], v[1]), v[2]));
  }
  /// Transfers recorded in each mode (timed or not).
  [[nodiscard]] std::uint64_t count(bool mode) const noexcept { return count_[mode ? 1 : 0]; }
  /// "NAME0 r0 GB/s (n0), NAME1 r1 GB/s (n1)", for COHORT_DEBUG reports.
  [[nodiscard]] std::string describe(const char* name0, const char* name1) const {
    char line[160];
    std::snprintf(line, sizeof line, "%s %.1f GB/s (%llu), %s %.1f GB/s (%llu)", name0, rate(false),
                  static_cast<unsigned long long>(count_[0]), name1, rate(true),
                  static_cast<unsigned long long>(count_[1]));
    return line;
  }

 private:
  static constexpr std::uint32_t kProbePatience = 8;

  void probe(bool mode) noexcept {
    seen_[mode ? 1 : 0] = 0;  // the probed mode is judged on what the probe measures
    want_ = mode;
    probing_ = true;
    probe_age_ = 0;
    since_probe_ = 0;
  }

  std::uint32_t explore_every_;
  double margin_;
  std::uint32_t settle_;
  std::uint32_t since_change_;
  static constexpr std::uint64_t kSamples = 3;
  double samples_[2][kSamples] = {};
  std::uint64_t seen_[2] = {0, 0};  // timed transfers per mode since its last probe began
  std::uint64_t timed_ = 0;
  std::uint64_t count_[2] = {0, 0};
  std::uint32_t since_probe_ = 0;
  std::uint32_t probe_age_ = 0;
  bool want_ = false;
  bool last_ = false;
  bool probing_ = false;
};

/// A chooser per power of two of a transfer's size: class 0 holds sizes below `MinBytes * 2`
/// (smaller ones included), class c sizes from `MinBytes << c` up to twice that, the last class
/// everything from `MinBytes << (Sizes - 1)` up. A rate is bytes per nanosecond and a small
/// transfer's fixed costs weigh more in it, so sizes are not mixed; and where two ways cross
/// over depends on the machine. Used by p2p's split-or-stream choice (SplitChoices) and the
/// two-rank allreduce (collectives::PairModes).
template <class Chooser, std::size_t MinBytes, int Sizes>
class ChoosersBySize {
 public:
  static constexpr std::size_t kMinBytes = MinBytes;
  static constexpr int kSizes = Sizes;

  /// The size class of a transfer of `bytes`.
  static constexpr int size_class(std::uint64_t bytes) noexcept {
    const int c =
        static_cast<int>(std::bit_width(bytes)) - static_cast<int>(std::bit_width(MinBytes));
    return std::clamp(c, 0, Sizes - 1);
  }
  /// The smallest size of class `c` in KiB (COHORT_DEBUG reports).
  static constexpr std::uint64_t class_kib(int c) noexcept {
    return std::uint64_t{MinBytes >> 10} << c;
  }

  /// The chooser of transfers of `bytes`.
  [[nodiscard]] Chooser& of(std::uint64_t bytes) noexcept {
    return choosers_[static_cast<std::size_t>(size_class(bytes))];
  }
  /// The chooser of size class `c`.
  [[nodiscard]] const Chooser& at(int c) const noexcept {
    return choosers_[static_cast<std::size_t>(c)];
  }

 private:
  std::array<Chooser, static_cast<std::size_t>(Sizes)> choosers_{};
};

}  // namespace cohort::transport
