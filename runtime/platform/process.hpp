// Platform layer: process handles (pidfd) and signals.
#pragma once

#include <sys/types.h>

#include <string>

#include "runtime/platform/shared_memory.hpp"

namespace cohort::platform {

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits. Throws on failure.
FileDescriptor open_pidfd(pid_t pid);

/// pidfd_send_signal(2); returns false if the process is already gone (ESRCH).
bool send_signal(int pidfd, int signal) noexcept;

/// "SIGSEGV", "SIGKILL", ... (or "signal N").
std::string signal_name(int signal);

}  // namespace cohort::platform
