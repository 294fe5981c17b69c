#include "runtime/platform/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "runtime/platform/system_error.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace cohort::platform {

FileDescriptor open_pidfd(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) throw_errno(fmt::format("pidfd_open(pid {})", pid));
  return FileDescriptor(static_cast<int>(fd));
}

bool send_signal(int pidfd, int signal) noexcept {
  return ::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) == 0;
}

std::string signal_name(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  if (abbrev == nullptr) return fmt::format("signal {}", signal);
  return fmt::format("SIG{}", abbrev);
}

std::optional<ExitInfo> reap(int pidfd) {
  siginfo_t info{};
  rusage usage{};
  // The raw syscall also returns the child's resource usage (glibc's waitid does not).
  retry_on_eintr([&] { return ::syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | WNOHANG, &usage); },
                 [&] { return fmt::format("waitid(pidfd {})", pidfd); });
  if (info.si_pid == 0) return std::nullopt;
  ExitInfo out;
  switch (info.si_code) {
    case CLD_EXITED: out.wait_status = (info.si_status & 0xff) << 8; break;
    case CLD_DUMPED: out.wait_status = (info.si_status & 0x7f) | 0x80; break;
    default: out.wait_status = info.si_status & 0x7f; break;  // CLD_KILLED
  }
  out.max_rss_kib = usage.ru_maxrss;
  return out;
}

