// cohort::Queue: a bounded MPMC ring in the shared heap (Vyukov's bounded queue with per-slot
// sequence numbers), robust to a rank dying in the middle of a put or a get.
//
//   QueueShared          header: sizes, positions, sleeper counts and futex words (own lines)
//   Claim[ranks]         1 line per member: the position it is claiming (put, get), for repairs
//   Slot[capacity]       1 line each: seq, payload bytes, first chunk, 48 inline bytes
//   next[chunks]         chunk links (free stack, or an item's chain)
//   chunk data           chunks of kChunkBytes for items larger than 48 bytes
//
// Positions grow forever (64 bits). Slot i starts with seq = i. A producer at position p waits
// for slot p % capacity to have seq == p, claims p by CAS on enqueue_pos, writes, then publishes
// seq = p + 1. A consumer at p waits for seq == p + 1, claims p by CAS on dequeue_pos, copies
// out, then releases seq = p + capacity. close() sets a bit in enqueue_pos, so a claim either
// happened before the close or fails because of it.
//
// Robustness: before its CAS, a rank writes the position it claims into its Claim line. A waiter
// that finds a slot claimed but never finished (seq not advanced although the position moved past
// it) looks for the claimer: when every rank that claimed that position is dead, the waiter
// repairs the slot (a hole for a dead producer, a release for a dead consumer) and counts the
// item as lost. Chunks are a Treiber stack with a tag (ABA); a rank dying mid-operation can leak
// chunks, never corrupt the stack.
#include "cohort/queue.hpp"

#include "runtime/patterns/deadline.hpp"
#include "runtime/patterns/queue_item.hpp"

#include <atomic>
#include <climits>
#include <thread>

#include <fmt/format.h>

#include "cohort/shared.hpp"
#include "runtime/platform/futex.hpp"
#include "runtime/runtime.hpp"
#include "runtime/transport/waiter.hpp"

