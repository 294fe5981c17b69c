// Collectives layer: the shared-memory algorithms behind Communicator's collective methods.
// The protocol (publish into one's own block, readers acknowledge) is described in engine.hpp.
//
// Algorithms (n = communicator size, all flat: every rank reads its peers' blocks directly):
//   barrier          every rank publishes an empty descriptor, reads everyone else's (above 8
//                    ranks: members publish for rank 0, which publishes the release; use_flat())
//   broadcast        the root publishes once (inline or chunked); the others copy from its block
//   reduce           non-roots publish their data; the root combines chunk by chunk in rank order
//   allreduce        <= inline size: everyone publishes, everyone combines in rank order (above
//                    8 ranks: gathered and combined by rank 0, which publishes the result);
//                    larger, 2 ranks: both stage their input, both combine x0 op x1 chunk by
//                    chunk straight into their output; larger, 3+ ranks: per chunk, rank r
//                    combines segment r from every rank's slot and publishes it in its own slot,
//                    everyone copies the other segments (software-pipelined over the ring)
//   scan / exscan    rank r publishes for ranks > r and combines ranks 0..r chunk by chunk
//   reduce_scatter   allreduce, then each rank keeps its block
//   gather(v)        the root copies each rank's published block
//   scatter(v)       the root publishes its buffer; rank r copies its block (v: counts broadcast first)
//   allgather(v)     everyone publishes, everyone copies everyone's block
//   alltoall(v)      everyone publishes its send buffer less its own block, rank r copies its
//                    block of each (v: send counts all-gathered first)
// Copying collectives run a progress loop (publish what the slots allow, copy what is there) so
// no rank blocks while it holds what another needs; combining ones proceed chunk by chunk in rank
// order, which is deadlock-free because every stream is chunked alike. At the inline size,
// broadcast, reduce, gather, scatter and allgather skip the loop: each rank publishes (at most
// once) before it waits, then reads its peers one at a time in rank order (Call::wait_main),
// which cannot deadlock either and costs far less bookkeeping per call.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <exception>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cohort/collectives.hpp"
#include "cohort/errors.hpp"
#include "runtime/transport/collective_kind.hpp"
#include "runtime/transport/copy.hpp"
#include "runtime/transport/prefetch.hpp"
#include "runtime/transport/trace.hpp"
#include "runtime/collectives/engine.hpp"
#include "runtime/runtime.hpp"

namespace {
using cohort::transport::copy_bytes;
}  // namespace

namespace cohort::collectives {

namespace {
// Cpus of the machine (not this rank's affinity: a rank bound to one core is not oversubscribed).
int online_cpus() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}
}  // namespace

Engine::Engine(const transport::Segment& segment, int self, bool oversubscribed)
    : segment_(segment),
      area_(segment.collective_area(), segment.ranks()),
      // The launcher may not know that the job is oversubscribed (e.g. unbound ranks): collective
      // waits also use the oversubscribed WaitPolicy (short spin, then yield) when ranks
      // outnumber the cpus this rank may run on.
      waiter_(segment, self, oversubscribed || segment.ranks() > online_cpus()),
      self_(self),
      cores_of_their_own_(!oversubscribed && segment.ranks() <= online_cpus()),
      pid_(::getpid()),
      cross_memory_(self, "two-rank broadcasts and allreduces") {
  waiter_.count_wait_time(false);  // statistics: time in collectives counts as collective_ns
  announced.assign(static_cast<std::size_t>(segment.ranks()), 0);
  released_to.assign(static_cast<std::size_t>(segment.ranks()), 0);
}

Engine::~Engine() { pair_modes_.report(self_); }

PairModes::PairModes() : forced_(transport::mode_fixed_by_environment("COHORT_PAIR_STAGED")) {}

transport::ModeChooser& PairModes::chooser(std::uint64_t bytes) noexcept {
  // 32 KiB .. 64 KiB - 1 -> 0, 64 KiB .. -> 1, ..., 16 MiB and more -> kSizes - 1.
  return choosers_.of(bytes);
}

bool PairModes::staged(std::uint64_t bytes) noexcept {
  return forced_ >= 0 ? forced_ == 1 : chooser(bytes).want();
}

void PairModes::record(std::uint64_t bytes, bool staged, std::uint64_t ns) noexcept {
  if (forced_ < 0) chooser(bytes).record(staged, bytes, ns);
}

void PairModes::report(int self) const {
  const char* d = std::getenv("COHORT_DEBUG");
  if (d == nullptr || d[0] != '1') return;
  for (int b = 0; b < kSizes; ++b) {
    const transport::ModeChooser& m = choosers_.at(b);
    if (m.count(false) + m.count(true) == 0) continue;
    std::fprintf(stderr, "cohort: collectives: rank %d, two-rank allreduces of %llu KiB %s: %s\n",
                 self, static_cast<unsigned long long>(decltype(choosers_)::class_kib(b)),
                 b == kSizes - 1 ? "or more" : "up to twice that",
                 m.describe("copied across address spaces", "staged").c_str());
  }
}

void Engine::publish_released() noexcept {
  for (std::size_t w = 0; w < released_to.size(); ++w) {
    area_.released(self_, static_cast<int>(w)).store(released_to[w], std::memory_order_relaxed);
  }
}

namespace {

using transport::kCollectiveInlineBytes;

using Kind = transport::CollectiveKind;

const char* kind_name(std::uint16_t k) { return transport::collective_kind_name(k); }

constexpr std::uint16_t kFlagInline = 1;
constexpr std::uint16_t kFlagError = 2;  // a root found a mismatch: its readers throw too
// A two-rank copying publication (broadcast_pair, allreduce_pair_copy): the inline bytes hold a
// PairInfo, the payload is not inline (it crosses address spaces, or goes through the staging
// chunks named).
constexpr std::uint16_t kFlagPair = 4;
// The publication has one reader (a two-rank communicator, or a reduce or gather member's
// contribution, which only the root reads): it releases with a plain store (Call::release).
constexpr std::uint16_t kFlagOneReader = 8;

struct Descriptor {
  Kind kind;
  int root = -1;
  std::uint64_t bytes = 0;
  std::uint32_t elem_bytes = 1;
  std::uint32_t op_id = 0;
};

/// A peer's publication this rank reads: the part [offset, offset + length) of its stream.
struct Incoming {
  int peer = 0;  // communicator rank
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::byte* dest = nullptr;           // copy target (copying collectives)
  bool check_total = true;             // compare the stream's size with expect_total
  bool pair = false;                   // expect a two-rank copying publication (kFlagPair:
                                       // broadcast_pair, allreduce_pair_copy)
  std::uint64_t expect_total = 0;
  // State.
  bool opened = false;
  bool is_inline = false;
  bool done = false;
  std::uint64_t first_chunk = 0;
  std::uint64_t chunk_bytes = 0;
  std::uint64_t total = 0;
  std::uint64_t next = 0;  // chunk indexes [next, end) still to read
  std::uint64_t end = 0;
  const std::byte* inline_data = nullptr;
};

/// Where a publication's chunks start in this rank's staging ring (Call::take_chunks).
enum class RingStart {
  /// Right after the previous publication's: consecutive calls go round the ring. For ranks
  /// that run ahead of their readers (a broadcast root, a gather member): the slot it writes
  /// was last read a lap ago, so its lines have mostly left the reader's cache, where writing
  /// into lines a reader has just read costs a cross-core invalidation each (restarting made
  /// np=4 and np=8 64 KiB gathers 1.35-1.7x slower in loops of 1000).
  next,
  /// The ring's start again when its first slots are free (every reader of what went through
  /// them is done), else as `next`, for publications of less than half a ring: collectives
  /// that synchronise (large allreduce and iallreduce) reuse the same slots call after call,
  /// and their first calls no longer pay for every page of the ring (np=8 64 KiB allreduce
  /// over 50 calls: 848 -> 139 us; iallreduce at np=2: 206 -> 15 us, and 24 -> 15 in loops of
  /// 1000, where the data stays in the cache). Half a ring or more goes on as `next`, which
  /// then alternates between the two halves and has touched the whole ring after two calls:
  /// restarting there only added a third slow call whenever one rank found its first half still
  /// being read and went on into the second (np=4 1 MiB allreduce over 15 calls: 371 -> 796 us).
  restart_when_free,
  /// The next half of the ring, for at most half a ring of chunks (alltoall's one-block
  /// chunks): consecutive alltoalls alternate between the two halves, and each reader reads 2
  /// slots of each peer, not all 16 (at 8 ranks, 7 chunks a call). It costs no waiting: an
  /// alltoall ends only once every rank has entered it, so by the time this rank reuses a half
  /// (two calls later) every peer has finished the call that filled it, reads included.
  alternate_halves,
};

/// This rank's publication: `bytes` from `data`; rank r reads [ranges[r].first, +second).
struct Outgoing {
  const std::byte* data = nullptr;
  Descriptor d;
  std::vector<int> main_readers;  // communicator ranks
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // per communicator rank
  // The stream may be two pieces of `data`: its first `head_bytes` bytes are data[head + x],
  // the rest data[tail + x - head_bytes] (alltoall: the blocks after the one a rank keeps, then
  // those before it; so no chunk number, hence no staging slot, goes to a block nobody reads).
  std::uint64_t head = 0;
  std::uint64_t head_bytes = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t tail = 0;
  // At most this many bytes a chunk (0: the staging slot's size), for streams of equal blocks
  // (alltoall): one block a chunk, so that a reader waits for its own block only.
  std::uint32_t max_chunk = 0;
  // Where in the staging ring the chunks start: see Call::take_chunks.
  RingStart ring_start = RingStart::next;
  // State.
  bool is_inline = false;
  std::uint64_t first = 0;
  std::uint32_t chunk_bytes = 0;
  std::uint64_t next = 0;
  std::uint64_t chunks = 0;
};

/// Streams of equal blocks at least this large get one chunk a block (Outgoing::max_chunk).
inline constexpr std::uint64_t kBlockChunkMinBytes = 4096;

/// Copies the stream bytes [a, a + len) of `o` to `dst`.
void copy_stream(const Outgoing& o, std::byte* dst, std::uint64_t a, std::uint64_t len) {
  if (a + len <= o.head_bytes) {
    copy_bytes(dst, o.data + o.head + a, len);
  } else if (a >= o.head_bytes) {
    copy_bytes(dst, o.data + o.tail + (a - o.head_bytes), len);
  } else {
    const std::uint64_t before = o.head_bytes - a;
    copy_bytes(dst, o.data + o.head + a, before);
    copy_bytes(dst + before, o.data + o.tail, len - before);
  }
}

/// Collectives with a root, whose data flows one way between it and the others.
constexpr bool rooted(Kind k) noexcept {
  return k == Kind::broadcast || k == Kind::reduce || k == Kind::gather || k == Kind::scatter;
}

class Call {
 public:
  Call(detail::CommunicatorImpl& comm, Kind kind)
      : comm_(comm),
        engine_(comm.runtime().collectives()),
        area_(engine_.area()),
        segment_(engine_.segment()),
        kind_(kind),
        seq_(comm.next_collective_sequence()),
        token_((static_cast<std::uint64_t>(comm.context()) << 32) | seq_),
        main_(seq_ % transport::kCollectiveMains),
        me_(comm.rank()),
        n_(comm.size()),
        prefetch_(engine_.cores_of_their_own() && rooted(kind)) {}

  [[nodiscard]] int me() const noexcept { return me_; }
  [[nodiscard]] int n() const noexcept { return n_; }
  [[nodiscard]] int world(int r) const noexcept { return comm_.world_rank(r); }
  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  [[nodiscard]] detail::CommunicatorImpl& comm() const noexcept { return comm_; }
  [[nodiscard]] Engine& engine() const noexcept { return engine_; }

  [[nodiscard]] std::string where() const {
    return fmt::format("rank {}: {} on communicator {} (collective call #{})", me_,
                       kind_name(static_cast<std::uint16_t>(kind_)), comm_.context(), seq_);
  }

  [[noreturn]] void throw_lost(int world_peer) const {
    int peer = world_peer;
    const auto& w = comm_.world_ranks();
    if (auto it = std::find(w.begin(), w.end(), world_peer); it != w.end()) {
      peer = static_cast<int>(it - w.begin());
    }
    throw PeerLost(peer, fmt::format("{}: rank {} (world rank {}) exited or died before taking "
                                     "its part; the collective can never complete",
                                     where(), peer, world_peer));
  }

  [[noreturn]] void mismatch(int peer, const char* what, std::uint64_t theirs,
                             std::uint64_t mine) const {
    throw CollectiveMismatch(fmt::format("{}: rank {} passed {} {}, this rank passed {}; every "
                                         "rank must call collectives in the same order with "
                                         "matching arguments",
                                         where(), peer, what, theirs, mine));
  }

  /// `peer_world`: the one rank whose publication can end this wait (-1: any); only that rank's
  /// publications wake this rank if it sleeps (see notify()).
  template <class Ready, class Lost>
  void wait(Ready&& ready, Lost&& lost, int peer_world = -1) {
    if (!engine_.pending.empty()) {
      // Advance the non-blocking collectives in flight while waiting (see Engine::pending).
      auto ready_and_progress = [&] {
        engine_.progress_pending();
        return ready();
      };
      engine_.waiter().wait(
          ready_and_progress,
          transport::WaitFor{transport::WaitOp::collective, -1, static_cast<int>(kind_),
                             comm_.context()},
          lost, [this](int p) { throw_lost(p); });
      return;
    }
    engine_.waiter().wait(
        ready,
        transport::WaitFor{transport::WaitOp::collective, peer_world, static_cast<int>(kind_),
                           comm_.context()},
        lost, [this](int p) { throw_lost(p); });
  }

  /// The first of `world_ranks` (readers of this rank's publications) that has exited or died
  /// owing a read: it will never release it. (A reader that released all it was announced and
  /// then ended its Environment is not lost, even if the wait's other readers have not released
  /// yet. One that died or left without ending it published no counts and is taken as owing.)
  int lost_reader(const std::vector<int>& world_ranks) const {
    for (int w : world_ranks) {
      if (!segment_.alive(w) &&
          area_.released(w, engine_.self()).load(std::memory_order_acquire) <
              engine_.announced[static_cast<std::size_t>(w)]) {
        return w;
      }
    }
    return -1;
  }

  // ---- publisher side -------------------------------------------------------------------

  std::uint32_t chunk_size(std::uint32_t elem) const {
    std::size_t cb = area_.chunk_bytes() / elem * elem;
    if (cb == 0) {
      throw InvalidArgument(fmt::format("{}: elements of {} bytes are larger than the {}-byte "
                                        "staging chunk; use smaller elements",
                                        where(), elem, area_.chunk_bytes()));
    }
    return static_cast<std::uint32_t>(cb);
  }

