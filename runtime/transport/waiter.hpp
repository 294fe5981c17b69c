// Transport layer: how a rank waits for a condition in shared memory.
//
// Spin (~2 ms with a core of its own; ~0.5 µs when ranks outnumber cores), then yield (a few
// times; for up to 1 ms when ranks outnumber cores), then sleep on this rank's doorbell futex
// (WaitPolicy). Whoever makes the condition true calls Segment::wake(rank), which costs a
// syscall only when the sleeper said it is asleep. While blocked, the wait record in the rank's
// slot says what it waits for (hang reports, deadlock detection: README.md, "When things go wrong"); the peers it
// depends on are checked so that a dead peer raises cohort::PeerLost instead of hanging.
#pragma once

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "runtime/platform/futex.hpp"
#include "runtime/transport/segment.hpp"
#include "runtime/transport/trace.hpp"

namespace cohort::transport {

/// What a blocked call waits for; stored in the rank's slot while it waits.
struct WaitFor {
  WaitOp op = WaitOp::other;
  int peer = -1;  // -1: any
  int tag = -1;
  std::uint32_t comm = 0;
  std::uint32_t object = 0;  // pattern waits: the object's segment offset / 64
  bool timed = false;        // has a time limit: reported, never taken for a deadlock
};

/// The object number stored in a wait record for shared state at `p` inside `segment`.
inline std::uint32_t wait_object_of(const Segment& segment, const void* p) noexcept {
  auto off = static_cast<std::size_t>(static_cast<const std::byte*>(p) - segment.memory().data());
  return static_cast<std::uint32_t>(off / kCacheLine);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Cost of one cpu_relax() in nanoseconds on this machine, measured once per process (the best
/// of a few short timed loops; ~26 ns on the Zen 4 reference machine, ~40 ns on Skylake, a
/// few ns on older cores).
inline double relax_ns() noexcept {
  static const double ns = [] {
    double best = 1e9;
    for (int round = 0; round < 4; ++round) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 256; ++i) cpu_relax();
      std::chrono::duration<double, std::nano> t = std::chrono::steady_clock::now() - t0;
      best = std::min(best, t.count() / 256);
    }
    return best;
  }();
  return ns;
}

/// How a rank waits: spin `spins` polls, then yield at least `yields` times and until
/// `yield_time` has passed, then sleep on the doorbell futex (re-checking every `sleep_slice`).
/// Budgets are times, turned into poll counts with the measured cost of a pause (relax_ns()),
/// chosen from measurements on the 2-core reference machine (BENCHMARKS.md): a cross-core
/// hand-off is ~50-220 ns, a futex wake ~22 µs, a sched_yield hand-off ~1.3 µs.
/// - A core of its own: spin ~2 ms, 8 yields, sleep. The core is nobody else's, and a rank that
///   sleeps leaves its vCPU idle: on a KVM guest without halt polling the host then takes the
///   vCPU off the core, and waking it costs tens of µs to ms, often more than the wait itself.
///   With ~50 µs (the budget until 2026-12-07 night) a compute imbalance of more than that put
///   the early rank to sleep, its late wake made the peer wait in turn, and a two-rank
///   compute+allreduce loop fell from 0.94 to 0.3-0.8 of the cores in the host's busy minutes
///   (README, Internals > Waiting).
/// - Ranks outnumber cores: spin ~0.5 µs only (the rank that would make the condition true may
///   need this core), then yield for up to 1 ms, as Open MPI's waiting ranks do: a yield hands
///   the core to a rank with work and costs the waker nothing, where a sleeper costs its waker a
///   FUTEX_WAKE system call; a rank that waits longer than that sleeps and costs nothing.
struct WaitPolicy {
  std::uint32_t spins;   // polls with a pause before yielding
  std::uint32_t patience;  // polls after which a wait counts as long (p2p then drains its rings)
  std::uint32_t yields;  // sched_yield rounds before sleeping (at least)
  std::chrono::nanoseconds yield_time{0};     // ... and yield until this long has passed
  std::chrono::milliseconds sleep_slice{50};  // futex timeout: liveness re-check period

