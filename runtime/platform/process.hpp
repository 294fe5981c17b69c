// Platform layer: processes (spawn, pidfd, reaping), signals, pipes, epoll, affinity. Every
// syscall the launcher needs lives here; failures throw std::system_error naming the object and
// EINTR is retried.
//
// Example (what cohortrun does for each rank):
//   platform::SpawnRequest req;
//   req.path = "/bin/echo"; req.argv = argv; req.envp = envp;
//   pid_t pid = platform::spawn(req);
//   auto pidfd = platform::open_pidfd(pid);
//   ... epoll on pidfd ...; auto done = platform::reap(pidfd.get());
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/platform/shared_memory.hpp"

namespace cohort::platform {

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits. Throws on failure.
FileDescriptor open_pidfd(pid_t pid);

/// pidfd_send_signal(2); returns false if the process is already gone (ESRCH).
bool send_signal(int pidfd, int signal) noexcept;

/// "SIGSEGV", "SIGKILL", ... (or "signal N").
std::string signal_name(int signal);

/// How a child process ended, from waitid(P_PIDFD).
struct ExitInfo {
  int wait_status = 0;       // encoded as by wait(2): WIFEXITED/WEXITSTATUS/WIFSIGNALED work on it
  long max_rss_kib = 0;      // peak resident set of the child (ru_maxrss)
};

/// Reaps the child behind `pidfd` if it has ended (WNOHANG); nullopt while it runs. Throws on error.
std::optional<ExitInfo> reap(int pidfd);

/// What spawn() does in the child between fork and exec. Everything is prepared by the caller
/// before the fork (the child only makes syscalls: no allocation, no locks).
struct SpawnRequest {
  const char* path = nullptr;          // absolute or relative path of the program (not searched)
  char* const* argv = nullptr;         // null-terminated
  char* const* envp = nullptr;         // null-terminated
  int stdin_fd = -1;                   // dup2'ed onto 0/1/2 when >= 0, else inherited
  int stdout_fd = -1;
  int stderr_fd = -1;
  int keep_fd = -1;                    // close-on-exec cleared in the child (the job segment)
  const unsigned long* cpu_mask = nullptr;  // sched_setaffinity mask (CpuMask::data()), or none
  std::size_t cpu_mask_bytes = 0;
  bool die_with_parent = true;         // PR_SET_PDEATHSIG(SIGKILL), race with the parent closed
  const sigset_t* signal_mask = nullptr;  // mask the child starts with (the parent blocks some)
  long open_files_limit = -1;          // RLIMIT_NOFILE soft limit restored in the child (>= 0)
};

/// fork + child setup + execve. Returns the child's pid; throws std::system_error if fork fails.
/// If the child cannot be set up or exec fails, it writes one line naming `request.path` to its
/// stderr and exits with 127 (as a shell does).
pid_t spawn(const SpawnRequest& request);

/// The scheduler state of process `pid` from /proc/PID/stat ('R' running or runnable, 'S'
/// sleeping, 'D', 'Z', ...), or '?' when it cannot be read (gone, no /proc).
char process_state(pid_t pid) noexcept;

/// Kills `pid` (SIGKILL) and reaps it: for a child that could not be put under supervision.
void kill_and_reap(pid_t pid) noexcept;

/// Makes this process the "child subreaper" of its descendants (prctl PR_SET_CHILD_SUBREAPER):
/// a process whose parent ends is re-parented to this one instead of init, so that a launcher can
/// find, end and reap what its ranks left running. Returns false if the kernel refuses.
bool become_subreaper() noexcept;

/// The pids of this process's living children (from /proc: every process whose parent is this
/// one), zombies excluded. Empty when there are none or /proc cannot be read.
std::vector<pid_t> living_children();

/// Reaps every child of this process that has ended (waitpid WNOHANG); returns how many.
int reap_ended_children() noexcept;

/// Whether this process has any child, running or ended and not yet reaped (waitid WNOWAIT: a
/// system call, where living_children() reads all of /proc).
bool has_children() noexcept;

/// Raises this process's soft limit of open files to the hard limit (a job holds a pidfd and up
/// to two pipes per rank) and returns the previous soft limit, for spawn() to restore in children.
long raise_open_files_limit() noexcept;

/// A CPU set in the kernel's format (array of unsigned long bits), for spawn() and affinity.
class CpuMask {
 public:
  CpuMask() = default;
  explicit CpuMask(std::span<const unsigned> cpus);
  [[nodiscard]] const unsigned long* data() const noexcept { return words_.data(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return words_.size() * sizeof(unsigned long); }
  [[nodiscard]] bool empty() const noexcept { return words_.empty(); }

 private:
  std::vector<unsigned long> words_;
};

/// The CPUs this process may run on (sched_getaffinity), ascending.
std::vector<unsigned> current_affinity();

/// Searches `name` like execvp: a name containing '/' is used as is, otherwise each PATH entry
/// (default "/bin:/usr/bin") is tried. Returns the path of an executable regular file, or
/// nullopt with `why` set ("not found", "permission denied", "is a directory").
std::optional<std::string> find_executable(std::string_view name, std::string& why);

/// 64 random bits from getrandom(2).
std::uint64_t random_u64();

/// A pipe; both ends close-on-exec, the read end non-blocking.
struct Pipe {
  FileDescriptor read;
  FileDescriptor write;
};
Pipe make_pipe(std::string_view what);

/// Reads what is available: returns bytes read, 0 at end of file, -1 if nothing is available
/// now (EAGAIN). Throws on other errors.
long read_some(int fd, std::span<char> buffer, std::string_view what);

/// Writes all of `data` (blocking). Returns false if the reader is gone (EPIPE) or on EIO;
/// output is then dropped, never fatal.
bool write_all(int fd, std::span<const char> data) noexcept;

/// open(2) with O_CLOEXEC; throws naming `path`.
FileDescriptor open_file(const std::string& path, int flags, unsigned mode = 0644);

/// Creates `path` and its missing parents (mode 0755); throws naming the path.
void make_directories(const std::string& path);

/// Blocks `signals` in this (single-threaded) process and returns the previous mask.
sigset_t block_signals(std::span<const int> signals);

/// A signalfd for `signals` (which the caller has blocked).
class SignalChannel {
 public:
  explicit SignalChannel(std::span<const int> signals);
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  /// The next pending signal number, or nullopt when none is pending.
  std::optional<int> next();

 private:
  FileDescriptor fd_;
};

/// An epoll set. Each registered descriptor carries a 64-bit tag returned by wait().
class Poller {
 public:
  Poller();
  /// Watches `fd` for input (EPOLLIN; hang-ups and errors are reported too).
  void add(int fd, std::uint64_t tag);
  void remove(int fd) noexcept;
  /// Waits at most `timeout` (negative: forever) and returns the tags of the ready descriptors.
  std::span<const std::uint64_t> wait(std::chrono::milliseconds timeout);

 private:
  FileDescriptor fd_;
  std::vector<std::uint64_t> ready_;
};

}  // namespace cohort::platform