  /// Publishes this rank's main lines (after the previous publication's readers are done).
  /// `readers`: communicator ranks.
  void publish_main(const Descriptor& d, const void* inline_data, std::uint64_t inline_bytes,
                    std::span<const int> readers, std::uint64_t first_chunk,
                    std::uint32_t chunk_bytes, std::uint16_t extra_flags = 0) {
    const int self = engine_.self();
    auto& expected = engine_.main_expected[main_];
    auto& main_readers = engine_.main_readers[main_];
    wait_main_free();
    transport::CollectiveMain& m = area_.main(self, main_);
    m.step = 0;
    m.kind = static_cast<std::uint16_t>(d.kind);
    const bool is_inline = inline_data != nullptr && (extra_flags & kFlagPair) == 0;
    m.flags = static_cast<std::uint16_t>((is_inline ? kFlagInline : 0) |
                                         (readers.size() == 1 ? kFlagOneReader : 0) | extra_flags);
    m.root = d.root;
    m.op_id = d.op_id;
    m.bytes = d.bytes;
    m.chunk_bytes = chunk_bytes;
    m.elem_bytes = d.elem_bytes;
    m.first_chunk = first_chunk;
    if (inline_data != nullptr && inline_bytes > 0) {
      copy_bytes(m.inline_data, inline_data, inline_bytes);
    }
    expected += readers.size();
    m.wake_at = expected;
    if (readers.empty()) {
      // Read by nobody (a reduce or gather root's descriptor, for root-mismatch detection): no
      // notify() follows, so release is enough (spares the fence of a seq_cst store).
      m.token.store(token_, std::memory_order_release);
    } else {
      m.token.store(token_, std::memory_order_seq_cst);  // seq_cst: ordered before notify()'s loads
    }
    main_readers.clear();
    for (int r : readers) main_readers.push_back(world(r));
    for (int w : main_readers) {
      ++engine_.announced[static_cast<std::size_t>(w)];
      notify(w);
    }
    if (prefetch_) {
      // The main line this rank publishes kPrefetchCalls calls from now: its readers read it
      // last, and the store that publishes it waits for the line to come back.
      transport::prefetch_for_write(
          &area_.main(self, (main_ + kPrefetchCalls) % transport::kCollectiveMains));
    }
  }

  /// Publishes `bytes` (<= kCollectiveInlineBytes) inline in this call's main line for `readers`
  /// (communicator ranks); an empty payload is still an inline publication.
  void publish_inline(const Descriptor& d, const void* data, std::uint64_t bytes,
                      std::span<const int> readers, std::uint16_t extra_flags = 0) {
    static const std::byte kNothing{};
    publish_main(d, bytes > 0 ? data : &kNothing, bytes, readers, 0, 0, extra_flags);
  }

  /// Wakes world rank `w` if it sleeps. Call right after a seq_cst store or read-modify-write
  /// of what it waits for: that orders the store before this load of `sleeping` (the sleeper
  /// sets `sleeping`, then a seq_cst fence, then re-checks), so no fence is needed here and a
  /// publication to many readers pays for one barrier, not one per reader.
  ///
  /// A sleeper in a collective wait for one given rank's publication (wait_open: flat barrier
  /// and small allreduce, the reduce root) is not woken by the others' publications: in a flat
  /// collective each publication used to wake every earlier arrival, O(n^2) futex wakes when ranks
  /// sleep (a loaded machine). The sleeper stored its wait record before `sleeping` (release), so
  /// the record read here belongs to that sleep; a stale `sleeping` (an earlier sleep) means
  /// the sleeper's next check, after its seq_cst fence, sees what we published.
  void notify(int w) const noexcept {
    const transport::RankSlot& s = segment_.slot(w);
    if (s.sleeping.load(std::memory_order_seq_cst) == 0) return;
    if (s.wait_op.load(std::memory_order_relaxed) ==
            static_cast<std::uint32_t>(transport::WaitOp::collective)) {
      const int waits_for = s.wait_peer.load(std::memory_order_relaxed);
      if (waits_for >= 0 && waits_for != engine_.self()) return;
    }
    segment_.wake(w);
  }

  /// True when this call's main line may be published without waiting.
  [[nodiscard]] bool main_free() const {
    return area_.main_consumed(engine_.self(), main_).value.load(std::memory_order_acquire) >=
           engine_.main_expected[main_];
  }

  /// Waits until every reader of this rank's last publication in this call's main line has
  /// released it.
  void wait_main_free() {
    if (!main_free()) {
      wait([&] { return main_free(); }, [&] { return lost_reader(engine_.main_readers[main_]); });
    }
  }

  /// The step word of this rank's main line (broadcast_pair: the root's outcome), set after
  /// publication; wakes communicator rank `reader` if it sleeps.
  void set_step(std::uint32_t v, int reader) {
    std::atomic_ref<std::uint32_t>(area_.main(engine_.self(), main_).step)
        .store(v, std::memory_order_seq_cst);
    notify(world(reader));
  }

  /// Waits until communicator rank `peer` sets the step word of its publication in this call's
  /// main line (which this rank has opened and not released) to `at_least` or more; returns it.
  /// (A rank's step words in one call only grow.)
  std::uint32_t wait_step(int peer, std::uint32_t at_least = 1) {
    const int w = world(peer);
    std::atomic_ref<std::uint32_t> step(area_.main(w, main_).step);
    if (step.load(std::memory_order_acquire) < at_least) {
      wait([&] { return step.load(std::memory_order_acquire) >= at_least; },
           [&] { return segment_.alive(w) ? -1 : w; }, w);
    }
    return step.load(std::memory_order_acquire);
  }

  [[nodiscard]] bool slot_free(std::uint64_t g) const {
    std::size_t s = area_.slot_of(g);
    return area_.slot_consumed(engine_.self(), s).value.load(std::memory_order_acquire) >=
           engine_.slot_expected[s];
  }

  void wait_slot_free(std::uint64_t g) {
    if (slot_free(g)) return;
    std::size_t s = area_.slot_of(g);
    wait([&] { return slot_free(g); }, [&] { return lost_reader(engine_.slot_readers[s]); });
  }

  /// Writes global chunk `g` (slot must be free) and announces it to `readers` (comm ranks).
  void write_chunk(std::uint64_t g, const std::byte* src, std::uint32_t len,
                   const std::vector<int>& readers) {
    copy_bytes(area_.slot_data(engine_.self(), area_.slot_of(g)), src, len);
    announce_chunk(g, len, readers);
  }

  /// Announces global chunk `g` (its `len` bytes are in its slot) to `readers` (comm ranks).
  void announce_chunk(std::uint64_t g, std::uint32_t len, const std::vector<int>& readers) {
    const int self = engine_.self();
    std::size_t s = area_.slot_of(g);
    auto& h = area_.slot(self, s);
    h.bytes = len;
    h.releases = static_cast<std::uint32_t>(readers.size());
    engine_.slot_expected[s] += readers.size();
    h.wake_at = engine_.slot_expected[s];
    h.chunk.store(g + 1, std::memory_order_seq_cst);
    auto& wr = engine_.slot_readers[s];
    wr.clear();
    for (int r : readers) wr.push_back(world(r));
    for (int w : wr) {
      ++engine_.announced[static_cast<std::size_t>(w)];
      notify(w);
    }
  }

  /// Starts a publication: inline in the main lines when small, else announces the chunks.
  void start(Outgoing& out) {
    const std::uint64_t bytes = out.d.bytes;
    if (bytes <= kCollectiveInlineBytes) {
      out.is_inline = true;
      out.chunks = 0;
      std::byte packed[kCollectiveInlineBytes];
      copy_stream(out, packed, 0, bytes);
      publish_main(out.d, packed, bytes, out.main_readers, 0, 0);
      return;
    }
    number_chunks(out);
    publish_main(out.d, nullptr, 0, out.main_readers, out.first, out.chunk_bytes);
  }

  /// Numbers the chunks of a staged (not inline) publication `out`: its chunk size, its first
  /// global chunk and how many; none written yet.
  void number_chunks(Outgoing& out) {
    out.chunk_bytes = chunk_size(out.d.elem_bytes);
    if (out.max_chunk != 0) out.chunk_bytes = std::min(out.chunk_bytes, out.max_chunk);
    out.chunks = (out.d.bytes + out.chunk_bytes - 1) / out.chunk_bytes;
    out.first = take_chunks(out.chunks, out.ring_start);
    out.next = 0;
  }

  /// The first global number of a publication of `chunks` chunks (the next ones of this rank's
  /// stream), which decides the slots it goes through (chunk g: slot g % slots) and so the pages
  /// of the staging ring its readers touch. Numbers skipped are never published; nobody waits
  /// for them. On a machine where a process's first access to a page is slow
  /// (bench/coll/first_touch: 5-20 us a page on the 2026-12-07 evening guest), a job's first lap
  /// of the ring was the larger part of its first calls; see RingStart for the choices.
  std::uint64_t take_chunks(std::uint64_t chunks, RingStart start) {
    const std::uint64_t slots = area_.slots();
    const std::uint64_t half = slots / 2;
    std::uint64_t& next = engine_.next_chunk;
    if (start == RingStart::alternate_halves) {
      if (half > 0 && chunks <= half) next = (next + half - 1) / half * half;
    } else if (start == RingStart::restart_when_free && 2 * chunks < slots && next % slots != 0) {
      const std::uint64_t lap = (next / slots + 1) * slots;
      bool free = true;
      for (std::uint64_t c = 0; c < chunks && free; ++c) free = slot_free(lap + c);
      if (free) next = lap;
    }
    const std::uint64_t first = next;
    next += chunks;
    return first;
  }

  void chunk_readers(const Outgoing& out, std::uint64_t c, std::vector<int>& readers) const {
    readers.clear();
    std::uint64_t a = c * out.chunk_bytes;
    std::uint64_t b = std::min(a + out.chunk_bytes, out.d.bytes);
    for (int r = 0; r < n_; ++r) {
      if (r == me_ || r >= static_cast<int>(out.ranges.size())) continue;
      auto [off, len] = out.ranges[static_cast<std::size_t>(r)];
      if (len > 0 && off < b && a < off + len) readers.push_back(r);
    }
  }

  /// Writes as many chunks as the free slots allow. Returns whether it wrote any.
  bool try_write(Outgoing& out) {
    bool progressed = false;
    while (out.next < out.chunks && slot_free(out.first + out.next)) {
      write_next(out);
      progressed = true;
    }
    return progressed;
  }

  void write_next(Outgoing& out) {
    std::uint64_t c = out.next++;
    chunk_readers(out, c, scratch_readers_);
    if (scratch_readers_.empty()) return;  // nobody reads this chunk: skip it
    std::uint64_t a = c * out.chunk_bytes;
    auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(out.chunk_bytes, out.d.bytes - a));
    copy_stream(out, area_.slot_data(engine_.self(), area_.slot_of(out.first + c)), a, len);
    announce_chunk(out.first + c, len, scratch_readers_);
  }

  /// Blocking: writes the next chunk when its slot is free.
  void write_next_blocking(Outgoing& out) {
    wait_slot_free(out.first + out.next);
    write_next(out);
  }

  // ---- reader side ------------------------------------------------------------------------

  [[nodiscard]] bool main_ready(int peer) const {
    return area_.main(world(peer), main_).token.load(std::memory_order_acquire) == token_;
  }

  /// Reads the peer's descriptor (its token must be there), checks it against `expect`.
  void open(Incoming& in, const Descriptor& expect) {
    open(in, expect, area_.main(world(in.peer), main_));
  }

  /// open() of the peer's main `m` (from wait_main(in.peer)).
  void open(Incoming& in, const Descriptor& expect, const transport::CollectiveMain& m) {
    // The checks as one condition; their messages (check_descriptor) only when one fails.
    if (m.kind != static_cast<std::uint16_t>(expect.kind) || m.root != expect.root ||
        m.op_id != expect.op_id || m.elem_bytes != expect.elem_bytes ||
        (in.check_total && m.bytes != in.expect_total) || in.offset + in.length > m.bytes ||
        (m.flags & (kFlagError | kFlagPair)) != (in.pair ? kFlagPair : 0)) [[unlikely]] {
      check_descriptor(in, expect, m);
    }
    in.opened = true;
    in.total = m.bytes;
    in.is_inline = (m.flags & kFlagInline) != 0;
    if (in.is_inline) {
      in.inline_data = m.inline_data;
      in.next = in.end = 0;
    } else {
      in.first_chunk = m.first_chunk;
      in.chunk_bytes = m.chunk_bytes;
      if (in.length == 0) {
        in.next = in.end = 0;
      } else {
        in.next = in.offset / in.chunk_bytes;
        in.end = (in.offset + in.length + in.chunk_bytes - 1) / in.chunk_bytes;
      }
    }
  }

  /// The checks of open() one by one: throws CollectiveMismatch for the first that fails.
  [[gnu::noinline, gnu::cold]] void check_descriptor(const Incoming& in, const Descriptor& expect,
                                                     const transport::CollectiveMain& m) const {
    if (m.kind != static_cast<std::uint16_t>(expect.kind)) {
      throw CollectiveMismatch(fmt::format(
          "{}: rank {} called {} in the same position; every rank must call collectives in the "
          "same order", where(), in.peer, kind_name(m.kind)));
    }
    if (m.op_id != expect.op_id) {
      throw CollectiveMismatch(fmt::format("{}: rank {} passed a different reduction operation or "
                                           "element type", where(), in.peer));
    }
    if (m.elem_bytes != expect.elem_bytes) mismatch(in.peer, "elements of bytes", m.elem_bytes,
                                                    expect.elem_bytes);
    if (in.check_total && m.bytes != in.expect_total) mismatch(in.peer, "bytes", m.bytes,
                                                               in.expect_total);
    if (in.offset + in.length > m.bytes) {
      mismatch(in.peer, "a buffer of bytes", m.bytes, in.offset + in.length);
    }
    if ((m.flags & kFlagError) != 0) {
      throw CollectiveMismatch(fmt::format("{}: rank {} found that the ranks called this collective "
                                           "inconsistently (its own error names them)",
                                           where(), in.peer));
    }
    if (((m.flags & kFlagPair) != 0) != in.pair) {
      const char* k = kind_name(m.kind);
      throw CollectiveMismatch(fmt::format(
          "{}: rank {} called the {} form of this {}, this rank the {} one; a blocking {} "
          "matches a blocking one only, and i{} an i{}",
          where(), in.peer, in.pair ? "non-blocking" : "blocking", k,
          in.pair ? "blocking" : "non-blocking", k, k, k));
    }
    // After the form: a blocking allreduce met by an iallreduce also differs in root (the
    // non-blocking one reduces to rank 0), and the form is what the user has to change.
    if (m.root != expect.root) mismatch(in.peer, "root", static_cast<std::uint64_t>(m.root),
                                        static_cast<std::uint64_t>(expect.root));
  }