namespace {

// Child side of spawn(): only async-signal-safe calls from here on.
void child_write(const char* s) noexcept {
  std::size_t n = ::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

[[noreturn]] void child_fail(const SpawnRequest& r, const char* step) noexcept {
  int err = errno;
  child_write("cohortrun: cannot ");
  child_write(step);
  child_write(" ");
  child_write(r.path);
  child_write(": ");
  const char* desc = ::strerrordesc_np(err);
  child_write(desc != nullptr ? desc : "unknown error");
  child_write("\n");
  ::_exit(127);
}

bool child_dup(int from, int to) noexcept {
  if (from < 0) return true;
  if (from == to) return keep_across_exec(from);
  while (::dup2(from, to) < 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

[[noreturn]] void child_main(const SpawnRequest& r, pid_t parent) noexcept {
  if (r.die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(r, "set the parent-death signal for");
    if (::getppid() != parent) ::_exit(127);  // the launcher died before prctl: do not run
  }
  if (r.signal_mask != nullptr) ::sigprocmask(SIG_SETMASK, r.signal_mask, nullptr);
  if (r.open_files_limit >= 0) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      lim.rlim_cur = static_cast<rlim_t>(r.open_files_limit);
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
  }
  if (r.cpu_mask != nullptr &&
      ::sched_setaffinity(0, r.cpu_mask_bytes, reinterpret_cast<const cpu_set_t*>(r.cpu_mask)) != 0) {
    child_fail(r, "bind to its cpus");
  }
  if (!child_dup(r.stdin_fd, STDIN_FILENO) || !child_dup(r.stdout_fd, STDOUT_FILENO) ||
      !child_dup(r.stderr_fd, STDERR_FILENO)) {
    child_fail(r, "redirect the output of");
  }
  if (r.keep_fd >= 0 && !keep_across_exec(r.keep_fd)) child_fail(r, "pass the job segment to");
  ::execve(r.path, r.argv, r.envp);
  child_fail(r, "execute");
}

}  // namespace

pid_t spawn(const SpawnRequest& request) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw_errno(fmt::format("fork (to start {})", request.path));
  if (pid == 0) child_main(request, parent);
  return pid;
}

namespace {

// Reads the state letter and the parent pid of process `pid` from /proc/PID/stat ("pid (comm) S
// ppid ..."; comm may hold spaces and parentheses, so the fields are read after the last ')').
// False when it cannot be read (gone, no /proc).
bool read_stat(long pid, char& state, long& ppid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[512];
  ssize_t n = -1;
  do {
    n = ::read(fd, buffer, sizeof buffer - 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return false;
  buffer[n] = '\0';
  const char* close_paren = std::strrchr(buffer, ')');
  if (close_paren == nullptr || close_paren[1] != ' ' || close_paren[2] == '\0') return false;
  state = close_paren[2];
  ppid = std::strtol(close_paren + 3, nullptr, 10);
  return true;
}

}  // namespace

char process_state(pid_t pid) noexcept {
  char state = '?';
  long ppid = 0;
  return read_stat(static_cast<long>(pid), state, ppid) ? state : '?';
}

void kill_and_reap(pid_t pid) noexcept {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool become_subreaper() noexcept {
  return ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
}

std::vector<pid_t> living_children() {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  const pid_t self = ::getpid();
  while (const dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    char state = '?';
    long ppid = 0;
    if (!read_stat(pid, state, ppid)) continue;
    if (ppid == self && state != 'Z' && state != 'X') out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  return out;
}

int reap_ended_children() noexcept {
  int n = 0;
  for (;;) {
    const pid_t pid = ::waitpid(-1, nullptr, WNOHANG);
    if (pid > 0) {
      ++n;
      continue;
    }
    if (pid < 0 && errno == EINTR) continue;
    return n;
  }
}

bool has_children() noexcept {
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0) return true;
    if (errno != EINTR) return false;  // ECHILD: none
  }
}

long raise_open_files_limit() noexcept {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  long previous = static_cast<long>(lim.rlim_cur);
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  }
  return previous;
}

CpuMask::CpuMask(std::span<const unsigned> cpus) {
  constexpr unsigned kBits = sizeof(unsigned long) * CHAR_BIT;
  unsigned max = 0;
  for (unsigned c : cpus) max = c > max ? c : max;
  // The kernel wants a multiple of sizeof(long); keep at least the size of cpu_set_t.
  std::size_t words = std::max<std::size_t>(max / kBits + 1, sizeof(cpu_set_t) / sizeof(unsigned long));
  if (cpus.empty()) return;
  words_.assign(words, 0);
  for (unsigned c : cpus) words_[c / kBits] |= 1UL << (c % kBits);
}

std::vector<unsigned> current_affinity() {
  constexpr unsigned kBits = sizeof(unsigned long) * CHAR_BIT;
  std::vector<unsigned long> words(sizeof(cpu_set_t) / sizeof(unsigned long));
  for (;;) {
    long rc = ::syscall(SYS_sched_getaffinity, 0, words.size() * sizeof(unsigned long), words.data());
    if (rc >= 0) break;
    if (errno != EINVAL || words.size() > (1u << 16)) throw_errno("sched_getaffinity(launcher)");
    words.resize(words.size() * 2);  // more CPUs than the mask holds
  }
  std::vector<unsigned> cpus;
  for (std::size_t w = 0; w < words.size(); ++w) {
    for (unsigned b = 0; b < kBits; ++b) {
      if ((words[w] >> b) & 1UL) cpus.push_back(static_cast<unsigned>(w) * kBits + b);
    }
  }
  return cpus;
}

std::optional<std::string> find_executable(std::string_view name, std::string& why) {
  auto check = [&](const std::string& path) -> int {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno;
    if (S_ISDIR(st.st_mode)) return EISDIR;
    if (!S_ISREG(st.st_mode)) return EACCES;
    if (::access(path.c_str(), X_OK) != 0) return errno;
    return 0;
  };
  auto describe = [](int err) -> std::string {
    switch (err) {
      case ENOENT: case ENOTDIR: return "not found";
      case EACCES: return "not executable (permission denied)";
      case EISDIR: return "is a directory";
      default: return ::strerrordesc_np(err) != nullptr ? ::strerrordesc_np(err) : "unusable";
    }
  };
  if (name.empty()) {
    why = "empty program name";
    return std::nullopt;
  }
  if (name.find('/') != std::string_view::npos) {
    std::string path(name);
    int err = check(path);
    if (err == 0) return path;
    why = describe(err);
    return std::nullopt;
  }
  const char* env_path = std::getenv("PATH");
  std::string_view dirs = env_path != nullptr ? env_path : "/bin:/usr/bin";
  int first_error = ENOENT;
  for (;;) {
    auto colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::string path = fmt::format("{}/{}", dir.empty() ? "." : dir, name);
    int err = check(path);
    if (err == 0) return path;
    if (err != ENOENT && err != ENOTDIR && first_error == ENOENT) first_error = err;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  why = first_error == ENOENT ? "not found in PATH" : describe(first_error);
  return std::nullopt;
}

std::uint64_t random_u64() {
  std::uint64_t value = 0;
  auto* p = reinterpret_cast<char*>(&value);
  std::size_t got = 0;
  while (got < sizeof value) {
    ssize_t n = ::getrandom(p + got, sizeof value - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("getrandom(job id)");
    }
    got += static_cast<std::size_t>(n);
  }
  return value;
}

Pipe make_pipe(std::string_view what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(fmt::format("pipe({})", what));
  Pipe p{FileDescriptor(fds[0]), FileDescriptor(fds[1])};
  int flags = ::fcntl(fds[0], F_GETFL);
  if (flags < 0 || ::fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0) {
    throw_errno(fmt::format("fcntl(O_NONBLOCK, pipe {})", what));
  }
  return p;
}

long read_some(int fd, std::span<char> buffer, std::string_view what) {
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<long>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return -1;
    throw_errno(fmt::format("read({})", what));
  }
}

bool write_all(int fd, std::span<const char> data) noexcept {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {  // a non-blocking terminal or pipe inherited from our caller
        pollfd pfd{fd, POLLOUT, 0};
        ::poll(&pfd, 1, 100);
        continue;
      }
      return false;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

FileDescriptor open_file(const std::string& path, int flags, unsigned mode) {
  int fd = static_cast<int>(retry_on_eintr(
      [&] { return ::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode)); },
      [&] { return fmt::format("open({})", path); }));
  return FileDescriptor(fd);
}

void make_directories(const std::string& path) {
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      throw_errno(fmt::format("mkdir({})", partial));
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno(fmt::format("stat({})", path));
  if (!S_ISDIR(st.st_mode)) {
    throw std::system_error(ENOTDIR, std::generic_category(), fmt::format("mkdir({})", path));
  }
}

sigset_t block_signals(std::span<const int> signals) {
  sigset_t set;
  sigset_t old;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, &old) != 0) throw_errno("sigprocmask(launcher signals)");
  return old;
}