  static constexpr std::chrono::nanoseconds kSpinTime{2'000'000};
  static constexpr std::chrono::nanoseconds kPatienceTime{50'000};
  static constexpr std::chrono::nanoseconds kSpinTimeOversubscribed{500};
  static constexpr std::chrono::nanoseconds kYieldTimeOversubscribed{1'000'000};
  static constexpr std::uint32_t kMinSpins = 16;
  static constexpr std::uint32_t kMaxSpins = 4'000'000;

  /// Pure: the policy on a machine whose pause instruction costs `relax_ns` nanoseconds.
  static WaitPolicy make(bool oversubscribed, double relax_ns) noexcept {
    auto polls = [relax_ns](std::chrono::nanoseconds budget) {
      const double n = static_cast<double>(budget.count()) / std::max(relax_ns, 0.5);
      return static_cast<std::uint32_t>(
          std::clamp(n, static_cast<double>(kMinSpins), static_cast<double>(kMaxSpins)));
    };
    if (oversubscribed) {
      const std::uint32_t spins = polls(kSpinTimeOversubscribed);
      return WaitPolicy{spins, spins, 16, kYieldTimeOversubscribed};
    }
    return WaitPolicy{polls(kSpinTime), polls(kPatienceTime), 8, std::chrono::nanoseconds{0}};
  }

  static WaitPolicy for_job(bool oversubscribed) noexcept {
    return make(oversubscribed, relax_ns());
  }
};

/// Waits on behalf of one rank. Not thread-safe: one waiting thread per rank.
class Waiter {
 public:
  Waiter() = default;
  Waiter(const Segment& segment, int self, bool oversubscribed) noexcept
      : segment_(segment), self_(self), policy_(WaitPolicy::for_job(oversubscribed)) {
    if (!segment.trace_area().empty()) trace_ = RankTrace(segment.trace_area(), self);
  }

  /// Statistics: whether this waiter's blocked time counts as `wait_ns` (the collectives' own
  /// waiter says no: that time is part of `collective_ns`). Waits are traced either way.
  void count_wait_time(bool yes) noexcept { count_wait_time_ = yes; }

  [[nodiscard]] const Segment& segment() const noexcept { return segment_; }
  [[nodiscard]] int self() const noexcept { return self_; }
  [[nodiscard]] const WaitPolicy& policy() const noexcept { return policy_; }

  /// Work this rank still owes its peers while it waits for something else: the Runtime installs
  /// one that advances outstanding non-blocking point-to-point and collective operations, so that
  /// a rank blocked in a barrier or a Queue.get still moves its isends and irecvs (MPI's progress
  /// rule: a matched non-blocking operation completes whatever its owner blocks in next).
  /// Called before each check of a wait's condition; may throw (the wait then throws it).
  /// Returns true while operations remain outstanding.
  using Background = bool (*)(void* context);
  void set_background(Background fn, void* context) noexcept {
    background_ = fn;
    background_context_ = context;
  }

  /// For waits that sleep on a futex of their own (Queue, Lock, Event...): does the background
  /// work and returns how long to sleep before looking again: the policy's slice, or 200 µs while
  /// non-blocking operations are outstanding (the peers they wait on wake this rank's doorbell,
  /// not that futex).
  [[nodiscard]] std::chrono::nanoseconds foreign_sleep_slice() {
    if (background_ != nullptr && background_(background_context_)) {
      return std::min<std::chrono::nanoseconds>(policy_.sleep_slice, std::chrono::microseconds(200));
    }
    return policy_.sleep_slice;
  }

  /// Blocks until `ready()` returns true. `lost()` is called on the slow path: it returns -1 while
  /// the wait can still complete, or the rank whose loss makes it impossible; `ready()` is then
  /// checked once more (a message sent before the peer died still counts) and `on_lost(rank)` is
  /// called, which must throw. Throws whatever on_lost throws; returns normally otherwise.
  template <class Ready, class Lost, class OnLost>
  void wait(Ready&& ready_only, const WaitFor& what, Lost&& lost, OnLost&& on_lost) {
    auto ready = [&] {
      if (background_ != nullptr) background_(background_context_);
      return ready_only();
    };
    if (ready()) return;
    // cohortrun --trace/--stats: the blocked time becomes a `wait` event and counts.
    struct Traced {
      const Waiter& w;
      const WaitFor& what;
      std::uint64_t begin;
      ~Traced() {
        if (!w.trace_.on()) return;
        std::uint64_t end = trace_clock_ns();
        RankStats& st = w.trace_.stats();
        if (w.count_wait_time_) {
          RankTrace::add(st.waits, 1);
          RankTrace::add(st.wait_ns, end - begin);
        }
        if (w.trace_.events_on()) {
          w.trace_.record(TraceEvent{begin, end, 0, 0, what.peer, what.tag, what.comm,
                                     static_cast<std::uint16_t>(TraceKind::wait),
                                     static_cast<std::uint16_t>(what.op), 0});
        }
      }
    } traced{*this, what, trace_.on() ? trace_clock_ns() : 0};
    for (std::uint32_t i = 0; i < policy_.spins; ++i) {
      cpu_relax();
      if (ready()) return;
    }
    RankSlot& me = segment_.slot(self_);
    record(me, what);
    struct Clear {
      RankSlot& s;
      ~Clear() {
        s.wait_op.store(static_cast<std::uint32_t>(WaitOp::none), std::memory_order_relaxed);
        bump(s);
      }
    } clear{me};
    if (policy_.yields > 0) {
      const auto until = policy_.yield_time.count() > 0
                             ? std::chrono::steady_clock::now() + policy_.yield_time
                             : std::chrono::steady_clock::time_point{};
      for (std::uint32_t i = 0;; ++i) {
        ::sched_yield();
        if (ready()) return;
        if (i + 1 >= policy_.yields &&
            (policy_.yield_time.count() <= 0 || std::chrono::steady_clock::now() >= until)) {
          break;
        }
      }
    }
    for (;;) {
      if (int peer = lost(); peer >= 0) {
        if (ready()) return;
        on_lost(peer);
      }
      std::uint32_t bell = me.doorbell.load(std::memory_order_acquire);
      // release: a waker that reads this 1 also sees the wait record above (collectives wake
      // only a sleeper that waits for them, collectives.cpp Call::notify)
      me.sleeping.store(1, std::memory_order_release);
      std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with Segment::wake
      if (ready()) {
        me.sleeping.store(0, std::memory_order_relaxed);
        return;
      }
      platform::futex_wait(me.doorbell, bell, policy_.sleep_slice);
      me.sleeping.store(0, std::memory_order_relaxed);
      if (ready()) return;
      // Short spin after a wake-up: the waker's data is usually already visible.
      for (std::uint32_t i = 0; i < 64; ++i) {
        cpu_relax();
        if (ready()) return;
      }
    }
  }