  /// The main line of communicator rank `peer` for this call, once its token is there: a wait
  /// for that rank only (a sleeping waiter is woken by its publication only, see notify()).
  const transport::CollectiveMain& wait_main(int peer) {
    const int w = world(peer);
    const transport::CollectiveMain& m = area_.main(w, main_);
    if (m.token.load(std::memory_order_acquire) != token_) {
      wait([&] { return m.token.load(std::memory_order_acquire) == token_; },
           [&] { return segment_.alive(w) ? -1 : w; }, w);
    }
    return m;
  }

  void wait_open(Incoming& in, const Descriptor& expect) { open(in, expect, wait_main(in.peer)); }

  /// Re-opens `in` (peer's publication `m`) for bytes [lo, lo + len) of its stream only, copied
  /// to `dest`: what a refused copy across address spaces left for the staging chunks.
  void open_range(Incoming& in, std::uint64_t lo, std::uint64_t len, std::byte* dest,
                  const Descriptor& expect, const transport::CollectiveMain& m) {
    in.offset = lo;
    in.length = len;
    in.dest = dest;
    open(in, expect, m);
  }

  /// Whether a copy across address spaces with communicator rank `peer` went through; throws
  /// PeerLost if the peer is gone (any other outcome: the caller stages instead).
  bool crossed(transport::CrossMemory r, int peer) const {
    if (r == transport::CrossMemory::peer_gone) throw_lost(world(peer));
    return r == transport::CrossMemory::done;
  }

  /// Says this rank is done with a part of world rank w's block. Only the publication's last
  /// reader wakes the publisher (the only one whose read can end its wait).
  /// (`last` is the publication's wake_at, read while it is still ours to read.)
  /// `only_reader`: the publication has no other reader, so nobody else moves the counter until
  /// the publisher reuses the part, which it does only once the count is complete: a plain
  /// store, then a fence for notify(), instead of a locked add. The locked add on a line that
  /// the publisher's core holds cost about one more hand-off: np=2 on the AMD EPYC guest of
  /// 2026-12-07 evening, medians of 5 alternations, us a call: barrier 0.373 -> 0.333, 8 B
  /// allreduce 0.531 -> 0.383 (Open MPI 0.451 and 0.479); np=4 8 B reduce 0.94 -> 0.73; rows
  /// whose publications all have several readers unchanged. (Dropping the fence too, which
  /// would let a wake-up be lost, gained only 0.01-0.03 us more.)
  void release(int w, transport::CollectiveCounter& counter, std::uint64_t last,
               bool only_reader) const {
    ++engine_.released_to[static_cast<std::size_t>(w)];  // private; shared when the rank ends
    if (only_reader) {
      const std::uint64_t v = counter.value.load(std::memory_order_relaxed) + 1;
      counter.value.store(v, std::memory_order_release);
      std::atomic_thread_fence(std::memory_order_seq_cst);  // the store before notify()'s load
      if (v == last) notify(w);
      return;
    }
    if (counter.value.fetch_add(1, std::memory_order_seq_cst) + 1 == last) notify(w);
  }

  void release_main(int peer) { release_main(peer, area_.main(world(peer), main_)); }

  /// Waits for communicator rank `in.peer`'s inline publication, checks it against `expect`,
  /// hands its payload to `use`, then releases it (the peer may reuse the line from then on).
  template <class Use>
  void read_inline(Incoming& in, const Descriptor& expect, Use&& use) {
    const transport::CollectiveMain& m = wait_main(in.peer);
    open(in, expect, m);
    use(in.inline_data);
    release_main(in.peer, m);
  }

  /// release_main() of the peer's main `m` (from wait_main(peer)).
  void release_main(int peer, const transport::CollectiveMain& m) {
    const int w = world(peer);
    release(w, area_.main_consumed(w, main_), m.wake_at, (m.flags & kFlagOneReader) != 0);
    if (prefetch_) {
      // The counter this rank bumps when it releases the peer's publication kPrefetchCalls
      // calls from now (the peer read it last, in main_free()).
      transport::prefetch_for_write(
          &area_.main_consumed(w, (main_ + kPrefetchCalls) % transport::kCollectiveMains));
    }
  }

  [[nodiscard]] bool chunk_ready(const Incoming& in, std::uint64_t c) const {
    std::uint64_t g = in.first_chunk + c;
    return area_.slot(world(in.peer), area_.slot_of(g)).chunk.load(std::memory_order_acquire) ==
           g + 1;
  }

  const std::byte* wait_chunk(const Incoming& in, std::uint64_t c) {
    if (!chunk_ready(in, c)) {
      int w = world(in.peer);
      wait([&] { return chunk_ready(in, c); }, [&] { return segment_.alive(w) ? -1 : w; });
    }
    return area_.slot_data(world(in.peer), area_.slot_of(in.first_chunk + c));
  }

  [[nodiscard]] const std::byte* area_data(const Incoming& in, std::uint64_t c) const {
    return area_.slot_data(world(in.peer), area_.slot_of(in.first_chunk + c));
  }

  void release_chunk(const Incoming& in, std::uint64_t c) {
    int w = world(in.peer);
    const std::size_t s = area_.slot_of(in.first_chunk + c);
    const transport::CollectiveSlotHeader& h = area_.slot(w, s);
    release(w, area_.slot_consumed(w, s), h.wake_at, h.releases == 1);
  }

  /// Copies the part of chunk c that this rank wants.
  void copy_chunk(const Incoming& in, std::uint64_t c, const std::byte* data) const {
    std::uint64_t a = c * in.chunk_bytes;
    std::uint64_t b = std::min(a + in.chunk_bytes, in.total);
    std::uint64_t lo = std::max(a, in.offset);
    std::uint64_t hi = std::min(b, in.offset + in.length);
    if (lo < hi) copy_bytes(in.dest + (lo - in.offset), data + (lo - a), hi - lo);
  }

  /// One non-blocking round of the copying collectives: writes what the free slots allow and
  /// copies every incoming part that has arrived. Returns true when everything is done.
  bool exchange_step(Outgoing* out, std::vector<Incoming>& ins, const Descriptor& expect,
                     bool& progressed) {
    bool all_done = true;
    if (out != nullptr) {
      progressed |= try_write(*out);
      if (out->next < out->chunks) all_done = false;
    }
    for (Incoming& in : ins) {
      if (in.done) continue;
      if (!in.opened) {
        if (!main_ready(in.peer)) {
          all_done = false;
          continue;
        }
        open(in, expect);
        progressed = true;
        if (in.is_inline) {
          if (in.length > 0) copy_bytes(in.dest, in.inline_data + in.offset, in.length);
          release_main(in.peer);
          in.done = true;
          continue;
        }
        release_main(in.peer);
      }
      while (in.next < in.end && chunk_ready(in, in.next)) {
        copy_chunk(in, in.next, area_.slot_data(world(in.peer),
                                                area_.slot_of(in.first_chunk + in.next)));
        release_chunk(in, in.next);
        ++in.next;
        progressed = true;
      }
      if (in.next >= in.end) {
        in.done = true;
      } else {
        all_done = false;
      }
    }
    return all_done;
  }

  [[nodiscard]] bool exchange_ready(const Outgoing* out, const std::vector<Incoming>& ins) const {
    if (out != nullptr && out->next < out->chunks && slot_free(out->first + out->next)) {
      return true;
    }
    for (const Incoming& in : ins) {
      if (in.done) continue;
      if (!in.opened ? main_ready(in.peer) : chunk_ready(in, in.next)) return true;
    }
    return false;
  }

  [[nodiscard]] int exchange_lost(const Outgoing* out, const std::vector<Incoming>& ins) const {
    if (out != nullptr && out->next < out->chunks) {
      int w = lost_reader(engine_.slot_readers[area_.slot_of(out->first + out->next)]);
      if (w >= 0) return w;
    }
    for (const Incoming& in : ins) {
      if (!in.done && !segment_.alive(world(in.peer))) return world(in.peer);
    }
    return -1;
  }

  /// The progress loop of the copying collectives: publishes `out` (if any) and copies every
  /// incoming part, in whatever order data arrives.
  void exchange(Outgoing* out, std::vector<Incoming>& ins, const Descriptor& expect) {
    if (out != nullptr) start(*out);
    exchange_started(out, ins, expect);
  }

  /// exchange() of an `out` whose chunks are already numbered (out->first, out->next, and
  /// out->chunks set, its main line published) and of opened `ins`.
  void exchange_started(Outgoing* out, std::vector<Incoming>& ins, const Descriptor& expect) {
    for (;;) {
      bool progressed = false;
      if (exchange_step(out, ins, expect, progressed)) return;
      if (progressed) continue;
      wait([&] { return exchange_ready(out, ins); }, [&] { return exchange_lost(out, ins); });
    }
  }

 private:
  detail::CommunicatorImpl& comm_;
  Engine& engine_;
  const transport::CollectiveArea& area_;
  const transport::Segment& segment_;
  Kind kind_;
  std::uint32_t seq_;
  std::uint64_t token_;
  std::size_t main_;  // which of the ranks' main lines this call uses
  int me_;
  int n_;
  // Whether publish_main() and release_main() fetch, kPrefetchCalls calls ahead, the lines they
  // will write (transport/prefetch.hpp): in rooted collectives on ranks with a core each. There
  // a stream of calls pipelines (a broadcast root or the members of a reduce or gather run calls
  // ahead of the others), and each call's write to a line its peer touched last waits for the
  // line's transfer; fetched early, the transfers overlap the calls in between. Two-core Xeon
  // guest, np=2, back to back (us a call, without -> with): 8-byte broadcast 0.076-0.081 ->
  // 0.043-0.051 in every alternation; reduce 0.107-0.114 -> 0.087-0.105 in eight alternations
  // an hour later (0.057-0.065 in the first ones); gather neutral in the same eight
  // (0.108-0.117 -> 0.099-0.132; 0.054-0.079 in the first ones): the gain of the members'
  // run-ahead calls depends on the two ranks' relative timing, which the host moves.
  // In barrier and allreduce every call waits for every rank, nothing pipelines, and the same
  // prefetches only added traffic at the moment a rank reads its peer's publication (np=2
  // barrier 0.23 -> 0.27 us). Oversubscribed (np=4, 8 on 2 cores) the peers are not running
  // while this rank is; the figures there were within their noise either way, so it stays off.
  // Distance: 1 call ahead on either side was slower than none (0.10-0.13 us: the prefetch then
  // races the peer's own access of the line), 2 the best, 4 slightly worse (0.047-0.054).
  bool prefetch_;
  static constexpr std::size_t kPrefetchCalls = 2;
  std::vector<int> scratch_readers_;
};

[[noreturn, gnu::noinline, gnu::cold]] void bad_root(const Call& call, int root) {
  throw InvalidArgument(fmt::format("{}: root {} is not a rank of this communicator (size {})",
                                    call.where(), root, call.n()));
}

inline void check_root(const Call& call, int root) {
  if (root < 0 || root >= call.n()) [[unlikely]] bad_root(call, root);
}

// Scratch storage of the blocking collectives, reused from call to call (no allocation on the
// small-message path). Only blocking code uses these: the non-blocking operations, which run
// inside blocking waits, keep their own storage, so nothing here is reused while in use.
template <class T, int kWhich = 0>
std::vector<T>& scratch() {
  thread_local std::vector<T> v;
  v.clear();
  return v;
}

Outgoing& scratch_outgoing() {
  thread_local Outgoing o;
  o.data = nullptr;
  o.d = Descriptor{};
  o.main_readers.clear();
  o.ranges.clear();
  o.head = 0;
  o.head_bytes = std::numeric_limits<std::uint64_t>::max();
  o.tail = 0;
  o.max_chunk = 0;
  o.ring_start = RingStart::next;
  o.is_inline = false;
  o.first = 0;
  o.chunk_bytes = 0;
  o.next = 0;
  o.chunks = 0;
  return o;
}

/// Every rank but this one, in a reused vector (blocking code only, see scratch()).
const std::vector<int>& peers_of(const Call& call) {
  auto& v = scratch<int, 1>();
  for (int r = 0; r < call.n(); ++r) {
    if (r != call.me()) v.push_back(r);
  }
  return v;
}

std::vector<int> others(const Call& call) {
  std::vector<int> v;
  for (int r = 0; r < call.n(); ++r) {
    if (r != call.me()) v.push_back(r);
  }
  return v;
}

Incoming incoming(int peer, std::uint64_t offset, std::uint64_t length, void* dest,
                  std::uint64_t expect_total) {
  Incoming in;
  in.peer = peer;
  in.offset = offset;
  in.length = length;
  in.dest = static_cast<std::byte*>(dest);
  in.expect_total = expect_total;
  return in;
}

// ---- broadcast --------------------------------------------------------------------------------

/// Two-rank broadcasts at least this large copy across address spaces (broadcast_pair). Below
/// it, one staging chunk costs less than the extra hand-offs (np=2 on the 2-core host, nothing
/// else running: at 16 KiB the staged broadcast takes 1.0-1.1 us and a bare split copy, before
/// any protocol, 1.2-1.3 us; at 32 KiB 5.4-5.7 us staged against 2.3-2.6 us for broadcast_pair).
inline constexpr std::uint64_t kPairCopyMinBytes = 32 * 1024;

/// What each rank of a two-rank broadcast or allreduce that copies across address spaces
/// publishes in its main line's inline bytes.
struct PairInfo {
  std::int32_t pid = 0;
  std::uint32_t copy = 0;    // root: offers to copy across address spaces; reader: accepts
                             // (allreduce: offers)
  std::uint64_t address = 0;  // its buffer (allreduce: its input)
  std::uint64_t out = 0;      // allreduce: its output
};
static_assert(sizeof(PairInfo) <= kCollectiveInlineBytes);

// Step words (Call::set_step) once a rank's half is done: bit 0 set when its copy succeeded.
// The root's also says what it staged: kStagedLow [0, split), kStagedHigh [split, bytes).
constexpr std::uint32_t kCopied = 1;
constexpr std::uint32_t kRefused = 2;
constexpr std::uint32_t kStagedLow = 4;
constexpr std::uint32_t kStagedHigh = 8;

/// This rank's PairInfo: its pid, whether it offers cross-memory copies, `buffer` (and `out`).
PairInfo offer(Engine& engine, const void* buffer, const void* out = nullptr) {
  return PairInfo{static_cast<std::int32_t>(engine.pid()), engine.cross_memory().on() ? 1u : 0u,
                  reinterpret_cast<std::uintptr_t>(buffer), reinterpret_cast<std::uintptr_t>(out)};
}

