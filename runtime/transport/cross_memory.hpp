// Transport layer: copies straight between two ranks' address spaces (the platform's
// cross-memory attach), for the layers above, which use no platform call themselves.
//
//   transport::CrossMemoryCopier copier(self, "large messages");
//   if (copier.on() && copier.copy(false, peer, pid, remote, buffer, n) == CrossMemory::done) ...
#pragma once

#include <sys/types.h>

#include <cstddef>

#include "runtime/platform/cross_memory.hpp"

namespace cohort::transport {

using platform::CrossMemory;
using platform::describe;

/// One rank's use of cross-memory copies for one purpose (two-rank broadcasts, split
/// point-to-point messages): whether it offers them, and the copies. Single-threaded, as the
/// engine that owns it.
class CrossMemoryCopier {
 public:
  /// On unless COHORT_CMA=0; when on, lets this process's siblings (the other ranks) copy from
  /// and into it (platform::allow_sibling_access). `purpose` names what falls back in the
  /// COHORT_DEBUG=1 line ("two-rank broadcasts", "large messages").
  CrossMemoryCopier(int self, const char* purpose) noexcept;

  /// Whether this rank offers cross-memory copies: off for good after one the kernel refused.
  [[nodiscard]] bool on() const noexcept { return on_; }
  /// Copies `bytes` into (`to`) or out of `remote` in world rank `peer` (process `pid`).
  /// Anything but done or peer_gone turns on() off, and COHORT_DEBUG=1 prints why once.
  CrossMemory copy(bool to, int peer, pid_t pid, void* remote, void* local,
                   std::size_t bytes) noexcept;

  /// Tests: turn the offer on or off; make `count` copies fail as not permitted, after the
  /// next `after` copies (which go to the kernel as usual).
  void allow(bool on) noexcept { on_ = on; }
  void inject_failures(int count, int after = 0) noexcept {
    injected_ = count;
    injected_after_ = after;
  }

 private:
  int self_;
  const char* purpose_;
  bool on_ = true;
  int injected_ = 0;
  int injected_after_ = 0;
};

}  // namespace cohort::transport
