// Platform layer: cross-memory attach (see cross_memory.hpp).
#include "runtime/platform/cross_memory.hpp"

#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace cohort::platform {

namespace {

CrossMemory outcome(int err) noexcept {
  switch (err) {
    case ESRCH: return CrossMemory::peer_gone;
    case EFAULT: return CrossMemory::bad_address;
    default: return CrossMemory::not_permitted;  // EPERM, EACCES, ENOSYS, ...
  }
}

/// One direction of the copy. The kernel may copy less than asked (it stops at the first page it
/// cannot fault in, or on a signal after some bytes): go on from where it stopped.
template <class Call>
CrossMemory copy_all(std::size_t bytes, Call&& call) noexcept {
  std::size_t done = 0;
  while (done < bytes) {
    ssize_t n = call(done, bytes - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return outcome(errno);
    }
    if (n == 0) return CrossMemory::bad_address;  // no progress: an unmapped page
    done += static_cast<std::size_t>(n);
  }
  return CrossMemory::done;
}

}  // namespace

CrossMemory read_from(pid_t pid, const void* remote, void* local, std::size_t bytes) noexcept {
  return copy_all(bytes, [&](std::size_t at, std::size_t len) {
    iovec l{static_cast<char*>(local) + at, len};
    iovec r{const_cast<char*>(static_cast<const char*>(remote)) + at, len};
    return ::process_vm_readv(pid, &l, 1, &r, 1, 0);
  });
}

CrossMemory write_to(pid_t pid, void* remote, const void* local, std::size_t bytes) noexcept {
  return copy_all(bytes, [&](std::size_t at, std::size_t len) {
    iovec l{const_cast<char*>(static_cast<const char*>(local)) + at, len};
    iovec r{static_cast<char*>(remote) + at, len};
    return ::process_vm_writev(pid, &l, 1, &r, 1, 0);
  });
}

void allow_sibling_access() noexcept {
  // EINVAL without Yama: nothing to allow then.
  (void)::prctl(PR_SET_PTRACER, static_cast<unsigned long>(::getppid()), 0, 0, 0);
}

const char* describe(CrossMemory r) noexcept {
  switch (r) {
    case CrossMemory::done: return "done";
    case CrossMemory::not_permitted: return "not permitted";
    case CrossMemory::peer_gone: return "the peer process has exited";
    case CrossMemory::bad_address: return "an address range is not mapped";
  }
  return "?";
}

}  // namespace cohort::platform