namespace cohort::detail {

/// Test hook (tests/patterns/queue_spawn_test.cpp): called, when set, right after this process
/// has claimed a position ("put" or "get") and before it finishes it, to simulate a death there.
void (*queue_claim_hook)(const char* op) = nullptr;

namespace {

constexpr std::size_t kInlineBytes = 48;
constexpr std::size_t kChunkBytes = kQueueChunkBytes;
constexpr std::uint64_t kClosedBit = std::uint64_t{1} << 63;
constexpr std::uint32_t kHole = 0xffffffffu;  // Slot::bytes of a slot whose producer died

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

}  // namespace

struct alignas(64) QueueClaim {
  std::atomic<std::uint64_t> put;  // position + 1 being claimed by a put, 0: none
  std::atomic<std::uint64_t> get;  // position + 1 being claimed by a get, 0: none
};

struct alignas(64) QueueSlot {
  std::atomic<std::uint64_t> seq;
  std::uint32_t bytes;  // payload size, or kHole
  std::uint32_t chunk;  // first chunk (payload > kInlineBytes)
  std::byte data[kInlineBytes];
};
static_assert(sizeof(QueueSlot) == 64);

struct QueueShared {
  // Line 0: read-only after creation.
  alignas(64) std::uint64_t capacity;
  std::uint64_t mask;  // capacity - 1 when a power of two, else 0
  std::uint32_t ranks;
  std::uint32_t chunks;
  std::uint64_t claims_offset;  // from the start of QueueShared
  std::uint64_t slots_offset;
  std::uint64_t next_offset;
  std::uint64_t data_offset;
  // Producers' line.
  alignas(64) std::atomic<std::uint64_t> enqueue_pos;
  // Consumers' line.
  alignas(64) std::atomic<std::uint64_t> dequeue_pos;
  // Sleepers: consumers waiting for items, producers waiting for space.
  alignas(64) std::atomic<std::uint32_t> consumers_sleeping;
  std::atomic<std::uint32_t> items_event;
  alignas(64) std::atomic<std::uint32_t> producers_sleeping;
  std::atomic<std::uint32_t> space_event;
  std::atomic<std::uint32_t> pool_sleeping;  // producers waiting for chunks
  std::atomic<std::uint32_t> pool_event;
  // JoinableQueue accounting.
  // Unfinished items = claimed puts (enqueue_pos) - finished; no counting on the put path.
  alignas(64) std::atomic<std::uint64_t> finished;  // task_done() calls + items lost
  std::atomic<std::uint32_t> joiners;
  std::atomic<std::uint32_t> done_event;
  std::atomic<std::uint64_t> lost;
  // Chunk free stack: (tag << 32) | (index + 1), 0 = empty.
  alignas(64) std::atomic<std::uint64_t> free_head;
};

namespace {

struct Layout {
  std::uint64_t capacity, chunks, ranks;
  std::uint64_t claims, slots, next, data, total;
};

Layout layout_for(std::uint64_t capacity, std::uint64_t chunks, std::uint64_t ranks) {
  Layout l{capacity, chunks, ranks, 0, 0, 0, 0, 0};
  auto up = [](std::uint64_t v) { return (v + 63) / 64 * 64; };
  l.claims = up(sizeof(QueueShared));
  l.slots = l.claims + ranks * sizeof(QueueClaim);
  l.next = l.slots + capacity * sizeof(QueueSlot);
  l.data = up(l.next + chunks * sizeof(std::uint32_t));
  l.total = l.data + chunks * kChunkBytes;
  return l;
}

void init_queue(std::span<std::byte> block, const void* context) {
  const Layout& l = *static_cast<const Layout*>(context);
  auto* q = reinterpret_cast<QueueShared*>(block.data());
  q->capacity = l.capacity;
  q->mask = (l.capacity & (l.capacity - 1)) == 0 ? l.capacity - 1 : 0;
  q->ranks = static_cast<std::uint32_t>(l.ranks);
  q->chunks = static_cast<std::uint32_t>(l.chunks);
  q->claims_offset = l.claims;
  q->slots_offset = l.slots;
  q->next_offset = l.next;
  q->data_offset = l.data;
  auto* slots = reinterpret_cast<QueueSlot*>(block.data() + l.slots);
  for (std::uint64_t i = 0; i < l.capacity; ++i) slots[i].seq.store(i, std::memory_order_relaxed);
  auto* next = reinterpret_cast<std::atomic<std::uint32_t>*>(block.data() + l.next);
  for (std::uint64_t i = 0; i < l.chunks; ++i) {
    next[i].store(i + 1 < l.chunks ? static_cast<std::uint32_t>(i + 2) : 0, std::memory_order_relaxed);
  }
  q->free_head.store(l.chunks > 0 ? 1 : 0, std::memory_order_relaxed);
}

using patterns::Deadline;

/// This rank's view of one queue's shared block.
class View {
 public:
  View(QueueShared* q, const Communicator& comm)
      : q_(q),
        base_(reinterpret_cast<std::byte*>(q)),
        slots_(reinterpret_cast<QueueSlot*>(base_ + q->slots_offset)),
        claims_(reinterpret_cast<QueueClaim*>(base_ + q->claims_offset)),
        next_(reinterpret_cast<std::atomic<std::uint32_t>*>(base_ + q->next_offset)),
        data_(base_ + q->data_offset),
        comm_(comm),
        segment_(comm.impl().runtime().segment()) {}

  QueueSlot& slot(std::uint64_t pos) const noexcept {
    return slots_[q_->mask != 0 ? (pos & q_->mask) : (pos % q_->capacity)];
  }
  QueueClaim& claim(int rank) const noexcept { return claims_[rank]; }
  std::atomic<std::uint32_t>& next(std::uint32_t chunk) const noexcept { return next_[chunk]; }
  std::byte* chunk(std::uint32_t c) const noexcept { return data_ + std::size_t{c} * kChunkBytes; }
  QueueShared& q() const noexcept { return *q_; }

  bool alive(int rank) const noexcept { return segment_.alive(comm_.impl().world_rank(rank)); }
  const transport::Segment& segment() const noexcept { return segment_; }
  transport::Waiter& waiter() const noexcept { return comm_.impl().runtime().waiter(); }
  int self_world() const { return comm_.impl().world_rank(comm_.rank()); }

