// Platform layer: copies between this process and another one of the job (cross-memory attach,
// process_vm_readv / process_vm_writev). The kernel copies straight from one address space to
// the other: one copy, no shared staging buffer in between.
//
// Permission is the kernel's ptrace access check: same user, the peer dumpable, and, where the
// Yama LSM is on (ptrace_scope 1), the peer must name an ancestor of the caller as its tracer
// (allow_sibling_access()). Seccomp profiles may forbid the calls. Callers fall back to copying
// through shared memory when a copy says not_permitted.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace cohort::platform {

enum class CrossMemory {
  done,           // every byte copied
  not_permitted,  // EPERM, EACCES, ENOSYS (seccomp, Yama, a non-dumpable peer, no kernel support)
  peer_gone,      // ESRCH: the peer process has exited
  bad_address,    // EFAULT: a range is not mapped (in the peer or here)
};

/// Copies `bytes` from address `remote` of process `pid` to `local`. Retries EINTR and partial
/// copies; noexcept (the outcome says what happened).
CrossMemory read_from(pid_t pid, const void* remote, void* local, std::size_t bytes) noexcept;

/// Copies `bytes` from `local` to address `remote` of process `pid`, as read_from.
CrossMemory write_to(pid_t pid, void* remote, const void* local, std::size_t bytes) noexcept;

/// Lets this process's siblings (the other descendants of its parent: the ranks of the same
/// cohortrun job or of the same spawn()) use read_from / write_to on it where Yama restricts
/// ptrace to descendants (prctl PR_SET_PTRACER, the parent as tracer). A no-op without Yama.
void allow_sibling_access() noexcept;

/// "done", "not permitted", ... for messages.
const char* describe(CrossMemory r) noexcept;

}  // namespace cohort::platform
