// Patterns layer: a deadline for timed waits (shared by the locks, the queue and the pipe).
#pragma once

#include <chrono>

namespace cohort::patterns {

/// A point in time to give up at; a negative timeout means none.
struct Deadline {
  using Clock = std::chrono::steady_clock;
  using nanoseconds = std::chrono::nanoseconds;

  explicit Deadline(nanoseconds timeout)
      : unlimited(timeout.count() < 0), at(Clock::now() + (unlimited ? nanoseconds(0) : timeout)) {}
  [[nodiscard]] bool passed() const { return !unlimited && Clock::now() >= at; }
  /// The next sleep: at most `max` (the liveness re-check period), less if the deadline is nearer.
  [[nodiscard]] nanoseconds slice(nanoseconds max) const {
    if (unlimited) return max;
    auto left = std::chrono::duration_cast<nanoseconds>(at - Clock::now());
    return left < max ? (left.count() > 0 ? left : nanoseconds(0)) : max;
  }
  bool unlimited;
  Clock::time_point at;
};

}  // namespace cohort::patterns