PairInfo read_pair_info(const transport::CollectiveMain& m) {
  PairInfo p;
  std::memcpy(&p, m.inline_data, sizeof p);
  return p;
}

/// A PairInfo address (in the peer's address space) plus `offset`, for the cross-memory copy.
std::byte* remote(std::uint64_t address, std::uint64_t offset) {
  return reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(address)) + offset;
}

/// Limits a two-rank staged publication `o` (chunk size and first chunk set) to bytes
/// [lo, lo + len) of its stream: what a refused copy across address spaces left out.
void stage_range(Outgoing& o, std::uint64_t lo, std::uint64_t len) {
  o.ranges.assign(2, {lo, len});
  o.next = lo / o.chunk_bytes;
  o.chunks = (lo + len + o.chunk_bytes - 1) / o.chunk_bytes;
}

/// A broadcast between two ranks of `bytes` >= kPairCopyMinBytes: both ranks copy, each half of
/// the payload, straight between the two buffers, at the same time: the reader reads [0, split)
/// from the root's buffer, the root writes [split, bytes) into the reader's (process_vm_readv /
/// process_vm_writev). One copy of each byte instead of two (into staging and out of it), on
/// both cores at once. Protocol (main lines of this call; step words, Call::set_step):
///   root:   publishes PairInfo{pid, offer, &data} and the chunk numbers of a staged stream
///           (used only for what a refused copy leaves out); reads the reader's PairInfo; if it
///           accepted, writes its half, waits for the reader's step, and sets its own step to
///           say which halves it stages; if not, stages everything. Returns once the reader
///           released its line (the reader no longer reads `data`).
///   reader: reads the root's PairInfo; publishes PairInfo{pid, accept, &data}; if it accepted,
///           reads its half, sets its step, waits for the root's; reads the staged chunks,
///           releases the root's line.
/// A copy the kernel refuses (seccomp, Yama, a non-dumpable rank) turns the rank's offer off
/// for good (transport::CrossMemoryCopier) and its half goes through the staging chunks in that call; the
/// ranks agree through the step words, so nothing is lost or read twice.
void broadcast_pair(Call& call, std::byte* data, std::uint64_t bytes, const Descriptor& d) {
  Engine& engine = call.engine();
  const int peer = 1 - call.me();
  const int peer_world = call.world(peer);
  const std::uint64_t split = (bytes / 2) & ~std::uint64_t{4095};  // page-aligned halves
  PairInfo mine = offer(engine, data);
  const int readers[] = {peer};
  if (call.me() == d.root) {
    Outgoing& out = scratch_outgoing();
    out.data = data;
    out.d = d;
    call.number_chunks(out);
    call.publish_main(d, &mine, sizeof mine, readers, out.first, out.chunk_bytes, kFlagPair);
    const transport::CollectiveMain& m = call.wait_main(peer);
    Incoming theirs_in = incoming(peer, 0, 0, nullptr, bytes);
    theirs_in.pair = true;
    call.open(theirs_in, d, m);
    const PairInfo theirs = read_pair_info(m);
    std::uint32_t staged = kStagedLow | kStagedHigh;
    if (theirs.copy != 0) {
      const bool wrote = call.crossed(
          engine.cross_memory().copy(true, peer_world, theirs.pid, remote(theirs.address, split),
                                     data + split, bytes - split),
          peer);
      const bool read = (call.wait_step(peer) & kCopied) != 0;
      staged = (read ? 0 : kStagedLow) | (wrote ? 0 : kStagedHigh);
      if (staged == 0) engine.count_cross_memory_call();
      call.set_step((wrote ? kCopied : kRefused) | staged, peer);
    }
    call.release_main(peer, m);
    // Stage what the copies left out: [lo, hi) of the payload, chunk by chunk.
    const std::uint64_t lo = (staged & kStagedLow) != 0 ? 0 : split;
    const std::uint64_t hi = (staged & kStagedHigh) != 0 ? bytes : split;
    if (lo < hi) {
      stage_range(out, lo, hi - lo);
      while (out.next < out.chunks) call.write_next_blocking(out);
    }
    call.wait_main_free();  // the reader is done with `data` (and the staged chunks)
    return;
  }
  const transport::CollectiveMain& m = call.wait_main(peer);
  Incoming in = incoming(peer, 0, bytes, data, bytes);
  in.pair = true;
  call.open(in, d, m);
  const PairInfo theirs = read_pair_info(m);
  // (The distance between the buffers that makes glibc's memcpy slow, cohort/detail/copy.hpp,
  // does not make the kernel's copy slow here: 1 MiB read from 16 bytes past the page offset
  // took 1.1-1.3x the time at the same offset, against ~15x for `rep movsb` in user space.)
  mine.copy = theirs.copy != 0 && mine.copy != 0 ? 1u : 0u;
  call.publish_main(d, &mine, sizeof mine, readers, 0, 0, kFlagPair);
  std::uint32_t staged = kStagedLow | kStagedHigh;
  if (mine.copy != 0) {
    const bool read = call.crossed(
        engine.cross_memory().copy(false, peer_world, theirs.pid, remote(theirs.address, 0), data,
                                   split),
        peer);
    call.set_step(read ? kCopied : kRefused, peer);
    staged = call.wait_step(peer) & (kStagedLow | kStagedHigh);
    if (staged == 0) engine.count_cross_memory_call();
  }
  const std::uint64_t lo = (staged & kStagedLow) != 0 ? 0 : split;
  const std::uint64_t hi = (staged & kStagedHigh) != 0 ? bytes : split;
  if (lo < hi) {
    call.open_range(in, lo, hi - lo, data + lo, d, m);
    for (std::uint64_t c = in.next; c < in.end; ++c) {
      call.copy_chunk(in, c, call.wait_chunk(in, c));
      call.release_chunk(in, c);
    }
  }
  call.release_main(peer, m);  // done with the root's buffer and line
}

void broadcast_impl(detail::CommunicatorImpl& comm, void* data, std::size_t bytes, int root,
                    Kind kind) {
  Call call(comm, kind);
  check_root(call, root);
  if (call.n() == 1) return;
  Descriptor d{kind, root, bytes, 1, 0};
  if (bytes <= kCollectiveInlineBytes) {
    // The usual small broadcast: one inline publication that the others copy. What exchange()
    // does for it, without the progress loop's bookkeeping (~630 -> ~300 instructions a call at
    // the root, np=2), and each reader waits for the root only (a targeted wake, see notify()).
    if (call.me() == root) {
      call.publish_inline(d, data, bytes, peers_of(call));
    } else {
      Incoming in = incoming(root, 0, bytes, data, bytes);
      call.read_inline(in, d, [&](const std::byte* p) { copy_bytes(data, p, bytes); });
    }
    return;
  }
  if (call.n() == 2 && bytes >= kPairCopyMinBytes) {
    broadcast_pair(call, static_cast<std::byte*>(data), bytes, d);
    return;
  }
  auto& ins = scratch<Incoming>();
  if (call.me() == root) {
    Outgoing& out = scratch_outgoing();
    out.data = static_cast<const std::byte*>(data);
    out.d = d;
    out.main_readers = peers_of(call);
    out.ranges.assign(static_cast<std::size_t>(call.n()), {0, bytes});
    call.exchange(&out, ins, d);
  } else {
    ins.push_back(incoming(root, 0, bytes, data, bytes));
    call.exchange(nullptr, ins, d);
  }
}

// ---- reductions ---------------------------------------------------------------------------------

void combine(const detail::Combiner& op, void* acc, const void* in, std::uint64_t bytes) {
  if (bytes > 0) op.fn(op.op, acc, in, bytes / op.elem_bytes);
}

/// out = a op b elementwise (`out` overlaps neither a nor b).
void combine_into(const detail::Combiner& op, void* out, const void* a, const void* b,
                  std::uint64_t bytes) {
  if (bytes == 0) return;
  if (op.fn_into != nullptr) {
    op.fn_into(op.op, out, a, b, bytes / op.elem_bytes);
  } else {
    copy_bytes(out, a, bytes);
    op.fn(op.op, out, b, bytes / op.elem_bytes);
  }
}

/// Reduce of up to the inline size (n > 1): what exchange() and the root's generic path do for
/// it, without their bookkeeping. A member publishes its input inline for the root and returns.
/// The root combines in rank order as the publications come: it waits for rank r only when the
/// combination reaches r (a targeted wait: only r's publication wakes it, see notify()), and
/// releases each publication as soon as it is combined. Waiting for the ranks in arrival order
/// instead would save nothing here: the combination needs them in rank order anyway, an 8-byte
/// combine costs less than the bookkeeping of which rank came first, and a member does not wait
/// for the root's release (its next calls use other main lines), so releasing rank r+1 earlier
/// would not let it go on sooner.
void reduce_inline(Call& call, const Descriptor& d, const std::byte* in, std::byte* out,
                   std::size_t bytes, const detail::Combiner& op) {
  const int n = call.n();
  const int me = call.me();
  const int root = d.root;
  if (me != root) {
    call.publish_inline(d, in, bytes, std::span(&root, 1));
    return;
  }
  // The root publishes its descriptor too (read by nobody): a rank that believes another rank
  // is the root reads it and reports the mismatch instead of waiting forever.
  call.publish_main(d, nullptr, 0, {}, 0, 0);
  std::byte acc[kCollectiveInlineBytes];
  Incoming i = incoming(0, 0, bytes, nullptr, bytes);
  for (int r = 0; r < n; ++r) {
    if (r == me) {
      if (r == 0) {
        copy_bytes(acc, in, bytes);
      } else {
        combine(op, acc, in, bytes);
      }
      continue;
    }
    i.peer = r;
    call.read_inline(i, d, [&](const std::byte* p) {
      if (r == 0) {
        copy_bytes(acc, p, bytes);
      } else {
        combine(op, acc, p, bytes);
      }
    });
  }
  copy_bytes(out, acc, bytes);
}

/// Result of combining every rank's `in` in rank order lands in `out` at `root`.
void reduce_impl(detail::CommunicatorImpl& comm, const void* in_v, void* out_v, std::size_t bytes,
                 const detail::Combiner& op, int root, Kind kind) {
  Call call(comm, kind);
  check_root(call, root);
  const auto* in = static_cast<const std::byte*>(in_v);
  auto* out = static_cast<std::byte*>(out_v);
  const int n = call.n();
  const int me = call.me();
  if (n == 1) {
    if (out != in && bytes > 0) copy_bytes(out, in, bytes);
    return;
  }
  Descriptor d{kind, root, bytes, static_cast<std::uint32_t>(op.elem_bytes), op.op_id};
  if (bytes <= kCollectiveInlineBytes) {
    reduce_inline(call, d, in, out, bytes, op);
    return;
  }
  auto& ins = scratch<Incoming>();
  if (me != root) {
    Outgoing& o = scratch_outgoing();
    o.data = in;
    o.d = d;
    o.main_readers.push_back(root);
    o.ranges.assign(static_cast<std::size_t>(n), {0, 0});
    o.ranges[static_cast<std::size_t>(root)] = {0, bytes};
    call.exchange(&o, ins, d);
    return;
  }
  // The root publishes its descriptor too (read by nobody): a rank that believes another rank
  // is the root reads it and reports the mismatch instead of waiting forever.
  call.publish_main(d, nullptr, 0, {}, 0, 0);
  ins.resize(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    if (r == me) continue;
    auto& i = ins[static_cast<std::size_t>(r)];
    i = incoming(r, 0, bytes, nullptr, bytes);
    call.wait_open(i, d);
  }
  for (int r = 0; r < n; ++r) {
    if (r != me) call.release_main(r);
  }
  const std::uint64_t cb = ins[me == 0 ? 1 : 0].chunk_bytes;
  const std::uint64_t chunks = (bytes + cb - 1) / cb;
  std::vector<std::byte> own;  // our own chunk, when `out` aliases `in` and we are not rank 0
  for (std::uint64_t c = 0; c < chunks; ++c) {
    std::uint64_t a = c * cb;
    std::uint64_t len = std::min<std::uint64_t>(cb, bytes - a);
    const std::byte* mine = in + a;
    if (in == out && me != 0) {
      own.assign(mine, mine + len);
      mine = own.data();
    }
    std::byte* acc = out + a;
    // acc = x0 op x1 in one pass (combine_into) rather than a copy of x0 and a combine.
    const std::byte* first = me == 0 ? mine : call.wait_chunk(ins[0], c);
    const std::byte* second = me == 1 ? mine : call.wait_chunk(ins[1], c);
    if (first == acc) {  // in == out at rank 0
      combine(op, acc, second, len);
    } else {
      combine_into(op, acc, first, second, len);
    }
    if (me != 0) call.release_chunk(ins[0], c);
    if (me != 1) call.release_chunk(ins[1], c);
    for (int r = 2; r < n; ++r) {
      if (r == me) {
        combine(op, acc, mine, len);
      } else {
        auto& i = ins[static_cast<std::size_t>(r)];
        combine(op, acc, call.wait_chunk(i, c), len);
        call.release_chunk(i, c);
      }
    }
  }
}

/// Large allreduce, 2 ranks: each rank publishes its input chunk by chunk (as many chunks ahead
/// as its slots allow) and combines the peer's staged chunk with its own input straight into its
/// output. Both ranks compute x0 op x1 (rank 0's operand first), so both get the same bits; each
/// rank reads the peer's data once and nothing has to travel back.
void allreduce_pair(Call& call, std::vector<Incoming>& ins, const std::byte* in, std::byte* out,
                    std::size_t bytes, const detail::Combiner& op, std::uint64_t first,
                    std::uint64_t cb, const std::vector<int>& peers) {
  Engine& engine = call.comm().runtime().collectives();
  const transport::CollectiveArea& area = engine.area();
  const int me = call.me();
  const std::uint64_t chunks = (bytes + cb - 1) / cb;
  const std::uint64_t slots = area.slots();
  Incoming& theirs = ins[static_cast<std::size_t>(1 - me)];
  std::uint64_t published = 0;
  for (std::uint64_t c = 0; c < chunks; ++c) {
    // Publish chunk c (waiting for its slot if need be) and whatever further chunks have a free
    // slot, but never chunk c + slots: it would overwrite chunk c, which rank 1 may still read
    // (its own operand, when it reduces in place).
    while (published < chunks && published < c + slots &&
           (published == c || call.slot_free(first + published))) {
      call.wait_slot_free(first + published);
      const std::uint64_t a = published * cb;
      const auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(cb, bytes - a));
      call.write_chunk(first + published, in + a, len, peers);
      ++published;
    }
    const std::uint64_t a = c * cb;
    const std::uint64_t len = std::min<std::uint64_t>(cb, bytes - a);
    std::byte* acc = out + a;
    const std::byte* peer_chunk = call.wait_chunk(theirs, c);
    if (me == 0) {
      if (acc == in + a) {
        combine(op, acc, peer_chunk, len);
      } else {
        combine_into(op, acc, in + a, peer_chunk, len);
      }
    } else {
      // Our operand: the input, or (in place: `acc` is the input) our staged copy of it.
      const std::byte* mine = acc == in + a ? area.slot_data(engine.self(), area.slot_of(first + c))
                                            : in + a;
      combine_into(op, acc, peer_chunk, mine, len);
    }
    call.release_chunk(theirs, c);
  }
}

