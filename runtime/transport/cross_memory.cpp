#include "runtime/transport/cross_memory.hpp"

#include <cstdio>
#include <cstdlib>

namespace cohort::transport {

CrossMemoryCopier::CrossMemoryCopier(int self, const char* purpose) noexcept
    : self_(self), purpose_(purpose) {
  if (const char* v = std::getenv("COHORT_CMA"); v != nullptr && v[0] == '0') on_ = false;
  if (on_) platform::allow_sibling_access();
}

CrossMemory CrossMemoryCopier::copy(bool to, int peer, pid_t pid, void* remote, void* local,
                                    std::size_t bytes) noexcept {
  CrossMemory r = CrossMemory::not_permitted;
  if (injected_ > 0 && injected_after_ == 0) {
    --injected_;
  } else {
    if (injected_after_ > 0) --injected_after_;
    r = to ? platform::write_to(pid, remote, local, bytes)
           : platform::read_from(pid, remote, local, bytes);
  }
  if (r != CrossMemory::done && r != CrossMemory::peer_gone && on_) {
    on_ = false;
    if (const char* d = std::getenv("COHORT_DEBUG"); d != nullptr && d[0] == '1') {
      std::fprintf(stderr,
                   "cohort debug: rank %d: copying %zu B %s world rank %d's memory (pid %d): %s; "
                   "this rank's %s go through shared memory from now on\n",
                   self_, bytes, to ? "into" : "from", peer, static_cast<int>(pid), describe(r),
                   purpose_);
    }
  }
  return r;
}

}  // namespace cohort::transport
