#include "runtime/platform/fork.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>

#include "runtime/platform/system_error.hpp"

namespace cohort::platform {

pid_t fork_child(bool die_with_parent, const unsigned long* cpus, std::size_t cpu_mask_bytes) {
  pid_t parent = ::getpid();
  std::fflush(nullptr);  // buffered output must not be written twice
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork (cohort::spawn)");
  if (pid == 0) {
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);  // the parent died before prctl took effect
    }
    if (cpus != nullptr && cpu_mask_bytes > 0) {
      ::sched_setaffinity(0, cpu_mask_bytes, reinterpret_cast<const cpu_set_t*>(cpus));
    }
  }
  return pid;
}

void exit_child(int code) noexcept {
  std::fflush(nullptr);
  ::_exit(code);
}

int available_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

}  // namespace cohort::platform