/// Two-rank allreduces at least this large copy across address spaces (allreduce_pair_copy).
/// np=2 floats, 4 alternations, us a call (staged through chunks -> copied): 8 KiB 1.9-2.0 ->
/// 2.8-3.0, 16 KiB 3.0-3.1 -> 3.1-4.3, 32 KiB 4.46-4.83 -> 4.14-4.70, 64 KiB 8.3-9.2 -> 5.6-6.2.
inline constexpr std::uint64_t kPairReduceMinBytes = 32 * 1024;
/// The scratch buffer of allreduce_pair_copy (half the payload) is kept from call to call up to
/// this size (allreduces of up to 32 MiB), so repeated calls neither allocate nor fault it in;
/// a larger one is freed when its call ends.
inline constexpr std::uint64_t kPairScratchKeepBytes = 16ull << 20;

// allreduce_pair_copy's step words (Call::set_step): one bit for each phase a rank has finished
// and one for each copy's outcome. Bits are only added, so a rank's step word only grows, and a
// rank that has gone on to a later phase still shows the earlier outcome to its peer.
constexpr std::uint32_t kInputCopied = 1;
constexpr std::uint32_t kResultCopied = 2;
constexpr std::uint32_t kInputRead = 16;
constexpr std::uint32_t kResultWritten = 64;

/// Large allreduce, 2 ranks, both offering to copy across address spaces (as Open MPI and
/// MPICH copy their large messages; transport::CrossMemoryCopier): rank 0 computes segment
/// [0, split) of the result and rank 1 segment [split, bytes), each as x0 op x1 (rank 0's
/// operand first, so both ranks get the same bits, as on every other path). Each rank
///   A. reads the peer's input over its own segment straight out of the peer's buffer into a
///      scratch buffer (process_vm_readv); both say how that went (step kInputRead) and wait
///      for each other: nothing is written into an output before both inputs are read;
///   B. combines it with its own input into its output's segment;
///   C. writes that segment straight into the peer's output (process_vm_writev); both say so
///      (kResultWritten), and each returns once the other's segment is in its output.
/// Half the combining of allreduce_pair per rank, no staging copy, and each byte crosses between
/// the cores once each way. In place (in == out) works: each rank's output segment is only
/// written after the peer read that part of its input, and the part the peer writes is one
/// this rank no longer reads. A copy the kernel refuses turns the rank's offer off for good
/// (transport::CrossMemoryCopier): a refused input read sends both ranks through allreduce_pair
/// (nothing has been written yet: see the return value); a refused write stages the segment
/// through the staging chunks in the same call. `theirs_in` is the peer's opened publication
/// `m`, not released: the step words are in it.
/// Why writes in C, not reads of the peer's result: a read took one hand-off more and left the
/// reader's copy of the lines in the peer's output, which the peer's next combine then had to
/// take back line by line (np=2, same run: 64 KiB 15.96 against 5.67 us, 1 MiB 145.6 against
/// 104.9 us).
/// Returns false, having written nothing and released nothing, when an input read was refused:
/// the caller then runs allreduce_pair.
bool allreduce_pair_copy(Call& call, Incoming& theirs_in, const transport::CollectiveMain& m,
                         const std::byte* in, std::byte* out, std::size_t bytes,
                         const detail::Combiner& op, const Descriptor& d, std::uint64_t first,
                         std::uint64_t cb) {
  Engine& engine = call.engine();
  const int me = call.me();
  const int peer = 1 - me;
  const int peer_world = call.world(peer);
  const PairInfo theirs = read_pair_info(m);
  const std::uint64_t split = bytes / 2 / op.elem_bytes * op.elem_bytes;
  const std::uint64_t lo = me == 0 ? 0 : split;                   // this rank's segment
  const std::uint64_t len = me == 0 ? split : bytes - split;
  const std::uint64_t peer_lo = me == 0 ? split : 0;              // the peer's
  const std::uint64_t peer_len = bytes - len;
  // A: the peer's input over this rank's segment.
  std::vector<std::byte>& theirs_part = engine.pair_scratch;
  if (theirs_part.size() < len) theirs_part.resize(len);
  struct Trim {  // a scratch buffer above kPairScratchKeepBytes is not kept past the call
    std::vector<std::byte>& v;
    ~Trim() {
      if (v.size() > kPairScratchKeepBytes) std::vector<std::byte>().swap(v);
    }
  } trim{theirs_part};
  const bool read_input = call.crossed(
      engine.cross_memory().copy(false, peer_world, theirs.pid, remote(theirs.address, lo),
                                 theirs_part.data(), len),
      peer);
  std::uint32_t said = kInputRead | (read_input ? kInputCopied : 0);
  call.set_step(said, peer);
  const bool peer_read_input = (call.wait_step(peer, kInputRead) & kInputCopied) != 0;
  if (!read_input || !peer_read_input) return false;  // outputs untouched, inputs intact
  // B: this rank's segment of x0 op x1.
  std::byte* seg = out + lo;
  const std::byte* x0 = me == 0 ? in + lo : theirs_part.data();
  const std::byte* x1 = me == 0 ? theirs_part.data() : in + lo;
  if (seg != in + lo) {
    combine_into(op, seg, x0, x1, len);
  } else if (me == 0) {
    combine(op, seg, x1, len);  // in place: seg holds x0
  } else {
    combine(op, theirs_part.data(), seg, len);  // in place: seg holds x1
    copy_bytes(seg, theirs_part.data(), len);
  }
  // C: this rank's segment of the result into the peer's output.
  const bool wrote = call.crossed(
      engine.cross_memory().copy(true, peer_world, theirs.pid, remote(theirs.out, lo), seg, len),
      peer);
  said |= kResultWritten | (wrote ? kResultCopied : 0);
  call.set_step(said, peer);
  const bool peer_wrote = (call.wait_step(peer, kResultWritten) & kResultCopied) != 0;
  if (wrote && peer_wrote) {
    engine.count_cross_memory_call();
  } else {
    // What a refused write left out goes through the staging chunks, both ways at once if need
    // be (a progress loop: neither rank blocks on a full ring while holding the other).
    Outgoing* o = nullptr;
    if (!wrote) {
      o = &scratch_outgoing();
      o->data = out;
      o->d = d;
      o->chunk_bytes = static_cast<std::uint32_t>(cb);
      o->first = first;
      stage_range(*o, lo, len);
    }
    std::vector<Incoming> ins;
    if (!peer_wrote) {
      call.open_range(theirs_in, peer_lo, peer_len, out + peer_lo, d, m);
      ins.push_back(theirs_in);
    }
    call.exchange_started(o, ins, d);
  }
  call.release_main(peer, m);
  return true;
}

/// Large allreduce, 3 ranks or more: every rank publishes its input chunk by chunk; for each
/// chunk, rank r combines segment r of the chunk (in rank order, reading every rank's slot) and
/// writes the result over segment r of its own slot (nobody else reads that part of its input);
/// then every rank copies the other segments' results. Each element is combined by one rank in
/// rank order, so every rank gets the same bits; the work and the memory traffic are spread over
/// all ranks.
///
/// Software-pipelined: step k publishes chunk k (and further chunks while slots are free),
/// combines chunk k, and copies the results of chunk k - lag. A rank waits only for what its
/// peers do in earlier steps (publishing chunk k needs every peer's copy of chunk k - slots,
/// done in its step k - slots + lag < k), so any lag < slots is deadlock-free; a lag of
/// slots - 1 lets a rank run through a whole ring's worth of chunks between the three points
/// where it must wait for everyone (their inputs, their results), which matters when ranks
/// outnumber cpus and each wait may cost a context switch.
void allreduce_segments(Call& call, std::vector<Incoming>& ins, const std::byte* in,
                        std::byte* out, std::size_t bytes, const detail::Combiner& op,
                        std::uint64_t first, std::uint64_t cb, const std::vector<int>& peers) {
  Engine& engine = call.comm().runtime().collectives();
  const transport::CollectiveArea& area = engine.area();
  const transport::Segment& segment = engine.segment();
  const int n = call.n();
  const int me = call.me();
  const int self = engine.self();
  const std::uint64_t elem = op.elem_bytes;
  const std::uint64_t chunks = (bytes + cb - 1) / cb;
  const std::uint64_t lag = area.slots() - 1;
  std::vector<int> peer_world;
  for (int r : peers) peer_world.push_back(call.world(r));
  auto segment_of = [&](int r, std::uint64_t elems) {
    return std::pair<std::uint64_t, std::uint64_t>{
        elems * static_cast<std::uint64_t>(r) / static_cast<std::uint64_t>(n) * elem,
        elems * static_cast<std::uint64_t>(r + 1) / static_cast<std::uint64_t>(n) * elem};
  };
  auto length = [&](std::uint64_t c) { return std::min<std::uint64_t>(cb, bytes - c * cb); };
  // Publishes the input chunk c (read twice by every peer: a segment, then a result).
  auto publish = [&](std::uint64_t c) {
    const std::uint64_t g = first + c;
    const std::size_t s = area.slot_of(g);
    const std::uint64_t len = length(c);
    copy_bytes(area.slot_data(self, s), in + c * cb, len);
    auto& h = area.slot(self, s);
    h.bytes = static_cast<std::uint32_t>(len);
    h.releases = static_cast<std::uint32_t>(2 * peers.size());
    engine.slot_expected[s] += 2 * peers.size();
    h.wake_at = engine.slot_expected[s];
    h.chunk.store(g + 1, std::memory_order_seq_cst);
    engine.slot_readers[s] = peer_world;
    for (int w : peer_world) {
      engine.announced[static_cast<std::size_t>(w)] += 2;
      call.notify(w);
    }
  };
  // Combines this rank's segment of chunk c in rank order, publishes it over the slot's segment.
  auto reduce_segment = [&](std::uint64_t c) {
    const std::uint64_t g = first + c;
    const std::size_t s = area.slot_of(g);
    const std::uint64_t len = length(c);
    std::byte* slot = area.slot_data(self, s);
    auto [lo, hi] = segment_of(me, len / elem);
    std::byte* acc = out + c * cb + lo;
    auto source = [&](int r) {
      return r == me ? slot : call.wait_chunk(ins[static_cast<std::size_t>(r)], c);
    };
    auto done = [&](int r) {
      if (r != me) call.release_chunk(ins[static_cast<std::size_t>(r)], c);
    };
    const std::byte* x0 = source(0);
    combine_into(op, acc, x0 + lo, source(1) + lo, hi - lo);  // acc = x0 op x1 in one pass
    done(0);
    done(1);
    for (int r = 2; r < n; ++r) {
      combine(op, acc, source(r) + lo, hi - lo);
      done(r);
    }
    copy_bytes(slot + lo, acc, hi - lo);
    area.slot(self, s).result.store(g + 1, std::memory_order_seq_cst);
    for (int w : peer_world) call.notify(w);
  };
  // Copies the other segments' results of chunk c.
  auto gather_results = [&](std::uint64_t c) {
    const std::uint64_t len = length(c);
    for (int r : peers) {
      auto& i = ins[static_cast<std::size_t>(r)];
      const std::uint64_t gr = i.first_chunk + c;
      const int w = call.world(r);
      auto& rh = area.slot(w, area.slot_of(gr));
      if (rh.result.load(std::memory_order_acquire) != gr + 1) {
        call.wait([&] { return rh.result.load(std::memory_order_acquire) == gr + 1; },
                  [&] { return segment.alive(w) ? -1 : w; });
      }
      auto [rlo, rhi] = segment_of(r, len / elem);
      copy_bytes(out + c * cb + rlo, area.slot_data(w, area.slot_of(gr)) + rlo, rhi - rlo);
      call.release_chunk(i, c);
    }
  };
  std::uint64_t published = 0;
  for (std::uint64_t k = 0; k < chunks + lag; ++k) {
    if (k < chunks) {
      while (published < chunks && (published == k || call.slot_free(first + published))) {
        call.wait_slot_free(first + published);
        publish(published++);
      }
      reduce_segment(k);
    }
    if (k >= lag) gather_results(k - lag);
  }
}

void allreduce_large(detail::CommunicatorImpl& comm, const std::byte* in, std::byte* out,
                     std::size_t bytes, const detail::Combiner& op, Kind kind) {
  Call call(comm, kind);
  Engine& engine = comm.runtime().collectives();
  const int n = call.n();
  const auto elem = static_cast<std::uint32_t>(op.elem_bytes);
  Descriptor d{kind, -1, bytes, elem, op.op_id};
  const std::uint64_t cb = call.chunk_size(elem);
  const std::uint64_t chunks = (bytes + cb - 1) / cb;
  const std::uint64_t first = call.take_chunks(chunks, RingStart::restart_when_free);
  std::vector<int> peers = others(call);
  if (n == 2 && bytes >= kPairReduceMinBytes) {
    // Both ranks take this branch (the same bytes on both, or open() reports the mismatch).
    // Rank 0 decides whether this call copies (PairModes) and times it; rank 1 offers whenever
    // it can, so rank 0 knows whether it had the choice.
    const int peer = 1 - call.me();
    const bool decides = call.me() == 0;
    PairModes& modes = engine.pair_modes();
    PairInfo mine = offer(engine, in, out);
    const bool can_copy = mine.copy != 0;
    if (decides && can_copy && modes.staged(bytes)) mine.copy = 0;
    const std::uint64_t started = decides ? transport::trace_clock_ns() : 0;
    call.publish_main(d, &mine, sizeof mine, peers, first, static_cast<std::uint32_t>(cb),
                      kFlagPair);
    const transport::CollectiveMain& m = call.wait_main(peer);
    Incoming theirs = incoming(peer, 0, bytes, nullptr, bytes);
    theirs.pair = true;
    call.open(theirs, d, m);
    const bool peer_can_copy = read_pair_info(m).copy != 0;
    if (mine.copy != 0 && peer_can_copy &&
        allreduce_pair_copy(call, theirs, m, in, out, bytes, op, d, first, cb)) {
      if (decides) modes.record(bytes, false, transport::trace_clock_ns() - started);
      return;
    }
    // Not both offer, or a read was refused (nothing written): through the staging chunks.
    std::vector<Incoming> ins(2);
    ins[static_cast<std::size_t>(peer)] = theirs;
    call.release_main(peer, m);
    allreduce_pair(call, ins, in, out, bytes, op, first, cb, peers);
    if (decides && can_copy && mine.copy == 0 && peer_can_copy) {  // staged by choice
      modes.record(bytes, true, transport::trace_clock_ns() - started);
    }
    return;
  }
  call.publish_main(d, nullptr, 0, peers, first, static_cast<std::uint32_t>(cb));
  std::vector<Incoming> ins(static_cast<std::size_t>(n));
  for (int r : peers) {
    auto& i = ins[static_cast<std::size_t>(r)];
    i = incoming(r, 0, bytes, nullptr, bytes);
    call.wait_open(i, d);
    call.release_main(r);
  }
  if (n == 2) {
    allreduce_pair(call, ins, in, out, bytes, op, first, cb, peers);
  } else {
    allreduce_segments(call, ins, in, out, bytes, op, first, cb, peers);
  }
}