  /// Claimers of `pos + 1` in the put (or get) claims: true when at least one is dead and none
  /// is alive (the claimed position can never be finished).
  bool claim_abandoned(std::uint64_t pos, bool put) const noexcept {
    bool dead = false;
    for (std::uint32_t r = 0; r < q_->ranks; ++r) {
      const auto& c = put ? claims_[r].put : claims_[r].get;
      if (c.load(std::memory_order_acquire) != pos + 1) continue;
      if (alive(static_cast<int>(r))) return false;
      dead = true;
    }
    return dead;
  }

  /// A member other than `self` that is dead when every other member is; -1 otherwise (and for
  /// a communicator of one).
  int all_others_dead(int self) const noexcept {
    int first = -1;
    for (int r = 0; r < static_cast<int>(q_->ranks); ++r) {
      if (r == self) continue;
      if (alive(r)) return -1;
      if (first < 0) first = r;
    }
    return first;
  }

  /// Pops a chunk from the free stack; false when empty.
  bool pop_chunk(std::uint32_t& out) const noexcept {
    std::uint64_t h = q_->free_head.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t top = static_cast<std::uint32_t>(h);
      if (top == 0) return false;
      std::uint32_t nxt = next_[top - 1].load(std::memory_order_relaxed);
      std::uint64_t desired = ((h >> 32) + 1) << 32 | nxt;
      if (q_->free_head.compare_exchange_weak(h, desired, std::memory_order_acquire,
                                              std::memory_order_acquire)) {
        out = top - 1;
        return true;
      }
    }
  }

  void push_chunk(std::uint32_t c) const noexcept {
    std::uint64_t h = q_->free_head.load(std::memory_order_relaxed);
    for (;;) {
      next_[c].store(static_cast<std::uint32_t>(h), std::memory_order_relaxed);
      std::uint64_t desired = ((h >> 32) + 1) << 32 | (c + 1);
      if (q_->free_head.compare_exchange_weak(h, desired, std::memory_order_release,
                                              std::memory_order_relaxed)) {
        return;
      }
    }
  }

  /// Frees a chain of `count` chunks starting at `first`.
  void free_chain(std::uint32_t first, std::size_t count) const noexcept {
    std::uint32_t c = first;
    for (std::size_t i = 0; i < count; ++i) {
      std::uint32_t nxt = next_[c].load(std::memory_order_relaxed);
      push_chunk(c);
      c = nxt == 0 ? 0 : nxt - 1;
    }
  }