SignalChannel::SignalChannel(std::span<const int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) throw_errno("signalfd(launcher signals)");
  fd_ = FileDescriptor(fd);
}

std::optional<int> SignalChannel::next() {
  signalfd_siginfo info{};
  for (;;) {
    ssize_t n = ::read(fd_.get(), &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) return static_cast<int>(info.ssi_signo);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return std::nullopt;
    throw_errno("read(signalfd)");
  }
}

Poller::Poller() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw_errno("epoll_create1(launcher)");
  fd_ = FileDescriptor(fd);
}

void Poller::add(int fd, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw_errno(fmt::format("epoll_ctl(add fd {})", fd));
  }
}

void Poller::remove(int fd) noexcept { ::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr); }

std::span<const std::uint64_t> Poller::wait(std::chrono::milliseconds timeout) {
  std::array<epoll_event, 64> events{};
  int ms = timeout.count() < 0 ? -1 : static_cast<int>(std::min<long long>(timeout.count(), INT_MAX));
  int n = 0;
  for (;;) {
    n = ::epoll_wait(fd_.get(), events.data(), static_cast<int>(events.size()), ms);
    if (n >= 0) break;
    if (errno == EINTR) return {};
    throw_errno("epoll_wait(launcher)");
  }
  ready_.clear();
  for (int i = 0; i < n; ++i) ready_.push_back(events[static_cast<std::size_t>(i)].data.u64);
  return ready_;
}

}  // namespace cohort::platform