/// Flat (everyone reads everyone: one hop) up to 8 ranks, oversubscribed or not; gather-release
/// through rank 0 above (two hops, but O(n) cache-line transfers and wake-ups instead of O(n^2)).
/// Under oversubscription flat used to lose because its waiting ranks slept and each publisher
/// woke up to n-1 of them; with the short-spin-then-yield policy (transport/waiter.hpp) they
/// rarely sleep in a collective, and flat needs one scheduling round of every rank, not two
/// (np=4 on 2 cores, same run: barrier 8.4 vs 35.9 us, 8 B allreduce 7.8 vs 38.2 us).
bool use_flat(const Call& call) { return call.n() <= 8; }

/// Gather-release through rank 0 for barrier (op == nullptr, bytes 0) and small allreduce:
/// members publish their contribution for rank 0; rank 0 combines in rank order and publishes
/// the result (the release) once for everyone.
void gather_release(Call& call, const Descriptor& d, const std::byte* in, std::byte* out,
                    std::size_t bytes, const detail::Combiner* op) {
  const int n = call.n();
  if (call.me() != 0) {
    static constexpr int kRank0 = 0;
    call.publish_inline(d, in, bytes, std::span(&kRank0, 1));
    Incoming release = incoming(0, 0, bytes, out, bytes);
    if (!call.main_ready(0)) {
      // The release depends on every member's arrival: any lost member makes it impossible.
      const auto& seg = call.comm().runtime().segment();
      call.wait([&] { return call.main_ready(0); },
                [&] {
                  for (int r = 0; r < n; ++r) {
                    if (!seg.alive(call.world(r))) return call.world(r);
                  }
                  return -1;
                });
    }
    call.open(release, d);
    if (bytes > 0) copy_bytes(out, release.inline_data, bytes);
    call.release_main(0);
    return;
  }
  auto& ins = scratch<Incoming>();
  ins.resize(static_cast<std::size_t>(n));
  std::byte acc[kCollectiveInlineBytes];
  copy_bytes(acc, in, bytes);
  try {
    for (int r = 1; r < n; ++r) {
      auto& i = ins[static_cast<std::size_t>(r)];
      i = incoming(r, 0, bytes, nullptr, bytes);
      call.wait_open(i, d);
      if (op != nullptr) combine(*op, acc, i.inline_data, bytes);
      call.release_main(r);
    }
  } catch (const CollectiveMismatch&) {
    // Tell the members, who would otherwise wait for a release that never comes.
    call.publish_inline(d, acc, bytes, peers_of(call), kFlagError);
    throw;
  }
  call.publish_inline(d, acc, bytes, peers_of(call));
  copy_bytes(out, acc, bytes);
}

void allreduce_impl(detail::CommunicatorImpl& comm, const void* in_v, void* out_v,
                    std::size_t bytes, const detail::Combiner& op, Kind kind) {
  const auto* in = static_cast<const std::byte*>(in_v);
  auto* out = static_cast<std::byte*>(out_v);
  if (bytes > kCollectiveInlineBytes && comm.size() > 1) {
    allreduce_large(comm, in, out, bytes, op, kind);
    return;
  }
  Call call(comm, kind);
  const int n = call.n();
  const int me = call.me();
  if (n == 1) {
    if (out != in && bytes > 0) copy_bytes(out, in, bytes);
    return;
  }
  Descriptor d{kind, -1, bytes, static_cast<std::uint32_t>(op.elem_bytes), op.op_id};
  if (!use_flat(call)) {
    gather_release(call, d, in, out, bytes, &op);
    return;
  }
  call.publish_inline(d, in, bytes, peers_of(call));
  auto& ins = scratch<Incoming>();
  ins.resize(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    if (r == me) continue;
    auto& i = ins[static_cast<std::size_t>(r)];
    i = incoming(r, 0, bytes, nullptr, bytes);
    call.wait_open(i, d);
  }
  std::byte acc[kCollectiveInlineBytes];
  auto src = [&](int r) { return r == me ? in : ins[static_cast<std::size_t>(r)].inline_data; };
  if (bytes > 0) copy_bytes(acc, src(0), bytes);
  for (int r = 1; r < n; ++r) combine(op, acc, src(r), bytes);
  for (int r = 0; r < n; ++r) {
    if (r != me) call.release_main(r);
  }
  if (bytes > 0) copy_bytes(out, acc, bytes);
}

void scan_impl(detail::CommunicatorImpl& comm, const void* in_v, void* out_v, std::size_t bytes,
               const detail::Combiner& op, bool exclusive) {
  Kind kind = exclusive ? Kind::exscan : Kind::scan;
  Call call(comm, kind);
  const auto* in = static_cast<const std::byte*>(in_v);
  auto* out = static_cast<std::byte*>(out_v);
  const int n = call.n();
  const int me = call.me();
  Descriptor d{kind, -1, bytes, static_cast<std::uint32_t>(op.elem_bytes), op.op_id};
  std::vector<int> readers;
  for (int r = me + 1; r < n; ++r) readers.push_back(r);
  Outgoing o;
  o.data = in;
  o.d = d;
  o.main_readers = readers;
  o.ranges.assign(static_cast<std::size_t>(n), {0, 0});
  for (int r : readers) o.ranges[static_cast<std::size_t>(r)] = {0, bytes};
  if (!readers.empty()) call.start(o);
  std::vector<Incoming> ins(static_cast<std::size_t>(me));
  for (int r = 0; r < me; ++r) {
    ins[static_cast<std::size_t>(r)] = incoming(r, 0, bytes, nullptr, bytes);
    call.wait_open(ins[static_cast<std::size_t>(r)], d);
  }
  const int last = exclusive ? me - 1 : me;  // combine ranks 0..last
  if (bytes <= kCollectiveInlineBytes) {
    if (last >= 0) {
      std::byte acc[kCollectiveInlineBytes];
      auto src = [&](int r) { return r == me ? in : ins[static_cast<std::size_t>(r)].inline_data; };
      if (bytes > 0) copy_bytes(acc, src(0), bytes);
      for (int r = 1; r <= last; ++r) combine(op, acc, src(r), bytes);
      if (bytes > 0) copy_bytes(out, acc, bytes);
    }
    for (int r = 0; r < me; ++r) call.release_main(r);
    return;
  }
  for (int r = 0; r < me; ++r) call.release_main(r);
  const std::uint64_t cb = call.chunk_size(static_cast<std::uint32_t>(op.elem_bytes));
  const std::uint64_t chunks = (bytes + cb - 1) / cb;
  std::vector<std::byte> own;
  for (std::uint64_t c = 0; c < chunks; ++c) {
    if (!readers.empty()) call.write_next_blocking(o);  // publish chunk c before overwriting it
    if (last < 0) continue;
    std::uint64_t a = c * cb;
    std::uint64_t len = std::min<std::uint64_t>(cb, bytes - a);
    const std::byte* mine = in + a;
    if (in == out && me != 0 && !exclusive) {
      own.assign(mine, mine + len);
      mine = own.data();
    }
    std::byte* acc = out + a;
    const std::byte* first = me == 0 ? mine : call.wait_chunk(ins[0], c);
    if (first != acc) copy_bytes(acc, first, len);
    if (me != 0) call.release_chunk(ins[0], c);
    for (int r = 1; r <= last; ++r) {
      if (r == me) {
        combine(op, acc, mine, len);
      } else {
        auto& i = ins[static_cast<std::size_t>(r)];
        combine(op, acc, call.wait_chunk(i, c), len);
        call.release_chunk(i, c);
      }
    }
    for (int r = last + 1; r < me; ++r) call.release_chunk(ins[static_cast<std::size_t>(r)], c);
  }
}

// ---- gathering and scattering ------------------------------------------------------------------

std::vector<std::uint64_t> prefix(const std::vector<std::uint64_t>& counts) {
  std::vector<std::uint64_t> p(counts.size() + 1, 0);
  for (std::size_t i = 0; i < counts.size(); ++i) p[i + 1] = p[i] + counts[i];
  return p;
}

void allgather_impl(detail::CommunicatorImpl& comm, const void* in, std::size_t bytes, void* out_v,
                    const std::size_t* counts, Kind kind);

// ---- non-blocking collectives --------------------------------------------------------------

/// Common part: completion, the stored error, and a blocking wait that advances every pending
/// operation of this rank.
class NonBlocking : public PendingOp {
 public:
  bool progress() final {
    if (done_) return true;
    try {
      done_ = step();
    } catch (...) {
      error_ = std::current_exception();
      done_ = true;
    }
    return done_;
  }
  [[nodiscard]] bool done() const noexcept { return done_; }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }
  /// Blocks (spin, yield, sleep) until the next change that may let step() advance.
  virtual void block() = 0;

 protected:
  virtual bool step() = 0;

 private:
  bool done_ = false;
  std::exception_ptr error_;
};

/// ibarrier, ibroadcast: one publication and/or copies, as in exchange().
class ExchangeOp final : public NonBlocking {
 public:
  ExchangeOp(detail::CommunicatorImpl& comm, Kind kind) : call_(comm, kind) {}
  Call& call() { return call_; }
  std::optional<Outgoing> out;
  std::vector<Incoming> ins;
  Descriptor expect{};

  void begin() {
    if (out) call_.start(*out);
  }
  bool step() override {
    bool progressed = false;
    return call_.exchange_step(out ? &*out : nullptr, ins, expect, progressed);
  }
  void block() override {
    const Outgoing* o = out ? &*out : nullptr;
    call_.wait([&] { return done() || call_.exchange_ready(o, ins); },
               [&] { return call_.exchange_lost(o, ins); });
  }

 private:
  Call call_;
};

/// iallreduce of up to the inline size: everyone publishes at once; the result is combined in
/// rank order once every peer's contribution is there.
class SmallAllreduceOp final : public NonBlocking {
 public:
  SmallAllreduceOp(detail::CommunicatorImpl& comm, const void* in, void* out, std::size_t bytes,
                   const detail::Combiner& op)
      : call_(comm, Kind::allreduce), out_(static_cast<std::byte*>(out)), bytes_(bytes), op_(op) {
    copy_bytes(mine_, in, bytes);
    d_ = Descriptor{Kind::allreduce, -1, bytes, static_cast<std::uint32_t>(op.elem_bytes), op.op_id};
    ins_.resize(static_cast<std::size_t>(call_.n()));
    for (int r = 0; r < call_.n(); ++r) ins_[static_cast<std::size_t>(r)] = incoming(r, 0, bytes, nullptr, bytes);
    call_.publish_inline(d_, mine_, bytes, others(call_));
  }
  bool step() override {
    bool all = true;
    for (int r = 0; r < call_.n(); ++r) {
      auto& i = ins_[static_cast<std::size_t>(r)];
      if (r == call_.me() || i.opened) continue;
      if (call_.main_ready(r)) {
        call_.open(i, d_);
      } else {
        all = false;
      }
    }
    if (!all) return false;
    std::byte acc[kCollectiveInlineBytes];
    auto src = [&](int r) { return r == call_.me() ? mine_ : ins_[static_cast<std::size_t>(r)].inline_data; };
    if (bytes_ > 0) copy_bytes(acc, src(0), bytes_);
    for (int r = 1; r < call_.n(); ++r) combine(op_, acc, src(r), bytes_);
    for (int r = 0; r < call_.n(); ++r) {
      if (r != call_.me()) call_.release_main(r);
    }
    if (bytes_ > 0) copy_bytes(out_, acc, bytes_);
    return true;
  }
  void block() override {
    call_.wait(
        [&] {
          if (done()) return true;
          for (int r = 0; r < call_.n(); ++r) {
            if (r != call_.me() && !ins_[static_cast<std::size_t>(r)].opened && call_.main_ready(r)) return true;
          }
          return false;
        },
        [&] {
          for (int r = 0; r < call_.n(); ++r) {
            if (r != call_.me() && !ins_[static_cast<std::size_t>(r)].opened &&
                !call_.comm().runtime().segment().alive(call_.world(r))) {
              return call_.world(r);
            }
          }
          return -1;
        });
  }

 private:
  Call call_;
  std::byte* out_;
  std::size_t bytes_;
  detail::Combiner op_;
  Descriptor d_{};
  std::byte mine_[kCollectiveInlineBytes];
  std::vector<Incoming> ins_;
};

/// iallreduce above the inline size: reduce to rank 0 chunk by chunk in rank order, then
/// broadcast from rank 0 (the same calls, kinds and sequence numbers as the blocking allreduce).
class LargeAllreduceOp final : public NonBlocking {
 public:
  LargeAllreduceOp(detail::CommunicatorImpl& comm, const void* in, void* out, std::size_t bytes,
                   const detail::Combiner& op)
      : reduce_(comm, Kind::allreduce),
        bcast_(comm, Kind::allreduce),
        in_(static_cast<const std::byte*>(in)),
        out_(static_cast<std::byte*>(out)),
        bytes_(bytes),
        op_(op) {
    const int n = reduce_.n();
    d_ = Descriptor{Kind::allreduce, 0, bytes, static_cast<std::uint32_t>(op.elem_bytes), op.op_id};
    if (reduce_.me() != 0) {
      up_.data = in_;
      up_.d = d_;
      up_.main_readers = {0};
      up_.ranges.assign(static_cast<std::size_t>(n), {0, 0});
      up_.ranges[0] = {0, bytes};
      up_.ring_start = RingStart::restart_when_free;  // as the blocking allreduce's chunks
      reduce_.start(up_);
    } else {
      reduce_.publish_main(d_, nullptr, 0, {}, 0, 0);
      ins_.resize(static_cast<std::size_t>(n));
      for (int r = 1; r < n; ++r) ins_[static_cast<std::size_t>(r)] = incoming(r, 0, bytes, nullptr, bytes);
      chunk_bytes_ = reduce_.chunk_size(static_cast<std::uint32_t>(op.elem_bytes));
      chunks_ = (bytes + chunk_bytes_ - 1) / chunk_bytes_;
    }
    bd_ = Descriptor{Kind::allreduce, 0, bytes, 1, 0};
  }