 private:
  QueueShared* q_;
  std::byte* base_;
  QueueSlot* slots_;
  QueueClaim* claims_;
  std::atomic<std::uint32_t>* next_;
  std::byte* data_;
  const Communicator& comm_;
  const transport::Segment& segment_;
};

std::size_t chunks_for(std::size_t bytes) { return (bytes + kChunkBytes - 1) / kChunkBytes; }

/// Wakes `count` sleepers on `event`.
void wake(std::atomic<std::uint32_t>& event, int count) noexcept {
  event.fetch_add(1, std::memory_order_seq_cst);
  platform::futex_wake(event, count);
}

/// Wakes sleepers on `event` if the `sleeping` count says there are some. The caller has made
/// its change visible before: the read-modify-write (not a plain load, and no fence, which TSan
/// does not model) orders it with the sleeper's increment of `sleeping`.
void wake_if_sleeping(std::atomic<std::uint32_t>& sleeping, std::atomic<std::uint32_t>& event,
                      int count) noexcept {
  if (sleeping.fetch_add(0, std::memory_order_seq_cst) != 0) wake(event, count);
}

/// The waiting loop shared by put, get and join: `attempt()` returns true when done (it may
/// also set a result and return true); `slow()` is called before each sleep (repairs, liveness)
/// and returns a member whose loss makes the wait hopeless, or -1; without a time limit, after one
/// more attempt, `on_lost(member)` throws (a timed wait simply times out). Spins, yields, then
/// sleeps on `event` with `sleeping` incremented. Returns false on timeout.
///
/// No fence on the fast path: a waker does its claim (a seq_cst CAS on a position) and then loads
/// `sleeping`; a sleeper increments `sleeping` (seq_cst) and then checks `pending()`, which says
/// whether such a claim has happened (the item or the space it waits for is on its way). One of
/// the two sees the other: either the waker sees the sleeper and wakes it after publishing, or the
/// sleeper sees the claim and yields instead of sleeping.
/// `what` goes into this rank's wait record once the wait leaves its spin phase (hang reports,
/// deadlock detection); it is cleared when the wait ends.
template <class Attempt, class Pending, class Slow, class OnLost>
bool wait_loop(const transport::WaitPolicy& policy, nanoseconds timeout,
               std::atomic<std::uint32_t>& sleeping, std::atomic<std::uint32_t>& event,
               const View& view, transport::WaitFor what,
               Attempt&& attempt, Pending&& pending, Slow&& slow, OnLost&& on_lost) {
  if (attempt()) return true;
  if (timeout.count() == 0) return false;
  Deadline deadline(timeout);
  for (std::uint32_t i = 0; i < policy.spins; ++i) {
    transport::cpu_relax();
    if (attempt()) return true;
  }
  transport::WaitRecord record(view.segment(), view.self_world());
  what.object = transport::wait_object_of(view.segment(), &view.q());
  what.timed = !deadline.unlimited;
  record.set(what);
  for (std::uint32_t i = 0; i < policy.yields; ++i) {
    std::this_thread::yield();
    if (attempt()) return true;
    if (deadline.passed()) return false;
  }
  for (;;) {
    if (int lost = slow(); lost >= 0 && deadline.unlimited) {  // a timed wait just times out
      if (attempt()) return true;
      on_lost(lost);
    }
    if (attempt()) return true;
    if (deadline.passed()) return false;
    std::uint32_t ev = event.load(std::memory_order_acquire);
    sleeping.fetch_add(1, std::memory_order_seq_cst);
    if (attempt()) {
      sleeping.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    if (pending()) {  // a claim is being finished: do not sleep through it
      sleeping.fetch_sub(1, std::memory_order_relaxed);
      std::this_thread::yield();
      continue;
    }
    // The slice is short while this rank has non-blocking operations outstanding (advanced here).
    platform::futex_wait(event, ev, deadline.slice(view.waiter().foreign_sleep_slice()));
    sleeping.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace

// cohortrun --trace/--stats: one event per put/get call (bytes: the item's size).
class QueueTrace {
 public:
  QueueTrace(const Communicator& comm, transport::TraceKind kind, std::size_t bytes) noexcept
      : trace_(comm.impl().runtime().trace()) {
    if (trace_.on()) [[unlikely]] {
      e_ = transport::TraceEvent{transport::trace_clock_ns(), 0, bytes, 0, -1, -1,
                                 comm.impl().context(), static_cast<std::uint16_t>(kind), 0, 0};
    }
  }
  QueueTrace(const QueueTrace&) = delete;
  QueueTrace& operator=(const QueueTrace&) = delete;
  ~QueueTrace() {
    if (!trace_.on()) return;
    e_.end_ns = transport::trace_clock_ns();
    auto& counter = e_.kind == static_cast<std::uint16_t>(transport::TraceKind::queue_put)
                        ? trace_.stats().queue_puts : trace_.stats().queue_gets;
    transport::RankTrace::add(counter, 1);
    if (trace_.events_on()) trace_.record(e_);
  }
  [[nodiscard]] bool on() const noexcept { return trace_.on(); }
  // A get learns the item's size from the sink: this one notes it and forwards.
  [[nodiscard]] QueueSink counting(const QueueSink& inner) noexcept {
    inner_ = &inner;
    return QueueSink{[](void* ctx, std::size_t bytes) {
                       auto* self = static_cast<QueueTrace*>(ctx);
                       self->e_.bytes = bytes;
                       return self->inner_->prepare(self->inner_->ctx, bytes);
                     },
                     this};
  }

 private:
  const transport::RankTrace& trace_;
  transport::TraceEvent e_{};
  const QueueSink* inner_ = nullptr;
};

// ------------------------------------------------------------------------------------ QueueCore

QueueCore::QueueCore(Communicator& comm, const QueueOptions& options)
    : shared_(nullptr), comm_(comm), maxsize_(options.maxsize), rank_(comm.rank()),
      self_(comm.impl().world_rank(comm.rank())) {
  if (options.maxsize == 0 || options.maxsize > (std::size_t{1} << 30)) {
    throw InvalidArgument(fmt::format("rank {}: Queue: maxsize {} is out of range (1 .. 2^30)",
                                      self_, options.maxsize));
  }
  std::size_t chunks = chunks_for(options.pool_bytes);
  if (chunks > (std::size_t{1} << 30)) {
    throw InvalidArgument(fmt::format("rank {}: Queue: pool_bytes {} is too large", self_,
                                      options.pool_bytes));
  }
  Layout l = layout_for(options.maxsize, chunks, static_cast<std::uint64_t>(comm.size()));
  shared_ = reinterpret_cast<QueueShared*>(
      attach_shared(comm, l.total, 64, &init_queue, &l).data());
}

QueueResult QueueCore::put(std::span<const std::byte> payload, nanoseconds timeout) {
  QueueTrace traced(comm_, transport::TraceKind::queue_put, payload.size());
  View v(shared_, comm_);
  QueueShared& q = v.q();
  const auto& policy = comm_.impl().runtime().waiter().policy();
  const std::size_t bytes = payload.size();
  if (bytes >= kHole) {
    throw InvalidArgument(fmt::format("rank {}: Queue::put: an item of {} bytes is too large", self_, bytes));
  }
  if (q.enqueue_pos.load(std::memory_order_relaxed) & kClosedBit) return QueueResult::closed;

  // 1. Large items: take chunks and fill them first, so that a claimed slot is always finished.
  std::uint32_t first = 0;
  std::size_t nchunks = 0;
  if (bytes > kInlineBytes) {
    nchunks = chunks_for(bytes);
    if (nchunks > q.chunks) {
      throw InvalidArgument(fmt::format(
          "rank {}: Queue::put: an item of {} bytes does not fit the queue's pool of {} bytes; "
          "create the queue with a larger QueueOptions::pool_bytes",
          self_, bytes, std::size_t{q.chunks} * kChunkBytes));
    }
    std::vector<std::uint32_t> got;
    got.reserve(nchunks);
    auto take = [&] {
      while (got.size() < nchunks) {
        std::uint32_t c = 0;
        if (!v.pop_chunk(c)) {
          // Give back what we hold so that two large puts cannot starve each other.
          for (auto x : got) v.push_chunk(x);
          got.clear();
          return false;
        }
        got.push_back(c);
      }
      return true;
    };
    bool closed = false;
    auto attempt = [&] {
      if (q.enqueue_pos.load(std::memory_order_relaxed) & kClosedBit) return closed = true;
      return take();
    };
    auto slow = [&] {
      return v.all_others_dead(rank_);
    };
    auto on_lost = [&](int dead) {
        throw PeerLost(comm_.impl().world_rank(dead),
                       fmt::format("rank {}: Queue::put: waiting for pool space, but every other "
                                   "rank of the communicator has died or exited (e.g. rank {})",
                                   self_, comm_.impl().world_rank(dead)));
    };
    auto pending = [] { return false; };  // consumers call wake_if_sleeping after freeing chunks
    if (!wait_loop(policy, timeout, q.pool_sleeping, q.pool_event, v,
                   transport::WaitFor{transport::WaitOp::queue_put, -1, 1}, attempt, pending, slow,
                   on_lost)) {
      return QueueResult::timeout;
    }
    if (closed) {
      for (auto x : got) v.push_chunk(x);
      return QueueResult::closed;
    }
    first = got[0];
    for (std::size_t i = 0; i < nchunks; ++i) {
      std::size_t off = i * kChunkBytes;
      std::memcpy(v.chunk(got[i]), payload.data() + off, std::min(kChunkBytes, bytes - off));
      v.next(got[i]).store(i + 1 < nchunks ? got[i + 1] + 1 : 0, std::memory_order_relaxed);
    }
  }

  // 2. Claim a position.
  QueueClaim& mine = v.claim(rank_);
  QueueSlot* slot = nullptr;
  std::uint64_t pos = 0;
  bool closed = false;
  bool consumers_asleep = false;
  auto attempt = [&] {
    pos = q.enqueue_pos.load(std::memory_order_relaxed);
    for (;;) {
      if (pos & kClosedBit) return closed = true;
      QueueSlot& s = v.slot(pos);
      std::uint64_t seq = s.seq.load(std::memory_order_acquire);
      auto dif = static_cast<std::int64_t>(seq - pos);
      if (dif == 0) {
        mine.put.store(pos + 1, std::memory_order_relaxed);
        if (q.enqueue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst,
                                                std::memory_order_relaxed)) {
          slot = &s;
          // After the claim (seq_cst): pairs with wait_loop's pending() check.
          consumers_asleep = q.consumers_sleeping.load(std::memory_order_seq_cst) != 0;
          if (queue_claim_hook != nullptr) queue_claim_hook("put");
          return true;
        }
      } else if (dif < 0) {
        return false;  // full
      } else {
        pos = q.enqueue_pos.load(std::memory_order_relaxed);
      }
    }
  };
  auto slow = [&] {
    // A consumer that died after claiming the slot we wait for never releases it: release it.
    std::uint64_t p = q.enqueue_pos.load(std::memory_order_acquire) & ~kClosedBit;
    QueueSlot& s = v.slot(p);
    std::uint64_t seq = s.seq.load(std::memory_order_acquire);
    std::uint64_t cap = q.capacity;
    if (p >= cap && seq == p - cap + 1 && q.dequeue_pos.load(std::memory_order_acquire) > p - cap &&
        v.claim_abandoned(p - cap, /*put=*/false)) {
      if (s.seq.compare_exchange_strong(seq, p, std::memory_order_release)) {
        q.lost.fetch_add(1, std::memory_order_relaxed);
        q.finished.fetch_add(1, std::memory_order_relaxed);
        std::fprintf(stderr,
                     "cohort: rank %d: Queue: a consumer died while getting an item; the item is "
                     "lost and the queue goes on\n", self_);
      }
    }
    return v.all_others_dead(rank_);
  };
  auto on_lost = [&](int dead) {
      throw PeerLost(comm_.impl().world_rank(dead),
                     fmt::format("rank {}: Queue::put: the queue is full and every other rank of "
                                 "the communicator has died or exited (e.g. rank {}); nobody can "
                                 "get", self_, comm_.impl().world_rank(dead)));
  };
  bool ok = false;
  try {
    auto pending = [&] {  // a consumer has claimed the slot we wait for and will release it
      std::uint64_t enq = q.enqueue_pos.load(std::memory_order_seq_cst) & ~kClosedBit;
      return enq >= q.capacity && q.dequeue_pos.load(std::memory_order_seq_cst) > enq - q.capacity;
    };
    ok = wait_loop(policy, timeout, q.producers_sleeping, q.space_event, v,
                   transport::WaitFor{transport::WaitOp::queue_put, -1, 0}, attempt, pending, slow,
                   on_lost);
  } catch (...) {
    if (nchunks > 0) v.free_chain(first, nchunks);
    throw;
  }
  if (!ok || closed) {
    if (nchunks > 0) v.free_chain(first, nchunks);
    return closed ? QueueResult::closed : QueueResult::timeout;
  }

  // 3. Fill and publish.
  slot->bytes = static_cast<std::uint32_t>(bytes);
  if (nchunks > 0) {
    slot->chunk = first;
  } else if (bytes > 0) {
    std::memcpy(slot->data, payload.data(), bytes);
  }
  slot->seq.store(pos + 1, std::memory_order_release);
  mine.put.store(0, std::memory_order_relaxed);
  if (consumers_asleep) wake(q.items_event, 1);
  return QueueResult::ok;
}

QueueResult QueueCore::get(const QueueSink& user_sink, nanoseconds timeout) {
  QueueTrace traced(comm_, transport::TraceKind::queue_get, 0);
  const QueueSink sink = traced.on() ? traced.counting(user_sink) : user_sink;
  View v(shared_, comm_);
  QueueShared& q = v.q();
  const auto& policy = comm_.impl().runtime().waiter().policy();
  QueueClaim& mine = v.claim(rank_);
  QueueResult result = QueueResult::ok;
  bool end = false;
  auto attempt = [&] {
    std::uint64_t pos = q.dequeue_pos.load(std::memory_order_relaxed);
    for (;;) {
      QueueSlot& s = v.slot(pos);
      std::uint64_t seq = s.seq.load(std::memory_order_acquire);
      auto dif = static_cast<std::int64_t>(seq - (pos + 1));
      if (dif == 0) {
        mine.get.store(pos + 1, std::memory_order_relaxed);
        if (!q.dequeue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst,
                                                 std::memory_order_relaxed)) {
          continue;
        }
        // After the claim (seq_cst): pairs with wait_loop's pending() check.
        bool producers_asleep = q.producers_sleeping.load(std::memory_order_seq_cst) != 0;
        // Claimed: copy out, then release the slot for the producer one lap ahead.
        if (queue_claim_hook != nullptr) queue_claim_hook("get");
        std::uint32_t bytes = s.bytes;
        bool hole = bytes == kHole;
        if (!hole) {
          std::byte* dst = sink.prepare(sink.ctx, bytes);
          if (bytes <= kInlineBytes) {
            if (dst != nullptr && bytes > 0) std::memcpy(dst, s.data, bytes);
          } else {
            std::uint32_t c = s.chunk;
            std::size_t n = chunks_for(bytes);
            if (!read_item_chunks(dst, bytes, c, &v.next(0), v.chunk(0), q.chunks)) {
              // Release the slot (its chunks are not trusted: leaked, not freed) and say so.
              s.seq.store(pos + q.capacity, std::memory_order_release);
              mine.get.store(0, std::memory_order_relaxed);
              if (producers_asleep) wake(q.space_event, 1);
              throw DeserializeError(fmt::format(
                  "rank {}: Queue::get: the item at position {} is corrupt ({} bytes from chunk {} "
                  "of {}); the queue's shared memory was overwritten (a stray write in a rank?)",
                  self_, pos, bytes, c, q.chunks));
            }
            v.free_chain(c, n);
          }
          if (dst == nullptr) result = QueueResult::type_mismatch;
        }
        s.seq.store(pos + q.capacity, std::memory_order_release);
        mine.get.store(0, std::memory_order_relaxed);
        if (producers_asleep) wake(q.space_event, 1);
        if (bytes > kInlineBytes && !hole) {
          wake_if_sleeping(q.pool_sleeping, q.pool_event, INT_MAX);  // chunks were freed
        }
        if (hole) {
          q.finished.fetch_add(1, std::memory_order_relaxed);
          pos = q.dequeue_pos.load(std::memory_order_relaxed);
          continue;  // the producer of this slot died: skip it
        }
        return true;
      }
      if (dif < 0) {
        // Nothing published at pos. The end: closed, and nothing claimed beyond pos.
        std::uint64_t enq = q.enqueue_pos.load(std::memory_order_acquire);
        if ((enq & kClosedBit) && (enq & ~kClosedBit) <= pos &&
            q.dequeue_pos.load(std::memory_order_relaxed) == pos) {
          end = true;
          return true;
        }
        return false;
      }
      pos = q.dequeue_pos.load(std::memory_order_relaxed);
    }
  };
  auto slow = [&] {
    // A producer that died after claiming the slot we wait for never publishes it: make a hole.
    std::uint64_t p = q.dequeue_pos.load(std::memory_order_acquire);
    QueueSlot& s = v.slot(p);
    std::uint64_t seq = s.seq.load(std::memory_order_acquire);
    if (seq == p && (q.enqueue_pos.load(std::memory_order_acquire) & ~kClosedBit) > p &&
        v.claim_abandoned(p, /*put=*/true)) {
      s.bytes = kHole;
      if (s.seq.compare_exchange_strong(seq, p + 1, std::memory_order_release)) {
        q.lost.fetch_add(1, std::memory_order_relaxed);
        std::fprintf(stderr,
                     "cohort: rank %d: Queue: a producer died while putting an item; the item is "
                     "lost and the queue goes on\n", self_);
      }
    }
    return v.all_others_dead(rank_);
  };
  auto on_lost = [&](int dead) {
      throw PeerLost(comm_.impl().world_rank(dead),
                     fmt::format("rank {}: Queue::get: the queue is empty and every other rank of "
                                 "the communicator has died or exited (e.g. rank {}); nobody can "
                                 "put", self_, comm_.impl().world_rank(dead)));
  };
  auto pending = [&] {  // a producer has claimed the position we wait for and will publish it
    return (q.enqueue_pos.load(std::memory_order_seq_cst) & ~kClosedBit) >
           q.dequeue_pos.load(std::memory_order_seq_cst);
  };
  if (!wait_loop(policy, timeout, q.consumers_sleeping, q.items_event, v,
                 transport::WaitFor{transport::WaitOp::queue_get}, attempt, pending, slow,
                 on_lost)) {
    return QueueResult::timeout;
  }
  if (end) {
    // Pass the end on to other sleeping consumers.
    wake_if_sleeping(q.consumers_sleeping, q.items_event, INT_MAX);
    return QueueResult::closed;
  }
  return result;
}

void QueueCore::close() {
  QueueShared& q = *shared_;
  q.enqueue_pos.fetch_or(kClosedBit, std::memory_order_acq_rel);
  q.items_event.fetch_add(1, std::memory_order_seq_cst);
  q.space_event.fetch_add(1, std::memory_order_seq_cst);
  q.pool_event.fetch_add(1, std::memory_order_seq_cst);
  platform::futex_wake(q.items_event, INT_MAX);
  platform::futex_wake(q.space_event, INT_MAX);
  platform::futex_wake(q.pool_event, INT_MAX);
}

bool QueueCore::closed() const noexcept {
  return (shared_->enqueue_pos.load(std::memory_order_acquire) & kClosedBit) != 0;
}

std::size_t QueueCore::size() const noexcept {
  std::uint64_t deq = shared_->dequeue_pos.load(std::memory_order_acquire);
  std::uint64_t enq = shared_->enqueue_pos.load(std::memory_order_acquire) & ~kClosedBit;
  return enq > deq ? static_cast<std::size_t>(enq - deq) : 0;
}

std::uint64_t QueueCore::lost() const noexcept {
  return shared_->lost.load(std::memory_order_relaxed);
}

void QueueCore::task_done() {
  QueueShared& q = *shared_;
  std::uint64_t done = q.finished.fetch_add(1, std::memory_order_acq_rel) + 1;
  std::uint64_t put = q.enqueue_pos.load(std::memory_order_acquire) & ~kClosedBit;
  if (done > put) {
    q.finished.fetch_sub(1, std::memory_order_relaxed);
    throw Error(fmt::format("rank {}: Queue::task_done: called more times than items were put",
                            self_));
  }
  if (done == put) wake_if_sleeping(q.joiners, q.done_event, INT_MAX);
}

bool QueueCore::join(nanoseconds timeout) {
  View v(shared_, comm_);
  QueueShared& q = v.q();
  const auto& policy = comm_.impl().runtime().waiter().policy();
  auto unfinished = [&] {
    std::uint64_t done = q.finished.load(std::memory_order_acquire);
    std::uint64_t put = q.enqueue_pos.load(std::memory_order_acquire) & ~kClosedBit;
    return put > done ? put - done : 0;
  };
  auto attempt = [&] { return unfinished() == 0; };
  auto slow = [&] {
    return v.all_others_dead(rank_);
  };
  auto on_lost = [&](int dead) {
      throw PeerLost(comm_.impl().world_rank(dead),
                     fmt::format("rank {}: Queue::join: {} items are unfinished and every other "
                                 "rank of the communicator has died or exited (e.g. rank {})",
                                 self_, unfinished(), comm_.impl().world_rank(dead)));
  };
  auto pending = [] { return false; };  // task_done calls wake_if_sleeping
  return wait_loop(policy, timeout, q.joiners, q.done_event, v,
                   transport::WaitFor{transport::WaitOp::queue_join}, attempt, pending, slow, on_lost);
}

}  // namespace cohort::detail
