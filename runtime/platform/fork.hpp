// Platform layer: fork without exec (cohort::spawn runs a callable in the child).
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace cohort::platform {

/// fork(2). In the child (return 0) the process gets PR_SET_PDEATHSIG(SIGKILL) when
/// `die_with_parent` (with the race against an already-dead parent closed) and, when `cpus` is
/// non-empty, the affinity mask `cpus` (kernel format, `cpu_mask_bytes` long). Throws
/// std::system_error in the parent if fork fails.
pid_t fork_child(bool die_with_parent, const unsigned long* cpus, std::size_t cpu_mask_bytes);

/// _exit(2) after flushing stdio: ends a forked child without running the parent's atexit
/// handlers or static destructors.
[[noreturn]] void exit_child(int code) noexcept;

/// Number of CPUs this process may run on.
int available_cpus() noexcept;

}  // namespace cohort::platform