  bool step() override {
    const int n = reduce_.n();
    const bool root = reduce_.me() == 0;
    if (phase_ == 0) {
      if (!root) {
        reduce_.try_write(up_);
        if (up_.next < up_.chunks) return false;
      } else {
        for (int r = 1; r < n; ++r) {
          auto& i = ins_[static_cast<std::size_t>(r)];
          if (i.opened) continue;
          if (!reduce_.main_ready(r)) return false;
          reduce_.open(i, d_);
          reduce_.release_main(r);
        }
        while (c_ < chunks_) {
          for (int r = 1; r < n; ++r) {
            if (!reduce_.chunk_ready(ins_[static_cast<std::size_t>(r)], c_)) return false;
          }
          std::uint64_t a = c_ * chunk_bytes_;
          std::uint64_t len = std::min<std::uint64_t>(chunk_bytes_, bytes_ - a);
          if (out_ != in_) copy_bytes(out_ + a, in_ + a, len);
          for (int r = 1; r < n; ++r) {
            auto& i = ins_[static_cast<std::size_t>(r)];
            combine(op_, out_ + a, reduce_.area_data(i, c_), len);
            reduce_.release_chunk(i, c_);
          }
          ++c_;
        }
      }
      // step() must not block (it runs inside other waits): publish the broadcast only once
      // its main line is free.
      if (root && !bcast_.main_free()) return false;
      phase_ = 1;
      if (root) {
        down_.data = out_;
        down_.d = bd_;
        down_.main_readers = others(bcast_);
        down_.ranges.assign(static_cast<std::size_t>(n), {0, bytes_});
        down_.ring_start = RingStart::restart_when_free;
        bcast_.start(down_);
      } else {
        bin_ = {incoming(0, 0, bytes_, out_, bytes_)};
      }
    }
    bool progressed = false;
    return bcast_.exchange_step(root ? &down_ : nullptr, bin_, bd_, progressed);
  }

  void block() override {
    const bool root = reduce_.me() == 0;
    auto& seg = reduce_.comm().runtime().segment();
    Call& call = phase_ == 0 ? reduce_ : bcast_;
    call.wait(
        [&] {
          if (done()) return true;
          if (phase_ == 1) return bcast_.exchange_ready(root ? &down_ : nullptr, bin_);
          if (!root) return reduce_.exchange_ready(&up_, {});
          if (c_ >= chunks_) return bcast_.main_free();
          for (int r = 1; r < reduce_.n(); ++r) {
            auto& i = ins_[static_cast<std::size_t>(r)];
            if (!i.opened ? reduce_.main_ready(r) : (c_ < chunks_ && reduce_.chunk_ready(i, c_))) return true;
          }
          return false;
        },
        [&] {
          if (phase_ == 1) return bcast_.exchange_lost(root ? &down_ : nullptr, bin_);
          if (!root) return reduce_.exchange_lost(&up_, {});
          for (int r = 1; r < reduce_.n(); ++r) {
            if (!seg.alive(reduce_.world(r))) return reduce_.world(r);
          }
          return -1;
        });
  }

 private:
  Call reduce_;
  Call bcast_;
  const std::byte* in_;
  std::byte* out_;
  std::size_t bytes_;
  detail::Combiner op_;
  Descriptor d_{};
  Descriptor bd_{};
  int phase_ = 0;
  Outgoing up_;
  Outgoing down_;
  std::vector<Incoming> ins_;
  std::vector<Incoming> bin_;
  std::uint64_t chunk_bytes_ = 0;
  std::uint64_t chunks_ = 0;
  std::uint64_t c_ = 0;
};

std::shared_ptr<PendingOp> launch(detail::CommunicatorImpl& comm, std::shared_ptr<NonBlocking> op) {
  auto& engine = comm.runtime().collectives();
  if (op->progress()) {
    op->rethrow();
    return nullptr;
  }
  engine.pending.push_back(op);
  return op;
}

/// True when every block of a gather or allgather fits inline: `bytes`, and each of the n
/// `counts` of a v-variant.
bool all_inline(std::size_t bytes, const std::size_t* counts, int n) {
  if (bytes > kCollectiveInlineBytes) return false;
  for (int r = 0; counts != nullptr && r < n; ++r) {
    if (counts[r] > kCollectiveInlineBytes) return false;
  }
  return true;
}

/// Copies every other rank's inline publication of this call into `out` (rank r's `block(r)`
/// bytes after the blocks of the ranks before it), in rank order, waiting for each peer in turn
/// (a targeted wait, see Call::notify) and releasing its publication as soon as it is copied.
/// Unlike exchange(): no vector of Incoming, no polling of every peer on each round.
template <class Block>
void copy_inline_blocks(Call& call, const Descriptor& d, std::byte* out, Block&& block) {
  std::uint64_t at = 0;
  Incoming i = incoming(0, 0, 0, nullptr, 0);
  for (int r = 0; r < call.n(); ++r) {
    const std::uint64_t b = block(r);
    if (r != call.me()) {
      i.peer = r;
      i.length = i.expect_total = b;
      call.read_inline(i, d, [&](const std::byte* p) { copy_bytes(out + at, p, b); });
    }
    at += b;
  }
}

}  // namespace
}  // namespace cohort::collectives

namespace cohort::detail {

using collectives::Call;
using collectives::Descriptor;
using collectives::Incoming;
using collectives::Kind;
using collectives::Outgoing;

namespace {
// cohortrun --trace/--stats: one `collective` event per blocking collective call (its waits are
// `wait` events inside it), and its time in the rank's collective_ns.
class TracedCall {
 public:
  TracedCall(CommunicatorImpl& comm, Kind kind, std::size_t bytes, int root = -1) noexcept
      : trace_(comm.runtime().trace()) {
    if (trace_.on()) [[unlikely]] {
      e_ = transport::TraceEvent{transport::trace_clock_ns(), 0, bytes, 0,
                                 root >= 0 ? comm.world_rank(root) : -1, -1, comm.context(),
                                 static_cast<std::uint16_t>(transport::TraceKind::collective),
                                 static_cast<std::uint16_t>(kind), 0};
      exceptions_ = std::uncaught_exceptions();
    }
  }
  TracedCall(const TracedCall&) = delete;
  TracedCall& operator=(const TracedCall&) = delete;
  ~TracedCall() {
    if (!trace_.on()) return;
    e_.end_ns = transport::trace_clock_ns();
    if (std::uncaught_exceptions() > exceptions_) e_.flags |= transport::kTraceFailed;
    transport::RankStats& st = trace_.stats();
    transport::RankTrace::add(st.collectives, 1);
    transport::RankTrace::add(st.collective_ns, e_.end_ns - e_.begin_ns);
    if (trace_.events_on()) trace_.record(e_);
  }

 private:
  const transport::RankTrace& trace_;
  transport::TraceEvent e_{};
  int exceptions_ = 0;
};
}  // namespace

void collective_bad_argument(CommunicatorImpl& c, const char* op, const std::string& what) {
  throw InvalidArgument(fmt::format("rank {}: {} on communicator {}: {}", c.rank(), op,
                                    c.context(), what));
}

void collective_barrier(CommunicatorImpl& comm) {
  TracedCall traced(comm, Kind::barrier, 0);
  Call call(comm, Kind::barrier);
  if (call.n() == 1) return;
  Descriptor d{Kind::barrier, -1, 0, 1, 0};
  if (!collectives::use_flat(call)) {
    collectives::gather_release(call, d, nullptr, nullptr, 0, nullptr);
    return;
  }
  // Flat: publish, then read each peer's publication in rank order, waiting for one peer at a
  // time (a sleeping rank is woken by that peer only, Call::notify).
  call.publish_inline(d, nullptr, 0, collectives::peers_of(call));
  for (int r = 0; r < call.n(); ++r) {
    if (r == call.me()) continue;
    Incoming in = collectives::incoming(r, 0, 0, nullptr, 0);
    call.wait_open(in, d);
    call.release_main(r);
  }
}

void collective_broadcast(CommunicatorImpl& comm, void* data, std::size_t bytes, int root) {
  TracedCall traced(comm, Kind::broadcast, bytes, root);
  collectives::broadcast_impl(comm, data, bytes, root, Kind::broadcast);
}

void collective_reduce(CommunicatorImpl& comm, const void* in, void* out, std::size_t bytes,
                       const Combiner& op, int root) {
  TracedCall traced(comm, Kind::reduce, bytes, root);
  collectives::reduce_impl(comm, in, out, bytes, op, root, Kind::reduce);
}

void collective_allreduce(CommunicatorImpl& comm, const void* in, void* out, std::size_t bytes,
                          const Combiner& op) {
  TracedCall traced(comm, Kind::allreduce, bytes);
  collectives::allreduce_impl(comm, in, out, bytes, op, Kind::allreduce);
}

void collective_scan(CommunicatorImpl& comm, const void* in, void* out, std::size_t bytes,
                     const Combiner& op, bool exclusive) {
  TracedCall traced(comm, exclusive ? Kind::exscan : Kind::scan, bytes);
  collectives::scan_impl(comm, in, out, bytes, op, exclusive);
}

void collective_reduce_scatter(CommunicatorImpl& comm, const void* in, void* out,
                               std::size_t block_bytes, const Combiner& op) {
  TracedCall traced(comm, Kind::reduce_scatter, block_bytes);
  const std::size_t n = static_cast<std::size_t>(comm.size());
  std::vector<std::byte> all(block_bytes * n);
  collectives::allreduce_impl(comm, in, all.data(), all.size(), op, Kind::reduce_scatter);
  if (block_bytes > 0) {
    copy_bytes(out, all.data() + static_cast<std::size_t>(comm.rank()) * block_bytes, block_bytes);
  }
}

void collective_gather(CommunicatorImpl& comm, const void* in, std::size_t bytes, void* out_v,
                       const std::size_t* counts, int root) {
  TracedCall traced(comm, Kind::gather, bytes, root);
  Call call(comm, Kind::gather);
  collectives::check_root(call, root);
  const int n = call.n();
  const int me = call.me();
  auto* out = static_cast<std::byte*>(out_v);
  Descriptor d{Kind::gather, root, bytes, 1, 0};
  if (me != root && bytes <= collectives::kCollectiveInlineBytes) {
    // The usual small gather: one inline publication for the root (what exchange() does for it).
    call.publish_inline(d, in, bytes, std::span(&root, 1));
    return;
  }
  auto& ins = collectives::scratch<Incoming>();
  if (me != root) {
    Outgoing& o = collectives::scratch_outgoing();
    o.data = static_cast<const std::byte*>(in);
    o.d = d;
    o.main_readers.push_back(root);
    o.ranges.assign(static_cast<std::size_t>(n), {0, 0});
    o.ranges[static_cast<std::size_t>(root)] = {0, bytes};
    call.exchange(&o, ins, d);
    return;
  }
  // Block r of `out` starts at offset(r) (counts in bytes; nullptr: every block is `bytes`).
  auto block = [&](int r) -> std::uint64_t { return counts != nullptr ? counts[r] : bytes; };
  auto offset = [&](int r) -> std::uint64_t {
    if (counts == nullptr) return static_cast<std::uint64_t>(r) * bytes;
    std::uint64_t o = 0;
    for (int k = 0; k < r; ++k) o += counts[k];
    return o;
  };
  if (block(me) != bytes) {
    collective_bad_argument(comm, "gatherv", fmt::format("the root's own count is {} bytes but "
                                                         "it passes {} bytes", block(me), bytes));
  }
  if (bytes > 0) copy_bytes(out + offset(me), in, bytes);
  if (n == 1) return;
  call.publish_main(d, nullptr, 0, {}, 0, 0);  // root-mismatch detection
  if (collectives::all_inline(bytes, counts, n)) {  // the members' publications, in rank order
    collectives::copy_inline_blocks(call, d, out, block);
    return;
  }
  std::uint64_t at = 0;
  for (int r = 0; r < n; ++r) {
    if (r != me) ins.push_back(collectives::incoming(r, 0, block(r), out + at, block(r)));
    at += block(r);
  }
  call.exchange(nullptr, ins, d);
}

void collective_scatter(CommunicatorImpl& comm, const void* in, const std::size_t* counts,
                        void* out, std::size_t bytes, int root, bool variant) {
  TracedCall traced(comm, Kind::scatter, bytes, root);
  const int n = comm.size();
  const int me = comm.rank();
  if (root < 0 || root >= n) {
    collective_bad_argument(comm, "scatter", fmt::format("root {} is not a rank of this "
                                                         "communicator (size {})", root, n));
  }
  if (!variant && static_cast<std::uint64_t>(n) * bytes <= collectives::kCollectiveInlineBytes) {
    // The usual small scatter: the root publishes its whole buffer inline once, every member
    // copies its block (what exchange() does for it, without the vectors of counts, offsets,
    // ranges and Incoming).
    Call call(comm, Kind::scatter);
    const std::uint64_t total = static_cast<std::uint64_t>(n) * bytes;
    const std::uint64_t at = static_cast<std::uint64_t>(me) * bytes;
    Descriptor d{Kind::scatter, root, total, 1, 0};
    if (me == root) {
      const auto* src = static_cast<const std::byte*>(in);
      if (bytes > 0) copy_bytes(out, src + at, bytes);
      if (n == 1) return;
      call.publish_inline(d, src, total, collectives::peers_of(call));
    } else {
      Incoming i = collectives::incoming(root, at, bytes, out, total);
      call.read_inline(i, d, [&](const std::byte* p) { copy_bytes(out, p + at, bytes); });
    }
    return;
  }
  std::vector<std::uint64_t> c(static_cast<std::size_t>(n), bytes);
  if (variant) {
    // Only the root knows the counts: it broadcasts them first.
    if (me == root) c.assign(counts, counts + n);
    collectives::broadcast_impl(comm, c.data(), c.size() * sizeof(std::uint64_t), root,
                                Kind::scatter);
    if (c[static_cast<std::size_t>(me)] != bytes) {
      throw CollectiveMismatch(fmt::format(
          "rank {}: scatterv on communicator {}: the root sends this rank {} bytes, its buffer "
          "holds {} bytes", me, comm.context(), c[static_cast<std::size_t>(me)], bytes));
    }
  }
  Call call(comm, Kind::scatter);
  auto p = collectives::prefix(c);
  const std::uint64_t total = p.back();
  Descriptor d{Kind::scatter, root, total, 1, 0};
  if (me == root) {
    const auto* src = static_cast<const std::byte*>(in);
    if (bytes > 0) copy_bytes(out, src + p[static_cast<std::size_t>(me)], bytes);
    if (n == 1) return;
    Outgoing o;
    o.data = src;
    o.d = d;
    o.main_readers = collectives::others(call);
    for (int r = 0; r < n; ++r) {
      auto ur = static_cast<std::size_t>(r);
      o.ranges.emplace_back(p[ur], c[ur]);
    }
    std::vector<Incoming> none;
    call.exchange(&o, none, d);
  } else {
    std::vector<Incoming> ins{collectives::incoming(root, p[static_cast<std::size_t>(me)], bytes,
                                                    out, total)};
    call.exchange(nullptr, ins, d);
  }
}

void collective_allgather(CommunicatorImpl& comm, const void* in, std::size_t bytes, void* out,
                          const std::size_t* counts) {
  TracedCall traced(comm, Kind::allgather, bytes);
  collectives::allgather_impl(comm, in, bytes, out, counts, Kind::allgather);
}

void collective_alltoall(CommunicatorImpl& comm, const void* in_v, const std::size_t* send_counts,
                         void* out_v, const std::size_t* recv_counts, std::size_t block_bytes) {
  TracedCall traced(comm, Kind::alltoall, block_bytes);
  const int n = comm.size();
  const int me = comm.rank();
  const auto un = static_cast<std::size_t>(n);
  const auto* in = static_cast<const std::byte*>(in_v);
  auto* out = static_cast<std::byte*>(out_v);
  if (send_counts == nullptr) {
    // Equal blocks: rank i's block j is at j * block_bytes of its stream (scratch storage, no
    // allocation per call).
    Call call(comm, Kind::alltoall);
    const std::uint64_t b = block_bytes;
    const auto ume = static_cast<std::uint64_t>(me);
    if (b > 0) copy_bytes(out + ume * b, in + ume * b, b);
    if (n == 1) return;
    // Rank i's stream: its blocks for ranks i+1, ..., n-1, 0, ..., i-1 (its own left out), so
    // that the ranks write for different readers at the same time; rank j's block is the
    // stream's block (j - i - 1) mod n.
    Descriptor d{Kind::alltoall, -1, b * (un - 1), 1, 0};
    Outgoing& o = collectives::scratch_outgoing();
    o.data = in;
    o.d = d;
    o.head = (ume + 1) * b;
    o.head_bytes = (un - 1 - ume) * b;
    o.tail = 0;
    // Blocks of 4 KiB up to the staging slot's size are one chunk each, so that a reader waits
    // for and releases its own block only (with 128 KiB chunks holding several blocks, it waited
    // for the whole chunk and the chunk's slot for its slowest reader). Measured with 8 ranks on
    // 2 cores, 4 alternations each (README, Collectives > How it works): 8 KiB blocks 94-218 ->
    // 60-169 us, 32 KiB 264-334 -> 147-302 us; 4 ranks and 2 ranks within noise.
    if (b >= collectives::kBlockChunkMinBytes && b < call.chunk_size(1)) {
      o.max_chunk = static_cast<std::uint32_t>(b);
    }
    o.main_readers = collectives::peers_of(call);
    if (o.max_chunk != 0) o.ring_start = collectives::RingStart::alternate_halves;
    auto position = [&](std::uint64_t from, std::uint64_t to) { return (to + un - from - 1) % un * b; };
    for (std::uint64_t j = 0; j < un; ++j) {
      o.ranges.emplace_back(j == ume ? 0 : position(ume, j), j == ume ? 0 : b);
    }
    auto& ins = collectives::scratch<Incoming>();
    for (int i = 0; i < n; ++i) {
      if (i == me) continue;
      const auto ui = static_cast<std::uint64_t>(i);
      ins.push_back(collectives::incoming(i, position(ui, ume), b, out + ui * b, b * (un - 1)));
    }
    call.exchange(&o, ins, d);
    return;
  }
  // sent[i * n + j]: bytes rank i sends to rank j.
  std::vector<std::uint64_t> sent(un * un, block_bytes);
  if (send_counts != nullptr) {
    std::vector<std::uint64_t> mine(send_counts, send_counts + n);
    collectives::allgather_impl(comm, mine.data(), un * sizeof(std::uint64_t), sent.data(),
                                nullptr, Kind::alltoall);
    for (int i = 0; i < n; ++i) {
      auto expect = recv_counts[i];
      auto got = sent[static_cast<std::size_t>(i) * un + static_cast<std::size_t>(me)];
      if (got != expect) {
        throw CollectiveMismatch(fmt::format(
            "rank {}: alltoallv on communicator {}: rank {} sends {} bytes to this rank, which "
            "expects {} bytes from it", me, comm.context(), i, got, expect));
      }
    }
  }
  auto row = [&](int i) {
    return std::vector<std::uint64_t>(sent.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(i) * un),
                                      sent.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(i + 1) * un));
  };
  Call call(comm, Kind::alltoall);
  auto my_prefix = collectives::prefix(row(me));
  // Where each source's block lands in `out` (packed in source order).
  std::vector<std::uint64_t> recv(un);
  for (int i = 0; i < n; ++i) recv[static_cast<std::size_t>(i)] = sent[static_cast<std::size_t>(i) * un + static_cast<std::size_t>(me)];
  auto recv_prefix = collectives::prefix(recv);
  auto ume = static_cast<std::size_t>(me);
  if (recv[ume] > 0) copy_bytes(out + recv_prefix[ume], in + my_prefix[ume], recv[ume]);
  if (n == 1) return;
  // As for alltoall: rank i's stream holds its blocks for ranks i+1, ..., n-1, 0, ..., i-1.
  // Where rank `to`'s block starts in rank `from`'s stream (p: from's send prefix sums):
  auto position = [&](const std::vector<std::uint64_t>& p, std::size_t from, std::size_t to) {
    return to > from ? p[to] - p[from + 1] : p.back() - p[from + 1] + p[to];
  };
  Descriptor d{Kind::alltoall, -1, my_prefix.back() - sent[ume * un + ume], 1, 0};
  Outgoing o;
  o.data = in;
  o.d = d;
  o.head = my_prefix[ume + 1];
  o.head_bytes = my_prefix.back() - my_prefix[ume + 1];
  o.tail = 0;
  o.main_readers = collectives::others(call);
  for (std::size_t j = 0; j < un; ++j) {
    if (j == ume) {
      o.ranges.emplace_back(0, 0);
    } else {
      o.ranges.emplace_back(position(my_prefix, ume, j), sent[ume * un + j]);
    }
  }
  std::vector<Incoming> ins;
  for (int i = 0; i < n; ++i) {
    if (i == me) continue;
    auto p = collectives::prefix(row(i));
    auto ui = static_cast<std::size_t>(i);
    ins.push_back(collectives::incoming(i, position(p, ui, ume), recv[ui], out + recv_prefix[ui],
                                        p.back() - sent[ui * un + ui]));
  }
  call.exchange(&o, ins, d);
}

