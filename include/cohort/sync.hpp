/// @file cohort/sync.hpp
/// Synchronisation between ranks, like Python's multiprocessing: `Lock`, `RLock`, `Semaphore`,
/// `Event`, `Condition` and `Barrier`, living in the job's shared memory.
///
/// Example:
/// @code
///   cohort::Environment env(argc, argv);
///   auto& world = env.world();
///   cohort::SharedValue<long> total(world);           // cohort/shared.hpp
///   cohort::SharedArray<long> log(world, 1000);
///   cohort::Lock lock(world);                         // collective: every rank, same order
///   {
///     std::scoped_lock guard(lock);                   // Lock is a std TimedLockable
///     log[total.load()] = world.rank();
///     total.store(total.load() + 1);
///   }
///   if (lock.try_lock_for(std::chrono::milliseconds(10))) lock.unlock();
/// @endcode
///
/// Creation is collective over a communicator (every member, same order; see cohort/shared.hpp).
/// These primitives synchronise ranks (processes), not threads within a rank. Waits spin briefly,
/// then sleep on a futex; they never burn a core.
///
/// Robustness: when a rank dies holding a `Lock` or `RLock`, the next rank that wants it takes it
/// over within ~50 ms: `lock()` succeeds, `recovered()` is true and a warning naming the dead rank
/// is printed, so the new owner can repair what the lock protected. A `Barrier` with a dead member
/// throws cohort::PeerLost instead of hanging. Semaphore, Event and Condition waits take timeouts.
#pragma once

#include <chrono>
#include <cstdint>

#include "cohort/communicator.hpp"

namespace cohort {

namespace detail {
struct LockState;
struct CounterState;
}  // namespace detail

/// A mutual-exclusion lock between ranks (std::TimedLockable: works with std::scoped_lock,
/// std::unique_lock). Unlocking a lock this rank does not hold throws cohort::Error.
class Lock {
 public:
  /// Collective over `comm`.
  explicit Lock(Communicator& comm);

  /// Blocks until this rank holds the lock (taking it over from a dead holder if need be).
  void lock();
  /// Takes the lock if it is free; never blocks.
  [[nodiscard]] bool try_lock();
  /// Blocks at most `timeout`; true if the lock was taken.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return acquire(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return try_lock_for(deadline - Clock::now());
  }
  void unlock();

  /// True when the last acquisition took the lock over from a rank that died holding it.
  [[nodiscard]] bool recovered() const noexcept { return recovered_; }
  /// World rank of the current holder, or -1.
  [[nodiscard]] int owner() const noexcept;

 private:
  bool acquire(std::chrono::nanoseconds timeout);  // negative: no limit
  detail::LockState* state_;
  Communicator comm_;
  bool recovered_ = false;
};

/// A reentrant lock: the holding rank may lock it again; it is released after as many unlocks.
class RLock {
 public:
  explicit RLock(Communicator& comm) : lock_(comm) {}
  void lock();
  [[nodiscard]] bool try_lock();
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    if (held_by_me()) {
      ++depth_;
      return true;
    }
    if (!lock_.try_lock_for(timeout)) return false;
    depth_ = 1;
    return true;
  }
  void unlock();
  [[nodiscard]] bool recovered() const noexcept { return lock_.recovered(); }

 private:
  [[nodiscard]] bool held_by_me() const noexcept;
  Lock lock_;
  int depth_ = 0;  // only the holder counts, so process-local
};

/// A counting semaphore between ranks.
class Semaphore {
 public:
  /// Collective over `comm`; starts at `initial`.
  Semaphore(Communicator& comm, std::uint32_t initial);
  void acquire();
  [[nodiscard]] bool try_acquire();
  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(const std::chrono::duration<Rep, Period>& timeout) {
    return acquire_for(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }
  void release(std::uint32_t n = 1);
  [[nodiscard]] std::uint32_t value() const noexcept;

 private:
  bool acquire_for(std::chrono::nanoseconds timeout);
  detail::CounterState* state_;
  Communicator comm_;
};

/// A flag ranks can wait for (multiprocessing.Event).
class Event {
 public:
  explicit Event(Communicator& comm);
  void set();
  void clear();
  [[nodiscard]] bool is_set() const noexcept;
  /// Blocks until set.
  void wait();
  /// Blocks at most `timeout`; returns is_set().
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return wait_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }

 private:
  bool wait_ns(std::chrono::nanoseconds timeout);
  detail::CounterState* state_;
  Communicator comm_;
};

/// A condition variable bound to a cohort::Lock (multiprocessing.Condition). Wake-ups may be
/// spurious: wait with a predicate.
class Condition {
 public:
  Condition(Communicator& comm, Lock& lock);
  /// Releases the lock, waits for a notify, re-takes the lock. The caller must hold the lock.
  void wait();
  /// As wait(), at most `timeout`; false on timeout.
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return wait_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }
  template <class Predicate>
  void wait(Predicate pred) {
    while (!pred()) wait();
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout, Predicate pred) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= left.zero() || !wait_for(left)) return pred();
    }
    return true;
  }
  void notify(int n = 1);
  void notify_all();

 private:
  bool wait_ns(std::chrono::nanoseconds timeout);
  detail::CounterState* state_;
  Lock& lock_;
  Communicator comm_;
};

/// A reusable barrier for `parties` ranks (multiprocessing.Barrier). Throws cohort::PeerLost when
/// a member of the communicator dies while others wait.
class Barrier {
 public:
  /// Collective over `comm`; `parties` defaults to comm.size().
  explicit Barrier(Communicator& comm, int parties = 0);
  /// Blocks until `parties` ranks have called wait(); returns this rank's arrival index
  /// (0 .. parties-1; exactly one rank gets 0).
  int wait();
  [[nodiscard]] int parties() const noexcept { return parties_; }

 private:
  detail::CounterState* state_;
  Communicator comm_;
  int parties_;
};

}  // namespace cohort
