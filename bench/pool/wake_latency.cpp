// Diagnostic, not a suite row: how late a process that waited for ~8 ms starts once woken, by how
// it waited. Between rounds the parent (first cpu) runs the 8 cpu_bound tasks, as the
// sequential part of pool_bench cpu does, while the child (second cpu) waits in one of four ways,
// then the parent wakes it through a pipe and the child records when it got going:
//   block   read() at once (Python's Pool workers, parallel_ceiling's child)
//   spin    ~20000 pause-polls first (the Waiter's spin budget when ranks <= cores)
//   yield   8 sched_yield first (the Waiter's yield rounds)
//   both    spin, then yield, then block: runtime/transport/waiter.hpp's policy
// Modes alternate round by round.
//
//   wake_latency [ROUNDS] [--hog]
//
// --hog adds what another session's `chrt -i 0` build does to the child's cpu: a busy loop at
// SCHED_IDLE in a session of its own (so in an autogroup of its own), ended with the program.
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "sum_of_squares.hpp"

#include "../common/cpus.hpp"

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

void pause_once() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct Shared {
  std::atomic<std::int64_t> posted{0};   // rounds the parent has started
  std::atomic<std::int64_t> started{0};  // when the child got going (ns)
  std::atomic<std::int64_t> done{0};     // rounds the child has finished
  std::atomic<int> mode{0};
};

constexpr int kModes = 4;
const char* const kNames[kModes] = {"block", "spin", "yield", "both"};

}  // namespace

int main(int argc, char** argv) {
  int rounds = 40;
  bool hog = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--hog") == 0) hog = true;
    else rounds = std::max(1, std::atoi(argv[i]));
  }
  const std::vector<int> cpus = bench_common::allowed_cpus(2);
  if (cpus.size() < 2) {
    std::fprintf(stderr, "wake_latency: needs two cpus\n");
    return 2;
  }
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  auto* sh = new (mem) Shared;
  pid_t hog_pid = -1;
  if (hog) {
    hog_pid = ::fork();
    if (hog_pid == 0) {
      ::setsid();
      sched_param p{};
      sched_setscheduler(0, SCHED_IDLE, &p);
      pin(cpus[1]);
      for (;;) asm volatile("");
    }
  }
  int start[2];
  if (::pipe(start) != 0) return 1;
  pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    ::close(start[1]);
    pin(cpus[1]);
    std::int64_t seen = 0;
    for (;;) {
      int mode = sh->mode.load();
      if (mode == 1 || mode == 3) {
        for (int i = 0; i < 20000 && sh->posted.load() == seen; ++i) pause_once();
      }
      if (mode == 2 || mode == 3) {
        for (int i = 0; i < 8 && sh->posted.load() == seen; ++i) sched_yield();
      }
      char b = 0;
      if (::read(start[0], &b, 1) != 1) ::_exit(0);
      seen = sh->posted.load();
      sh->started.store(now_ns());
      if (pool_bench::sum_of_squares(2'000'000) == 0) ::_exit(1);
      sh->done.store(seen);
    }
  }
  ::close(start[0]);
  pin(cpus[0]);
  std::vector<double> delay_us[kModes];
  for (int r = 0; r < kModes * (rounds + 1); ++r) {
    int mode = r % kModes;
    sh->mode.store(mode);
    for (int i = 0; i < 8; ++i) {
      if (pool_bench::sum_of_squares(2'000'000) == 0) return 1;
    }
    std::int64_t t0 = now_ns();
    std::int64_t round = sh->posted.fetch_add(1) + 1;
    char b = 1;
    if (::write(start[1], &b, 1) != 1) return 1;
    if (pool_bench::sum_of_squares(2'000'000) == 0) return 1;
    while (sh->done.load() != round) sched_yield();
    if (r >= kModes) delay_us[mode].push_back(static_cast<double>(sh->started.load() - t0) / 1e3);
  }
  ::close(start[1]);
  ::waitpid(child, nullptr, 0);
  if (hog_pid > 0) {
    ::kill(hog_pid, SIGKILL);
    ::waitpid(hog_pid, nullptr, 0);
  }
  std::printf("child's start after the wake, us (%d rounds per mode%s):\n", rounds,
              hog ? ", SCHED_IDLE hog of another session on its cpu" : "");
  for (int m = 0; m < kModes; ++m) {
    std::vector<double> v = delay_us[m];
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]; };
    std::printf("  %-5s median %6.0f  p75 %6.0f  p90 %6.0f  max %6.0f\n", kNames[m], at(0.5), at(0.75),
                at(0.9), v.back());
  }
  return 0;
}