std::shared_ptr<collectives::PendingOp> collective_ibarrier(CommunicatorImpl& comm) {
  if (comm.size() == 1) {
    comm.next_collective_sequence();
    return nullptr;
  }
  auto op = std::make_shared<collectives::ExchangeOp>(comm, Kind::barrier);
  Call& call = op->call();
  op->expect = Descriptor{Kind::barrier, -1, 0, 1, 0};
  op->out.emplace();
  op->out->d = op->expect;
  op->out->main_readers = collectives::others(call);
  for (int r : op->out->main_readers) op->ins.push_back(collectives::incoming(r, 0, 0, nullptr, 0));
  op->begin();
  return collectives::launch(comm, op);
}

std::shared_ptr<collectives::PendingOp> collective_ibroadcast(CommunicatorImpl& comm, void* data,
                                                              std::size_t bytes, int root) {
  auto op = std::make_shared<collectives::ExchangeOp>(comm, Kind::broadcast);
  Call& call = op->call();
  collectives::check_root(call, root);
  if (call.n() == 1) return nullptr;
  op->expect = Descriptor{Kind::broadcast, root, bytes, 1, 0};
  if (call.me() == root) {
    op->out.emplace();
    op->out->data = static_cast<const std::byte*>(data);
    op->out->d = op->expect;
    op->out->main_readers = collectives::others(call);
    op->out->ranges.assign(static_cast<std::size_t>(call.n()), {0, bytes});
  } else {
    op->ins.push_back(collectives::incoming(root, 0, bytes, data, bytes));
  }
  op->begin();
  return collectives::launch(comm, op);
}

std::shared_ptr<collectives::PendingOp> collective_iallreduce(CommunicatorImpl& comm,
                                                              const void* in, void* out,
                                                              std::size_t bytes,
                                                              const Combiner& op) {
  if (comm.size() == 1) {
    comm.next_collective_sequence();
    if (out != in && bytes > 0) copy_bytes(out, in, bytes);
    return nullptr;
  }
  if (bytes <= collectives::kCollectiveInlineBytes) {
    return collectives::launch(comm, std::make_shared<collectives::SmallAllreduceOp>(comm, in, out, bytes, op));
  }
  return collectives::launch(comm, std::make_shared<collectives::LargeAllreduceOp>(comm, in, out, bytes, op));
}

std::shared_ptr<CommunicatorImpl> collective_split(CommunicatorImpl& comm, int color, int key) {
  const int n = comm.size();
  const auto un = static_cast<std::size_t>(n);
  if (color < 0 && color != cohort::undefined) {
    collective_bad_argument(comm, "split", fmt::format("color {} is negative; use a color >= 0 or "
                                                       "cohort::undefined", color));
  }
  struct Entry {
    std::int32_t color;
    std::int32_t key;
  };
  Entry mine{color, key};
  std::vector<Entry> all(un);
  collectives::allgather_impl(comm, &mine, sizeof(Entry), all.data(), nullptr, Kind::split);
  // Members of each color in (key, rank) order; the first one allocates the context id.
  std::vector<int> group;
  for (int r = 0; r < n; ++r) {
    if (all[static_cast<std::size_t>(r)].color == color) group.push_back(r);
  }
  std::stable_sort(group.begin(), group.end(), [&](int a, int b) {
    return all[static_cast<std::size_t>(a)].key < all[static_cast<std::size_t>(b)].key;
  });
  std::uint32_t allocated = 0;
  auto& engine = comm.runtime().collectives();
  if (color != cohort::undefined && group.front() == comm.rank()) {
    allocated = engine.area().header().next_context.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  std::vector<std::uint32_t> ids(un);
  collectives::allgather_impl(comm, &allocated, sizeof(allocated), ids.data(), nullptr, Kind::split);
  if (color == cohort::undefined) return nullptr;
  std::vector<int> world_ranks;
  int my_index = 0;
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (group[i] == comm.rank()) my_index = static_cast<int>(i);
    world_ranks.push_back(comm.world_rank(group[i]));
  }
  return std::make_shared<CommunicatorImpl>(comm.runtime(),
                                            ids[static_cast<std::size_t>(group.front())],
                                            std::move(world_ranks), my_index);
}

std::shared_ptr<CommunicatorImpl> collective_dup(CommunicatorImpl& comm) {
  std::uint32_t id = 0;
  if (comm.rank() == 0) {
    id = comm.runtime().collectives().area().header().next_context.fetch_add(
             1, std::memory_order_relaxed) + 1;
  }
  collectives::broadcast_impl(comm, &id, sizeof(id), 0, Kind::dup);
  return std::make_shared<CommunicatorImpl>(comm.runtime(), id, comm.world_ranks(), comm.rank());
}

}  // namespace cohort::detail

namespace cohort::collectives {
namespace {

void allgather_impl(detail::CommunicatorImpl& comm, const void* in, std::size_t bytes, void* out_v,
                    const std::size_t* counts, Kind kind) {
  Call call(comm, kind);
  const int n = call.n();
  const int me = call.me();
  auto* out = static_cast<std::byte*>(out_v);
  if (all_inline(bytes, counts, n)) {
    // Every block is inline (split, alltoallv's counts, small allgathers): publish once for
    // everyone, then copy each peer's publication in rank order, waiting for one peer at a time
    // as the flat barrier does (no deadlock: every rank publishes before it waits). What
    // exchange() does for it, without the vectors of counts, offsets, ranges and Incoming.
    auto block = [&](int r) -> std::uint64_t { return counts != nullptr ? counts[r] : bytes; };
    if (block(me) != bytes) {
      detail::collective_bad_argument(comm, "allgatherv", fmt::format(
          "counts[{}] is {} bytes but this rank passes {} bytes", me, block(me), bytes));
    }
    std::uint64_t at = 0;
    for (int r = 0; r < me; ++r) at += block(r);
    if (bytes > 0) copy_bytes(out + at, in, bytes);
    if (n == 1) return;
    Descriptor d{kind, -1, bytes, 1, 0};
    call.publish_inline(d, in, bytes, peers_of(call));
    copy_inline_blocks(call, d, out, block);
    return;
  }
  std::vector<std::uint64_t> c(static_cast<std::size_t>(n), bytes);
  if (counts != nullptr) c.assign(counts, counts + n);
  if (c[static_cast<std::size_t>(me)] != bytes) {
    detail::collective_bad_argument(comm, "allgatherv", fmt::format(
        "counts[{}] is {} bytes but this rank passes {} bytes", me, c[static_cast<std::size_t>(me)], bytes));
  }
  auto p = prefix(c);
  if (bytes > 0) copy_bytes(out + p[static_cast<std::size_t>(me)], in, bytes);
  if (n == 1) return;
  Descriptor d{kind, -1, bytes, 1, 0};
  Outgoing o;
  o.data = static_cast<const std::byte*>(in);
  o.d = d;
  o.main_readers = others(call);
  o.ranges.assign(static_cast<std::size_t>(n), {0, bytes});
  std::vector<Incoming> ins;
  for (int r = 0; r < n; ++r) {
    if (r == me) continue;
    auto ur = static_cast<std::size_t>(r);
    ins.push_back(incoming(r, 0, c[ur], out + p[ur], c[ur]));
  }
  call.exchange(&o, ins, d);
}

}  // namespace


}  // namespace cohort::collectives

namespace cohort {

CollectiveRequest::~CollectiveRequest() {
  if (op_) {
    try {
      wait();
    } catch (...) {  // a destructor must not throw; wait() reports errors
    }
  }
}

void CollectiveRequest::wait() {
  if (!op_) return;
  auto& nb = static_cast<collectives::NonBlocking&>(*op_);
  auto& engine = detail::Runtime::current()->collectives();
  while (!nb.done()) {
    engine.progress_pending();
    if (nb.done()) break;
    nb.block();
  }
  auto op = std::move(op_);
  keep_.reset();
  nb.rethrow();
}

bool CollectiveRequest::test() {
  if (!op_) return true;
  auto& nb = static_cast<collectives::NonBlocking&>(*op_);
  detail::Runtime::current()->collectives().progress_pending();
  if (!nb.done()) return false;
  auto op = std::move(op_);
  keep_.reset();
  nb.rethrow();
  return true;
}

}  // namespace cohort
