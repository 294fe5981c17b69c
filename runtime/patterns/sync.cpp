// Synchronisation primitives over futex words in the shared heap.
#include "cohort/sync.hpp"

#include <atomic>
#include <climits>
#include <cstdio>

#include <fmt/format.h>

#include "cohort/errors.hpp"
#include "cohort/shared.hpp"
#include "runtime/patterns/deadline.hpp"
#include "runtime/platform/futex.hpp"
#include "runtime/runtime.hpp"
#include "runtime/transport/waiter.hpp"

namespace cohort {
namespace detail {

// word: 0 free, else (holder's world rank + 1) | kContended when someone may sleep on it.
struct alignas(64) LockState {
  std::atomic<std::uint32_t> word;
};

struct alignas(64) CounterState {
  std::atomic<std::uint32_t> value;    // semaphore count / event flag / condition sequence
  std::atomic<std::uint32_t> waiters;  // ranks asleep (or about to sleep) on `value`
  std::atomic<std::uint32_t> arrived;  // barrier
};

namespace {

constexpr std::uint32_t kContended = 0x80000000u;
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

template <class State>
State* create(Communicator& comm, void (*init)(std::span<std::byte>, const void*) = nullptr,
              const void* context = nullptr) {
  return reinterpret_cast<State*>(attach_shared(comm, sizeof(State), 64, init, context).data());
}

void init_counter(std::span<std::byte> block, const void* initial) {
  reinterpret_cast<CounterState*>(block.data())
      ->value.store(*static_cast<const std::uint32_t*>(initial), std::memory_order_relaxed);
}

Runtime& runtime_of(const Communicator& comm) { return comm.impl().runtime(); }

using patterns::Deadline;

/// Spins per the job's policy while `word == value`; true when it changed.
bool spin_while_equal(const Communicator& comm, const std::atomic<std::uint32_t>& word,
                      std::uint32_t value) {
  std::uint32_t spins = runtime_of(comm).waiter().policy().spins;
  for (std::uint32_t i = 0; i < spins; ++i) {
    if (word.load(std::memory_order_acquire) != value) return true;
    transport::cpu_relax();
  }
  return word.load(std::memory_order_acquire) != value;
}

// Called before each sleep: also advances this rank's outstanding non-blocking operations.
nanoseconds sleep_slice(const Communicator& comm) {
  return runtime_of(comm).waiter().foreign_sleep_slice();
}

/// A wait record for this rank's wait on the primitive whose shared state is `state`.
struct PatternWait {
  PatternWait(const Communicator& comm, const void* state)
      : segment(runtime_of(comm).segment()),
        self(comm.impl().world_rank(comm.rank())),
        object(transport::wait_object_of(segment, state)),
        record(segment, self) {}
  void set(transport::WaitOp op, bool timed, int peer = -1, int tag = -1) noexcept {
    record.set(transport::WaitFor{op, peer, tag, 0, object, timed});
  }
  const transport::Segment& segment;
  int self;
  std::uint32_t object;
  transport::WaitRecord record;
};

}  // namespace
}  // namespace detail

// ----------------------------------------------------------------------------------------- Lock

Lock::Lock(Communicator& comm) : state_(detail::create<detail::LockState>(comm)), comm_(comm) {}

int Lock::owner() const noexcept {
  std::uint32_t w = state_->word.load(std::memory_order_acquire) & ~detail::kContended;
  return w == 0 ? -1 : static_cast<int>(w) - 1;
}

bool Lock::try_lock() {
  std::uint32_t me = static_cast<std::uint32_t>(comm_.impl().world_rank(comm_.rank())) + 1;
  std::uint32_t expected = 0;
  if (state_->word.compare_exchange_strong(expected, me, std::memory_order_acquire)) {
    recovered_ = false;
    return true;
  }
  return false;
}

void Lock::lock() { (void)acquire(std::chrono::nanoseconds(-1)); }

bool Lock::acquire(std::chrono::nanoseconds timeout) {
  if (try_lock()) return true;
  detail::Deadline deadline(timeout);
  auto& word = state_->word;
  const transport::Segment& seg = detail::runtime_of(comm_).segment();
  int self = comm_.impl().world_rank(comm_.rank());
  std::uint32_t me = static_cast<std::uint32_t>(self) + 1;
  // Brief spin while the holder is likely to release soon.
  std::uint32_t spins = detail::runtime_of(comm_).waiter().policy().spins;
  for (std::uint32_t i = 0; i < spins; ++i) {
    transport::cpu_relax();
    if (word.load(std::memory_order_relaxed) == 0 && try_lock()) return true;
  }
  detail::PatternWait waiting(comm_, state_);
  int recorded_holder = -1;
  for (;;) {
    std::uint32_t v = word.load(std::memory_order_acquire);
    if (v == 0) {
      // Take it marked contended: others may be asleep and our unlock must wake them.
      if (word.compare_exchange_strong(v, me | detail::kContended, std::memory_order_acquire)) {
        recovered_ = false;
        return true;
      }
      continue;
    }
    int holder = static_cast<int>(v & ~detail::kContended) - 1;
    if (holder == self) {
      throw Error(fmt::format("rank {}: Lock::lock: this rank already holds the lock (use RLock "
                              "to lock it again)", self));
    }
    if (!seg.alive(holder)) {
      // The holder died: take the lock over, and say so.
      if (word.compare_exchange_strong(v, me | detail::kContended, std::memory_order_acquire)) {
        recovered_ = true;
        std::fprintf(stderr,
                     "cohort: rank %d: took over a Lock from rank %d, which died holding it; "
                     "the data it protected may be inconsistent\n", self, holder);
        return true;
      }
      continue;
    }
    if ((v & detail::kContended) == 0 &&
        !word.compare_exchange_strong(v, v | detail::kContended, std::memory_order_relaxed)) {
      continue;
    }
    if (deadline.passed()) return false;
    if (holder != recorded_holder) {  // the hang report names the current holder
      waiting.set(transport::WaitOp::lock, !deadline.unlimited, holder);
      recorded_holder = holder;
    }
    platform::futex_wait(word, v | detail::kContended, deadline.slice(detail::sleep_slice(comm_)));
  }
}

void Lock::unlock() {
  int self = comm_.impl().world_rank(comm_.rank());
  std::uint32_t v = state_->word.load(std::memory_order_relaxed);
  if (static_cast<int>(v & ~detail::kContended) - 1 != self) {
    throw Error(fmt::format("rank {}: Lock::unlock: this rank does not hold the lock (held by {})",
                            self, owner()));
  }
  std::uint32_t old = state_->word.exchange(0, std::memory_order_release);
  if ((old & detail::kContended) != 0) platform::futex_wake(state_->word, 1);
}

// ---------------------------------------------------------------------------------------- RLock

bool RLock::held_by_me() const noexcept {
  return depth_ > 0;  // only the holder's process ever has depth_ > 0
}

void RLock::lock() {
  if (held_by_me()) {
    ++depth_;
    return;
  }
  lock_.lock();
  depth_ = 1;
}

bool RLock::try_lock() {
  if (held_by_me()) {
    ++depth_;
    return true;
  }
  if (!lock_.try_lock()) return false;
  depth_ = 1;
  return true;
}

void RLock::unlock() {
  if (depth_ == 0) throw Error("RLock::unlock: this rank does not hold the lock");
  if (--depth_ == 0) lock_.unlock();
}

// ------------------------------------------------------------------------------------ Semaphore

Semaphore::Semaphore(Communicator& comm, std::uint32_t initial)
    : state_(detail::create<detail::CounterState>(comm, &detail::init_counter, &initial)),
      comm_(comm) {}  // the first rank to arrive sets the count, before anyone can see it

bool Semaphore::try_acquire() {
  std::uint32_t c = state_->value.load(std::memory_order_relaxed);
  while (c > 0) {
    if (state_->value.compare_exchange_weak(c, c - 1, std::memory_order_acquire)) return true;
  }
  return false;
}

void Semaphore::acquire() { (void)acquire_for(std::chrono::nanoseconds(-1)); }

bool Semaphore::acquire_for(std::chrono::nanoseconds timeout) {
  if (try_acquire()) return true;
  detail::Deadline deadline(timeout);
  if (detail::spin_while_equal(comm_, state_->value, 0) && try_acquire()) return true;
  detail::PatternWait waiting(comm_, state_);
  waiting.set(transport::WaitOp::semaphore, !deadline.unlimited);
  for (;;) {
    if (try_acquire()) return true;
    if (deadline.passed()) return false;
    state_->waiters.fetch_add(1, std::memory_order_seq_cst);
    platform::futex_wait(state_->value, 0, deadline.slice(detail::sleep_slice(comm_)));
    state_->waiters.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Semaphore::release(std::uint32_t n) {
  state_->value.fetch_add(n, std::memory_order_seq_cst);
  if (state_->waiters.load(std::memory_order_seq_cst) != 0) {
    platform::futex_wake(state_->value, static_cast<int>(n));
  }
}

std::uint32_t Semaphore::value() const noexcept { return state_->value.load(); }

// ---------------------------------------------------------------------------------------- Event

Event::Event(Communicator& comm) : state_(detail::create<detail::CounterState>(comm)), comm_(comm) {}

void Event::set() {
  state_->value.store(1, std::memory_order_seq_cst);
  if (state_->waiters.load(std::memory_order_seq_cst) != 0) platform::futex_wake(state_->value, INT_MAX);
}

void Event::clear() { state_->value.store(0, std::memory_order_release); }

bool Event::is_set() const noexcept { return state_->value.load(std::memory_order_acquire) != 0; }

void Event::wait() { (void)wait_ns(std::chrono::nanoseconds(-1)); }

bool Event::wait_ns(std::chrono::nanoseconds timeout) {
  if (is_set() || detail::spin_while_equal(comm_, state_->value, 0)) return true;
  detail::Deadline deadline(timeout);
  detail::PatternWait waiting(comm_, state_);
  waiting.set(transport::WaitOp::event, !deadline.unlimited);
  for (;;) {
    if (is_set()) return true;
    if (deadline.passed()) return false;
    state_->waiters.fetch_add(1, std::memory_order_seq_cst);
    platform::futex_wait(state_->value, 0, deadline.slice(detail::sleep_slice(comm_)));
    state_->waiters.fetch_sub(1, std::memory_order_relaxed);
  }
}

// ------------------------------------------------------------------------------------ Condition

Condition::Condition(Communicator& comm, Lock& lock)
    : state_(detail::create<detail::CounterState>(comm)), lock_(lock), comm_(comm) {}

void Condition::wait() { (void)wait_ns(std::chrono::nanoseconds(-1)); }

bool Condition::wait_ns(std::chrono::nanoseconds timeout) {
  detail::Deadline deadline(timeout);
  std::uint32_t seq = state_->value.load(std::memory_order_acquire);
  state_->waiters.fetch_add(1, std::memory_order_seq_cst);
  lock_.unlock();
  bool notified = false;
  {
    detail::PatternWait waiting(comm_, state_);
    waiting.set(transport::WaitOp::condition, !deadline.unlimited);
    for (;;) {
      if (state_->value.load(std::memory_order_acquire) != seq) {
        notified = true;
        break;
      }
      if (deadline.passed()) break;
      platform::futex_wait(state_->value, seq, deadline.slice(detail::sleep_slice(comm_)));
    }
  }
  state_->waiters.fetch_sub(1, std::memory_order_relaxed);
  lock_.lock();
  return notified;
}

void Condition::notify(int n) {
  state_->value.fetch_add(1, std::memory_order_seq_cst);
  if (state_->waiters.load(std::memory_order_seq_cst) != 0) platform::futex_wake(state_->value, n);
}

void Condition::notify_all() { notify(INT_MAX); }

// -------------------------------------------------------------------------------------- Barrier

Barrier::Barrier(Communicator& comm, int parties)
    : state_(detail::create<detail::CounterState>(comm)),
      comm_(comm),
      parties_(parties > 0 ? parties : comm.size()) {}

int Barrier::wait() {
  // value = generation; arrived = ranks arrived in this generation.
  std::uint32_t generation = state_->value.load(std::memory_order_acquire);
  std::uint32_t index = state_->arrived.fetch_add(1, std::memory_order_acq_rel);
  if (index + 1 == static_cast<std::uint32_t>(parties_)) {
    state_->arrived.store(0, std::memory_order_relaxed);
    state_->value.fetch_add(1, std::memory_order_seq_cst);
    platform::futex_wake(state_->value, INT_MAX);
    return static_cast<int>(index);
  }
  if (detail::spin_while_equal(comm_, state_->value, generation)) return static_cast<int>(index);
  const transport::Segment& seg = detail::runtime_of(comm_).segment();
  detail::PatternWait waiting(comm_, state_);
  waiting.set(transport::WaitOp::sync_barrier, false, -1, parties_);
  for (;;) {
    if (state_->value.load(std::memory_order_acquire) != generation) return static_cast<int>(index);
    // With every member a party, a dead member can never arrive: the barrier is broken. But a
    // member that is gone may have left *after* this generation ended (it passed the barrier and
    // exited between our load of the generation above and our look at its state), so look at the
    // generation again before calling the barrier broken. That second load sees the new
    // generation whenever the member left after passing: the member's pass happens before its
    // exit, which happens before its state leaves `attached` (the acquire in Segment::alive).
    for (int r : comm_.impl().world_ranks()) {
      if (parties_ == comm_.size() && !seg.alive(r)) {
        if (state_->value.load(std::memory_order_acquire) != generation) {
          return static_cast<int>(index);
        }
        throw PeerLost(r, fmt::format("rank {}: Barrier::wait: rank {} died or exited before "
                                      "reaching the barrier; the barrier is broken",
                                      comm_.impl().world_rank(comm_.rank()), r));
      }
    }
    platform::futex_wait(state_->value, generation, detail::sleep_slice(comm_));
  }
}

}  // namespace cohort