 public:
  // `progress` changes each time the rank enters or leaves the slow path, so that the launcher's
  // deadlock detector can tell a rank blocked in one wait from one that keeps finishing waits
  // between its samples. Only the owner writes it (no read-modify-write needed).
  static void bump(RankSlot& me) noexcept {
    me.progress.store(me.progress.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  static void record(RankSlot& me, const WaitFor& what) noexcept {
    bump(me);
    me.wait_peer.store(what.peer, std::memory_order_relaxed);
    me.wait_tag.store(what.tag, std::memory_order_relaxed);
    me.wait_comm.store(what.comm, std::memory_order_relaxed);
    me.wait_object.store(what.object, std::memory_order_relaxed);
    me.wait_op.store(static_cast<std::uint32_t>(what.op) | (what.timed ? kWaitTimed : 0u),
                     std::memory_order_release);
  }

 private:

  Segment segment_;
  int self_ = 0;
  WaitPolicy policy_ = WaitPolicy::for_job(false);
  Background background_ = nullptr;
  void* background_context_ = nullptr;
  RankTrace trace_;  // off unless cohortrun --trace/--stats
  bool count_wait_time_ = true;
};

/// The wait record of a pattern wait (Queue, locks, Event...) that sleeps on its own futex word
/// rather than in Waiter::wait: set() when the wait leaves its spin phase (and again when what it
/// waits for changes, e.g. a new lock holder); the destructor clears it. Same bookkeeping as
/// Waiter::wait (progress bumped on entry and exit), so the deadlock detector reads both alike.
class WaitRecord {
 public:
  WaitRecord(const Segment& segment, int self) noexcept : segment_(segment), self_(self) {}
  WaitRecord(const WaitRecord&) = delete;
  WaitRecord& operator=(const WaitRecord&) = delete;
  ~WaitRecord() {
    if (!set_) return;
    RankSlot& me = segment_.slot(self_);
    me.wait_op.store(static_cast<std::uint32_t>(WaitOp::none), std::memory_order_relaxed);
    Waiter::bump(me);
  }
  void set(const WaitFor& what) noexcept {
    Waiter::record(segment_.slot(self_), what);
    set_ = true;
  }
  [[nodiscard]] bool is_set() const noexcept { return set_; }

 private:
  const Segment& segment_;
  int self_;
  bool set_ = false;
};

/// Labels the p2p waits inside a Pipe call (WaitOp::pipe_recv / pipe_send) for the reports.
class WaitContext {
 public:
  WaitContext(const Segment& segment, int self, WaitOp op) noexcept : slot_(segment.slot(self)) {
    slot_.wait_context.store(static_cast<std::uint32_t>(op), std::memory_order_relaxed);
  }
  WaitContext(const WaitContext&) = delete;
  WaitContext& operator=(const WaitContext&) = delete;
  ~WaitContext() { slot_.wait_context.store(0, std::memory_order_relaxed); }

 private:
  RankSlot& slot_;
};

}  // namespace cohort::transport
