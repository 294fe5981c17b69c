#include "runtime/p2p/engine.hpp"
#include "runtime/p2p/frame.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "cohort/errors.hpp"
#include "runtime/runtime.hpp"
#include "runtime/transport/copy.hpp"
#include "runtime/transport/cross_memory.hpp"

namespace cohort::p2p {
namespace {

using detail::CommunicatorImpl;
using detail::RecvTarget;
using detail::SendBuffer;

int comm_rank(const CommunicatorImpl& comm, int world) noexcept {
  if (comm.context() == 0) return world;
  const auto& w = comm.world_ranks();
  auto it = std::find(w.begin(), w.end(), world);
  return it == w.end() ? -1 : static_cast<int>(it - w.begin());
}

const char* format_name(std::uint8_t kind) noexcept {
  switch (static_cast<MessageFormat>(kind)) {
    case MessageFormat::raw: return "raw bytes";
    case MessageFormat::cereal: return "a cereal-serialized type";
    case MessageFormat::boost: return "a Boost-serialized type";
  }
  return "an unknown format";
}

static_assert(kSplitMinBytes == SplitChoices::kMinBytes,
              "the split choosers' first size class starts at the smallest split offer");

// Hot polls before the Waiter takes over (only when not oversubscribed).
constexpr int kHotPolls = 512;
constexpr std::uint64_t kHotPollsMinPatience = 1000;

std::string tag_text(int tag) { return tag < 0 ? std::string("any tag") : fmt::format("tag {}", tag); }

}  // namespace

Engine::Engine(const transport::Segment& segment, transport::Waiter& waiter, int self, int size)
    : segment_(segment),
      waiter_(waiter),
      boxes_(segment.mailbox_area(), size),
      self_(self),
      size_(size),
      eager_max_(boxes_.layout().eager_max_bytes),
      chunk_(std::clamp<std::size_t>(boxes_.layout().stream_bytes / 4, 2048, 64 * 1024)),
      cross_memory_(self, "large messages"),
      in_(static_cast<std::size_t>(size)),
      out_(static_cast<std::size_t>(size)),
      posted_from_(static_cast<std::size_t>(size)),
      probing_from_(static_cast<std::size_t>(size)),
      is_unwoken_(static_cast<std::size_t>(size), 0) {
  // Tuning knobs for bench/ experiments (every rank must see the same values): use only part of
  // the stream, another chunk size; COHORT_P2P_STREAM_NT=1 or 0: the sender always (never)
  // copies into the stream with non-temporal stores, instead of the mode the receiver measured
  // to be faster (stream_mode.hpp).
  std::size_t stream_limit = boxes_.layout().stream_bytes;
  if (const char* v = std::getenv("COHORT_P2P_STREAM_BYTES")) {
    std::size_t want = std::bit_floor(static_cast<std::size_t>(std::strtoull(v, nullptr, 10)));
    if (want >= 4096 && want < stream_limit) stream_limit = want;
  }
  if (const char* v = std::getenv("COHORT_P2P_CHUNK_BYTES")) {
    std::size_t want = static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
    if (want >= 512) chunk_ = want;
  }
  forced_nt_ = transport::mode_fixed_by_environment("COHORT_P2P_STREAM_NT");
  // COHORT_P2P_SPLIT=1 or 0: always take (never take) the split copies senders offer for raw
  // messages of kSplitMinBytes and more, instead of the way measured to be faster.
  forced_split_ = transport::mode_fixed_by_environment("COHORT_P2P_SPLIT");
  chunk_ = std::min(chunk_, stream_limit / 2);  // whole-chunk hand-offs need two chunks of room
  if (!segment.trace_area().empty()) {
    trace_ = transport::RankTrace(segment.trace_area(), self);
    sent_seq_.assign(static_cast<std::size_t>(size), 0);
    received_seq_.assign(static_cast<std::size_t>(size), 0);
  }
  for (int r = 0; r < size; ++r) {
    if (r == self) continue;
    auto ri = static_cast<std::size_t>(r);
    transport::PairView incoming = boxes_.pair(r, self);
    transport::PairView outgoing = boxes_.pair(self, r);
    incoming.stream_bytes = stream_limit;
    outgoing.stream_bytes = stream_limit;
    in_[ri].ring = transport::RingConsumer(incoming);
    in_[ri].stream = transport::StreamConsumer(incoming);
    out_[ri].ring = transport::RingProducer(outgoing);
    out_[ri].stream = transport::StreamProducer(outgoing);
    in_[ri].pair = incoming;
    out_[ri].pair = outgoing;
    sources_.push_back(r);
  }
  if (const char* d = std::getenv("COHORT_DEBUG"); d != nullptr && d[0] == '1' && self == 0) {
    const auto& l = boxes_.layout();
    std::fprintf(stderr,
                 "cohort: p2p: %d ranks; per pair: ring %zu B (messages <= %zu B inline), stream "
                 "%zu B in %zu B chunks (pipelined copy through shared memory); raw messages of "
                 "%zu B and more: split copy across address spaces (%s); mailbox area %zu B\n",
                 size, l.ring_bytes, l.eager_max_bytes, stream_limit, chunk_, kSplitMinBytes,
                 cross_memory_.on() ? "offered" : "off: COHORT_CMA=0", l.total_bytes);
  }
}

Engine::~Engine() {
  // Requests that outlive the Environment keep their operations: detach them (the Request then
  // frees it, OperationDeleter), failing those that had not completed, so that waiting on one
  // throws instead of touching this engine.
  for (Operation* op = live_; op != nullptr;) {
    Operation* next = op->live_next;
    op->live_prev = op->live_next = nullptr;
    op->engine = nullptr;
    op->posted = op->queued = false;
    if (!op->done) {
      op->done = true;
      op->error = std::make_exception_ptr(Error(fmt::format(
          "rank {}: {} rank {} (tag {}): the cohort::Environment ended before this request "
          "completed, so it never will; wait for (or destroy) every Request before the "
          "Environment goes",
          self_, op->kind == Operation::Kind::send ? "isend to" : "irecv from", op->peer, op->tag)));
    }
    op->keep_alive.reset();
    op = next;
  }
  live_ = nullptr;
  // COHORT_DEBUG=1: the store modes this rank measured for the large messages it received.
  const char* d = std::getenv("COHORT_DEBUG");
  if (d == nullptr || d[0] != '1') return;
  for (int r : sources_) {
    const Incoming& in = in_[static_cast<std::size_t>(r)];
    if (in.modes.count(false) + in.modes.count(true) != 0) {
      std::fprintf(stderr, "cohort: p2p: rank %d, large messages from rank %d, stream filled by: %s\n",
                   self_, r, in.modes.describe("ordinary stores", "non-temporal stores").c_str());
    }
    for (int c = 0; c < SplitChoices::kSizes; ++c) {
      const SplitModeChooser& ch = in.splits.at(c);
      if (ch.count(false) + ch.count(true) == 0) continue;
      std::fprintf(stderr, "cohort: p2p: rank %d, split offers of %zu KiB%s from rank %d: %s\n",
                   self_, static_cast<std::size_t>(SplitChoices::class_kib(c)),
                   c + 1 == SplitChoices::kSizes ? " and more" : "+", r,
                   ch.describe("taken", "streamed").c_str());
    }
  }
}

Operation* Engine::acquire() {
  Operation* op = nullptr;
  if (pool_.empty()) {
    op = new Operation;
    op->engine = this;
  } else {
    op = pool_.back().release();
    pool_.pop_back();
  }
  op->live_prev = nullptr;
  op->live_next = live_;
  if (live_ != nullptr) live_->live_prev = op;
  live_ = op;
  return op;
}

void Engine::release(Operation* op) noexcept {
  if (op->live_prev != nullptr) op->live_prev->live_next = op->live_next;
  else live_ = op->live_next;
  if (op->live_next != nullptr) op->live_next->live_prev = op->live_prev;
  op->live_prev = op->live_next = nullptr;
  constexpr std::size_t kMaxPooled = 1024;
  if (pool_.size() >= kMaxPooled) {
    delete op;
    return;
  }
  op->reset();
  try {
    pool_.emplace_back(op);
  } catch (...) {
    delete op;
  }
}

// Small isends skip the fenced wake check (a full fence per message would halve the message
// rate); the next progress call does one fence for all of them. A receiver that went to sleep in
// exactly that window is woken then, or by its futex time slice.
void Engine::flush_wakes() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (int d : unwoken_) {
    is_unwoken_[static_cast<std::size_t>(d)] = 0;
    if (segment_.slot(d).sleeping.load(std::memory_order_relaxed) != 0) segment_.wake(d);
  }
  unwoken_.clear();
}

// ---- tracing (cohortrun --trace / --stats) ----------------------------------------------------

// One event for one call: begun at construction, recorded at destruction; failed unless done()
// was called (an exception left the call). For receives, peer, seq and bytes come from the
// operation. An instant (an eager non-blocking send) reads the clock once, when the call begins:
// its flow must start before the receive can end. While the buffer is full the clock is not read
// at all: the event is only counted.
struct Engine::TraceScope {
  TraceScope(Engine& e, transport::TraceKind kind, int peer, int tag, std::uint32_t comm,
             std::size_t bytes, std::uint32_t seq, const Operation* operation = nullptr,
             bool is_instant = false) noexcept
      : engine(e), op(operation), instant(is_instant), keep(e.trace_.keeps_next()) {
    if (keep) {
      event = transport::TraceEvent{transport::trace_clock_ns(), 0, bytes, seq, peer, tag, comm,
                                    static_cast<std::uint16_t>(kind), 0, 0};
    }
  }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;
  void done() noexcept { ok = true; }
  ~TraceScope() {
    if (!engine.trace_.events_on()) return;
    if (!keep) {
      engine.trace_.count_dropped();
      return;
    }
    event.end_ns = instant ? event.begin_ns : transport::trace_clock_ns();
    if (!ok) event.flags |= transport::kTraceFailed;
    if (op != nullptr) {
      event.peer = op->matched_source;
      event.seq = op->trace_seq;
      event.bytes = op->status.bytes;
      if (op->error) event.flags |= transport::kTraceFailed;
    }
    engine.trace_.record(event);
  }

  Engine& engine;
  const Operation* op;
  bool instant;
  bool keep;
  bool ok = false;
  transport::TraceEvent event{};
};

std::uint32_t Engine::next_sent_seq(int dest, std::size_t bytes) noexcept {
  trace_.count_send(dest, bytes);
  return ++sent_seq_[static_cast<std::size_t>(dest)];
}

void Engine::traced_recv_complete(const Operation& op, int source, std::size_t bytes) noexcept {
  trace_.count_receive(bytes);
  if (op.blocking || !trace_.events_on()) return;  // a blocking recv records its own span
  if (!trace_.keeps_next()) {
    trace_.count_dropped();
    return;
  }
  std::uint64_t now = transport::trace_clock_ns();
  trace_.record(transport::TraceEvent{now, now, bytes, op.trace_seq, source, op.status.tag.value(),
                                      op.comm->context(),
                                      static_cast<std::uint16_t>(transport::TraceKind::recv_done),
                                      0, 0});
}

// ---- matching -------------------------------------------------------------------------------

bool Engine::matches(const Operation& op, const Envelope& env) noexcept {
  return op.comm->context() == env.context && (op.peer < 0 || op.peer == env.source) &&
         (op.tag < 0 || op.tag == env.tag);
}

Operation* Engine::match_posted(const Envelope& env) noexcept {
  for (Operation* op : posted_) {
    if (matches(*op, env)) return op;
  }
  return nullptr;
}

void Engine::post(Operation& op) {
  for (auto it = unexpected_.begin(); it != unexpected_.end(); ++it) {
    if (matches(op, it->env)) {
      take_unexpected(op, it);
      return;
    }
  }
  posted_.push_back(&op);
  op.posted = true;
  if (op.peer < 0) ++posted_any_;
  else ++posted_from_[static_cast<std::size_t>(op.peer)];
}

void Engine::unpost(Operation& op) noexcept {
  if (!op.posted) return;
  if (posted_.front() == &op) posted_.pop_front();  // the usual case: the oldest matched
  else posted_.erase(std::find(posted_.begin(), posted_.end(), &op));
  op.posted = false;
  if (op.peer < 0) --posted_any_;
  else --posted_from_[static_cast<std::size_t>(op.peer)];
}

bool Engine::cancel(Operation& op) noexcept {
  if (!op.posted) return false;
  unpost(op);
  op.done = true;
  return true;
}

void Engine::take_unexpected(Operation& op, std::list<Unexpected>::iterator it) {
  Unexpected& e = *it;
  op.matched_source = e.env.source;
  op.trace_seq = e.seq;
  Transfer* transfer = nullptr;
  if (!e.complete) {
    for (Transfer& t : in_[static_cast<std::size_t>(e.env.source)].transfers) {
      if (t.entry == &e) transfer = &t;
    }
  }
  if (std::exception_ptr err = validate(op, e.env, e.kind, e.fingerprint, e.bytes)) {
    if (transfer != nullptr) {
      transfer->dest = nullptr;
      transfer->entry = nullptr;
    }
    unexpected_.erase(it);
    fail(op, err);
    return;
  }
  std::byte* dst = destination(op, e.bytes);
  if (e.complete) {
    transport::copy_bytes(dst, e.data.get(), e.bytes);
    Envelope env = e.env;
    std::size_t bytes = e.bytes;
    unexpected_.erase(it);
    complete_recv(op, env, bytes);
    return;
  }
  std::size_t arrived = transfer->total - transfer->remaining;
  transport::copy_bytes(dst, e.data.get(), arrived);
  transfer->dest = dst;
  transfer->entry = nullptr;
  transfer->op = &op;
  unexpected_.erase(it);
}

std::exception_ptr Engine::validate(const Operation& op, const Envelope& env, std::uint8_t kind,
                                    std::uint32_t fingerprint, std::size_t bytes) const {
  const RecvTarget& t = op.target;
  auto where = [&] {
    return fmt::format("rank {}: recv from rank {} ({})", op.comm->rank(),
                       comm_rank(*op.comm, env.source), tag_text(env.tag));
  };
  if (kind != static_cast<std::uint8_t>(t.format)) {
    return std::make_exception_ptr(TypeMismatch(fmt::format(
        "{}: the message was sent as {} and is received as {} (the message was discarded); "
        "send and receive the same type",
        where(), format_name(kind), format_name(static_cast<std::uint8_t>(t.format)))));
  }
  if (t.format != MessageFormat::raw) {
    if (fingerprint != t.fingerprint) {
      return std::make_exception_ptr(TypeMismatch(fmt::format(
          "{}: the {}-byte message was serialized from another type than the one it is received "
          "as (the message was discarded); send and receive the same type",
          where(), bytes)));
    }
    return nullptr;
  }
  if (t.elem_size > 1 && bytes % t.elem_size != 0) {
    return std::make_exception_ptr(TypeMismatch(fmt::format(
        "{}: the message is {} bytes, not a whole number of {}-byte elements (the message was "
        "discarded); send and receive the same element type",
        where(), bytes, t.elem_size)));
  }
  if (t.prepare == nullptr) {
    if (bytes > t.capacity) {
      return std::make_exception_ptr(TruncationError(
          bytes, t.capacity,
          fmt::format("{}: message is {} bytes, buffer holds {} (the message was discarded); "
                      "receive into a larger buffer or a std::vector",
                      where(), bytes, t.capacity)));
    }
    if (t.exact && bytes != t.capacity) {
      return std::make_exception_ptr(TypeMismatch(fmt::format(
          "{}: the message is {} bytes, the object received into is {} bytes (the message was "
          "discarded); receive into a std::span or std::vector for variable sizes",
          where(), bytes, t.capacity)));
    }
  }
  return nullptr;
}

std::byte* Engine::destination(Operation& op, std::size_t bytes) {
  if (op.target.format != MessageFormat::raw) {
    op.storage->resize(bytes);
    return op.storage->data();
  }
  if (op.target.prepare != nullptr) return op.target.prepare(op.target.ctx, bytes);
  return op.target.buffer;
}

// Decodes a serialized payload into the receive's object (op.status is set); a payload that
// does not decode becomes the receive's DeserializeError.
void Engine::decode_payload(Operation& op, int tag, std::span<const std::byte> payload) {
  if (op.target.finish == nullptr) return;
  std::optional<std::string> why;
  try {
    op.target.finish(op.target.ctx, payload);
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {  // a user's load() may throw anything: still this receive's error, never a lost frame
    why = "the type's load threw an exception that is not a std::exception";
  }
  if (why) {
    op.error = std::make_exception_ptr(DeserializeError(fmt::format(
        "rank {}: recv from rank {} ({}): the {}-byte {} payload could not be decoded: {}; "
        "check that sender and receiver serialize the same fields in the same order",
        op.comm->rank(), op.status.source, tag_text(tag), payload.size(),
        format_name(static_cast<std::uint8_t>(op.target.format)), *why)));
  }
}

void Engine::complete_recv(Operation& op, const Envelope& env, std::size_t bytes) {
  op.status = Status{comm_rank(*op.comm, env.source), Tag{env.tag}, bytes};
  if (op.target.format != MessageFormat::raw) {
    decode_payload(op, env.tag, std::span<const std::byte>(op.storage->data(), bytes));
  }
  op.done = true;
  ++completed_;
  if (trace_.on()) [[unlikely]] traced_recv_complete(op, env.source, bytes);
}

void Engine::complete_send(Operation& op) noexcept {
  op.queued = false;
  op.done = true;
  op.status = Status{comm_rank(*op.comm, op.peer), Tag{op.tag}, op.buffer.bytes};
  op.keep_alive.reset();
  ++completed_;
}

void Engine::fail(Operation& op, std::exception_ptr error) noexcept {
  unpost(op);
  if (op.queued) {
    auto& q = out_[static_cast<std::size_t>(op.peer)].queue;
    q.erase(std::find(q.begin(), q.end(), &op));
    if (q.empty()) --active_sends_;
    op.queued = false;
  }
  if (op.kind == Operation::Kind::recv && op.matched_source >= 0) {
    for (Transfer& t : in_[static_cast<std::size_t>(op.matched_source)].transfers) {
      if (t.op == &op) {
        t.op = nullptr;
        t.dest = nullptr;
      }
    }
  }
  op.error = std::move(error);
  op.done = true;
}

// ---- sending --------------------------------------------------------------------------------

void Engine::send_local(CommunicatorImpl& comm, int tag, const SendBuffer& b) {
  Envelope env{comm.context(), self_, tag};
  auto kind = static_cast<std::uint8_t>(b.format);
  const std::uint32_t seq = next_received_seq(self_);
  if (Operation* op = match_posted(env)) {
    unpost(*op);
    op->matched_source = self_;
    op->trace_seq = seq;
    if (std::exception_ptr err = validate(*op, env, kind, b.fingerprint, b.bytes)) {
      fail(*op, err);
      return;
    }
    std::byte* dst = destination(*op, b.bytes);
    transport::copy_bytes(dst, b.data, b.bytes);
    complete_recv(*op, env, b.bytes);
    return;
  }
  std::unique_ptr<std::byte[]> copy(new std::byte[b.bytes]);
  transport::copy_bytes(copy.get(), b.data, b.bytes);
  unexpected_.push_back(Unexpected{env, kind, b.fingerprint, b.bytes, std::move(copy), true, seq});
}

bool Engine::write_frame(Outgoing& o, int tag, std::uint32_t context, const SendBuffer& b,
                         bool large, bool split) noexcept {
  transport::FrameMeta meta{tag, context, static_cast<std::uint8_t>(b.format),
                            large ? kLarge : std::uint8_t{0}};
  const bool serialized = b.format != MessageFormat::raw;
  std::byte prefix[p2p::kFramePrefixBytes];
  std::size_t prefix_bytes = 0;
  if (large) {
    std::uint64_t total = b.bytes | (o.stream.nontemporal() ? p2p::kLargeNtBit : 0) |
                          (split ? p2p::kLargeSplitBit : 0);
    std::memcpy(prefix, &total, sizeof total);
    prefix_bytes = sizeof total;
  }
  if (serialized) {
    std::memcpy(prefix + prefix_bytes, &b.fingerprint, sizeof b.fingerprint);
    prefix_bytes += sizeof b.fingerprint;
  }
  if (split) {  // raw only
    const auto address = reinterpret_cast<std::uint64_t>(b.data);
    std::memcpy(prefix + prefix_bytes, &address, sizeof address);
    prefix_bytes += sizeof address;
  }
  std::span<const std::byte> data = large ? std::span<const std::byte>() : std::span(b.data, b.bytes);
  return o.ring.try_write(meta, {prefix, prefix_bytes}, data);
}

bool Engine::push_sends(int dest) {
  Outgoing& o = out_[static_cast<std::size_t>(dest)];
  bool wrote = false;
  while (!o.queue.empty()) {
    Operation& op = *o.queue.front();
    const SendBuffer& b = op.buffer;
    if (!op.header_sent) {
      if (b.bytes <= eager_max_) {
        if (!write_eager(o, op.tag, op.comm->context(), b)) break;
        wrote = true;
        o.queue.pop_front();
        complete_send(op);
        continue;
      }
      // The store mode of this message's stream (stream_mode.hpp), marked in its frame.
      o.stream.set_nontemporal(forced_nt_ >= 0 ? forced_nt_ == 1
                                               : b.bytes >= StreamModeChooser::kMinBytes &&
                                                     o.stream.requested_nt());
      const bool split = cross_memory_.on() && b.format == MessageFormat::raw && b.bytes >= kSplitMinBytes;
      if (!write_frame(o, op.tag, op.comm->context(), b, true, split)) break;
      op.header_sent = true;
      op.stream_from = op.streamed = 0;
      op.stream_end = b.bytes;
      wrote = true;
      if (split) {
        op.split = Operation::Split::offered;
        ++o.split_offers;
      }
    }
    if (op.split != Operation::Split::none) {
      if (advance_split(dest, op)) wrote = true;
      if (op.split != Operation::Split::none) break;  // waits for the receiver
    }
    // The stream part: the whole message, or what refused split copies left out (maybe none).
    if (op.streamed < op.stream_end) {
      std::size_t n = o.stream.write(b.data + op.streamed, op.stream_end - op.streamed,
                                     chunk_for(op.stream_end - op.stream_from));
      if (n != 0) {
        op.streamed += n;
        wrote = true;
      }
      if (op.streamed < op.stream_end) break;
    }
    o.queue.pop_front();
    complete_send(op);
  }
  if (o.queue.empty()) --active_sends_;
  if (wrote) segment_.wake(dest);
  return wrote;
}

// ---- split copies of large raw messages -------------------------------------------------------
//
// A raw message of kSplitMinBytes or more is offered as a split copy: its header frame carries
// the sender's buffer address (frame.hpp). If a posted receive takes it, the receiver answers
// with its buffer's address (ConsumerLine::split_answer, split_address), then reads the first
// half, [0, split_at(total)), straight out of the sender's buffer while the sender writes the
// second half straight into the receiver's (process_vm_readv / process_vm_writev, both cores at
// once, one copy of each byte). Each says when its half is in (split_read, split_written); the
// send completes once the receiver no longer reads its buffer, the receive once the sender no
// longer writes into it. A message nobody has posted for yet (it goes to the unexpected queue),
// a receive that refuses it, or a rank that does not offer (COHORT_CMA=0) gets the answer
// "stream it", and the message streams as any large one. A copy the kernel refuses turns this
// rank's offers off for good and the half it left streams in the same message: the halves'
// outcomes say which part, [lo, hi), still goes through the stream. One offer per pair is in
// flight at a time (sends to a destination leave in order), so answers are matched to offers by
// their number.

bool Engine::split_copy(bool to, int peer, void* remote, void* local, std::size_t bytes) noexcept {
  const pid_t pid = segment_.slot(peer).pid.load(std::memory_order_relaxed);
  return cross_memory_.copy(to, peer, pid, remote, local, bytes) == transport::CrossMemory::done;
}

// The sender's side: the queue's front operation, its header frame sent. Returns whether
// anything moved; op.split is none once the copies are over, with [stream_from, stream_end)
// what still streams.
bool Engine::advance_split(int dest, Operation& op) {
  Outgoing& o = out_[static_cast<std::size_t>(dest)];
  const SendBuffer& b = op.buffer;
  const std::size_t half = split_at(b.bytes);
  bool moved = false;
  if (op.split == Operation::Split::offered) {
    const std::uint64_t answer = o.pair.consumer->split_answer.load(std::memory_order_acquire);
    if ((answer >> 1) != o.split_offers) return false;  // not answered yet
    if ((answer & 1) == 0) {  // "stream it"
      op.split = Operation::Split::none;
      return true;
    }
    auto* remote = reinterpret_cast<std::byte*>(o.pair.consumer->split_address.load(std::memory_order_relaxed));
    op.split_wrote = split_copy(true, dest, remote + half, const_cast<std::byte*>(b.data) + half,
                                b.bytes - half);
    o.pair.producer->split_written.store((o.split_offers << 1) | (op.split_wrote ? 1u : 0u),
                                         std::memory_order_release);
    segment_.wake(dest);
    op.split = Operation::Split::written;
    moved = true;
  }
  // Written: the receiver may still be reading b.data until it says its half is in.
  const std::uint64_t read = o.pair.consumer->split_read.load(std::memory_order_acquire);
  if ((read >> 1) != o.split_offers) return moved;
  const bool read_ok = (read & 1) != 0;
  op.split = Operation::Split::none;
  op.stream_from = op.streamed = read_ok ? half : 0;
  op.stream_end = op.split_wrote ? half : b.bytes;
  if (op.stream_from >= op.stream_end) {
    op.stream_from = op.streamed = op.stream_end = 0;
    ++split_copies_;
  }
  return true;
}

// The sender's outcome of its latest offer, kept in that offer's transfer: the next offer's
// outcome replaces the word, and the transfer may still wait behind others in the queue. (The
// sender stores an offer's outcome before it can make the next offer, and that offer's frame
// comes after it, so noting it whenever a new offer arrives loses none.)
void Engine::note_written(Incoming& in) noexcept {
  const std::uint64_t w = in.pair.producer->split_written.load(std::memory_order_acquire);
  for (auto it = in.transfers.rbegin(); it != in.transfers.rend(); ++it) {
    if (it->split && it->offer == (w >> 1)) {
      if (!it->written_known) {
        it->written_known = true;
        it->wrote = (w & 1) != 0;
      }
      return;
    }
  }
}

// The receiver's side, once its half is done (Transfer::split): waits for the sender's half,
// then leaves in `t` what still streams (nothing when both copies went through).
bool Engine::finish_split(int source, Transfer& t) {
  note_written(in_[static_cast<std::size_t>(source)]);
  if (!t.written_known) return false;
  const bool wrote = t.wrote;
  const std::size_t half = split_at(t.message_bytes);
  const std::size_t lo = t.read_ok ? half : 0;
  const std::size_t hi = wrote ? half : t.message_bytes;
  t.split = false;
  if (lo >= hi) {
    t.total = t.remaining = 0;
    ++split_copies_;
  } else {
    t.dest += lo;
    t.total = t.remaining = hi - lo;
  }
  return true;
}

void Engine::traced_send(CommunicatorImpl& comm, int dest, int tag, const SendBuffer& b) {
  TraceScope scope(*this, transport::TraceKind::send, dest, tag, comm.context(), b.bytes,
                   next_sent_seq(dest, b.bytes));
  send_now(comm, dest, tag, b);
  scope.done();
}

void Engine::send_now(CommunicatorImpl& comm, int dest, int tag, const SendBuffer& b) {
  if (dest == self_) {
    send_local(comm, tag, b);
    return;
  }
  Outgoing& o = out_[static_cast<std::size_t>(dest)];
  if (o.queue.empty() && b.bytes <= eager_max_) {
    if (write_eager(o, tag, comm.context(), b)) {
      segment_.wake(dest);
      return;
    }
  }
  Operation op;
  op.kind = Operation::Kind::send;
  op.engine = this;
  op.comm = &comm;
  op.peer = dest;
  op.tag = tag;
  op.buffer = b;
  struct Abandon {
    Engine& e;
    Operation& op;
    ~Abandon() {
      if (!op.done) e.fail(op, nullptr);
    }
  } guard{*this, op};
  if (o.queue.empty()) ++active_sends_;
  o.queue.push_back(&op);
  op.queued = true;
  push_sends(dest);
  if (!op.done) {
    Operation* ops[] = {&op};
    block(ops, [&] { return op.done; });
  }
  if (op.error) std::rethrow_exception(op.error);
}

Request Engine::traced_isend(CommunicatorImpl& comm, int dest, int tag, const SendBuffer& b,
                             std::shared_ptr<const void> keep_alive) {
  // An eager isend is an instant (one clock read); a larger one may move data before it returns.
  TraceScope scope(*this, transport::TraceKind::isend, dest, tag, comm.context(), b.bytes,
                   next_sent_seq(dest, b.bytes), nullptr, b.bytes <= eager_max_);
  Request r = isend_now(comm, dest, tag, b, std::move(keep_alive));
  scope.done();
  return r;
}

Request Engine::isend_now(CommunicatorImpl& comm, int dest, int tag, const SendBuffer& b,
                          std::shared_ptr<const void> keep_alive) {
  Status done_status{comm_rank(comm, dest), Tag{tag}, b.bytes};
  if (dest == self_) {
    send_local(comm, tag, b);
    return Request::completed(done_status);
  }
  Outgoing& o = out_[static_cast<std::size_t>(dest)];
  if (o.queue.empty() && b.bytes <= eager_max_) {
    if (write_eager(o, tag, comm.context(), b)) {
      auto d = static_cast<std::size_t>(dest);
      if (segment_.slot(dest).sleeping.load(std::memory_order_relaxed) != 0) {
        segment_.wake(dest);
      } else if (!is_unwoken_[d]) {
        is_unwoken_[d] = 1;
        unwoken_.push_back(dest);
      }
      return Request::completed(done_status);
    }
  }
  Operation* op = acquire();
  op->kind = Operation::Kind::send;
  op->comm = &comm;
  op->peer = dest;
  op->tag = tag;
  op->buffer = b;
  op->keep_alive = std::move(keep_alive);
  if (o.queue.empty()) ++active_sends_;
  o.queue.push_back(op);
  op->queued = true;
  push_sends(dest);
  return Request(op);
}

// ---- receiving ------------------------------------------------------------------------------

static_assert(kFrameLarge == kLarge);

void throw_corrupt_frame(int self, int source, const std::string& what) {
  throw DeserializeError(fmt::format(
      "rank {}: a message from rank {} has a corrupt header ({}); the shared memory between the "
      "two ranks was overwritten (a stray write in either rank?)", self, source, what));
}

bool Engine::on_frame(int source, const transport::FrameHeader& h, bool drain_all) {
  Incoming& in = in_[static_cast<std::size_t>(source)];
  Envelope env{h.context, source, h.tag};
  // Every frame taken off the ring (matched, failed or queued as unexpected) is the next message
  // of this pair; a frame left in the ring is numbered when it is taken.
  // Checked layout of the frame's first bytes (runtime/p2p/frame.hpp; fuzzed).
  std::byte prefix[p2p::kFramePrefixBytes];
  std::size_t prefix_bytes = 0;
  if (h.kind() != static_cast<std::uint8_t>(MessageFormat::raw) || (h.flags() & kLarge) != 0) {
    prefix_bytes = std::min(h.bytes(), sizeof prefix);
    in.ring.read(prefix, prefix_bytes);
  }
  const p2p::FrameLayout f = p2p::decode_frame(h, {prefix, prefix_bytes}, layout().ring_bytes, self_, source);
  const bool large = f.large;
  const std::size_t total = f.total;
  const std::size_t data_at = f.data_at;
  const std::uint32_t fingerprint = f.fingerprint;
  // A split offer gets exactly one answer, when its frame is taken off the ring.
  auto answer_split = [&](std::byte* accept_into) {
    note_written(in);  // before this offer's outcome can replace the previous one's
    ++in.split_offers;
    if (accept_into != nullptr) {
      in.pair.consumer->split_address.store(reinterpret_cast<std::uint64_t>(accept_into),
                                            std::memory_order_relaxed);
    }
    in.pair.consumer->split_answer.store((in.split_offers << 1) | (accept_into != nullptr ? 1u : 0u),
                                         std::memory_order_release);
    segment_.wake(source);
  };
  if (Operation* op = match_posted(env)) {
    unpost(*op);
    op->matched_source = source;
    op->trace_seq = next_received_seq(source);
    if (std::exception_ptr err = validate(*op, env, h.kind(), fingerprint, total)) {
      fail(*op, err);
      if (large) {
        if (f.split) answer_split(nullptr);
        in.transfers.push_back(Transfer{env, nullptr, total, total, nullptr, nullptr, f.nt});
        ++transfers_;
      }
      return true;
    }
    std::byte* dst = destination(*op, total);
    if (!large) {
      if (total != 0) in.ring.read(dst, total, data_at);
      complete_recv(*op, env, total);
      return true;
    }
    // A split offer of a large message: take it or stream it, whichever this size class of
    // messages from this source measured faster (SplitChoices), or take it always
    // (COHORT_P2P_SPLIT=1) or never (=0).
    const bool choice = f.split && cross_memory_.on() && forced_split_ < 0;
    const bool take_split = f.split && cross_memory_.on() &&
                            (choice ? !in.splits.of(total).want() : forced_split_ != 0);
    if (take_split) {
      answer_split(dst);
      Transfer t{env, dst, total, total, op, nullptr, f.nt};
      t.split = true;
      t.split_choice = choice;
      t.started_ns = choice ? transport::trace_clock_ns() : 0;
      t.offer = in.split_offers;
      t.message_bytes = total;
      t.read_ok = split_copy(false, source, reinterpret_cast<void*>(f.address), dst, split_at(total));
      in.pair.consumer->split_read.store((t.offer << 1) | (t.read_ok ? 1u : 0u), std::memory_order_release);
      segment_.wake(source);
      in.transfers.push_back(t);
      ++transfers_;
    } else {
      if (f.split) answer_split(nullptr);
      Transfer t{env, dst, total, total, op, nullptr, f.nt};
      t.split_choice = choice;
      in.transfers.push_back(t);
      ++transfers_;
    }
    return true;
  }
  // Nobody here wants it (yet): leave it in the ring, where a receive posted later takes it
  // directly. Drained when a posted receive or probe might want a later message from this
  // source, or when this rank has waited a while (then nothing can deadlock on a full ring).
  if (!drain_all && !should_drain(source)) return false;
  std::unique_ptr<std::byte[]> data(new std::byte[total]);
  if (!large && total != 0) in.ring.read(data.get(), total, data_at);
  Unexpected& e = unexpected_.emplace_back(Unexpected{env, h.kind(), fingerprint, total,
                                                      std::move(data), !large,
                                                      next_received_seq(source)});
  if (large && f.split) answer_split(nullptr);
  if (large) {
    in.transfers.push_back(Transfer{env, e.data.get(), total, total, nullptr, &e, f.nt});
    ++transfers_;
  }
  return true;
}

bool Engine::pump_stream(int source) {
  Incoming& in = in_[static_cast<std::size_t>(source)];
  bool did = false;
  while (!in.transfers.empty()) {
    Transfer& t = in.transfers.front();
    if (t.split) {
      if (!finish_split(source, t)) break;  // the sender's half is not in yet
      did = true;
      if (t.split_choice && t.remaining == 0) {  // both halves went through
        in.splits.of(t.message_bytes)
            .record(false, t.message_bytes, transport::trace_clock_ns() - t.started_ns);
      }
    }
    if (t.remaining != 0) {
      // (What a split copy left is not timed: the choosers compare whole messages.)
      const bool timed = forced_nt_ < 0 && t.message_bytes == 0 && t.total >= StreamModeChooser::kMinBytes;
      if ((timed || t.split_choice) && t.started_ns == 0) t.started_ns = transport::trace_clock_ns();
      std::byte* dst = t.dest != nullptr ? t.dest + (t.total - t.remaining) : nullptr;
      std::size_t got = in.stream.read(dst, t.remaining, chunk_for(t.total));
      if (got == 0) break;
      did = true;
      t.remaining -= got;
      if (in.stream.producer_needs_wake()) segment_.wake(source);
      if (t.remaining != 0) break;
      if ((timed || t.split_choice) && in.stream.warm_for(t.total)) {
        const std::uint64_t ns = transport::trace_clock_ns() - t.started_ns;
        const bool counts = stream_time_counts_for_split(timed, t.nt, in.modes);
        if (timed) in.stream.request_nt(in.modes.record(t.nt, t.total, ns));
        if (t.split_choice && t.message_bytes == 0 && counts) {
          in.splits.of(t.total).record(true, t.total, ns);
        }
      }
    }
    Transfer done = t;
    in.transfers.pop_front();
    --transfers_;
    if (done.message_bytes != 0) done.total = done.message_bytes;
    if (done.op != nullptr) complete_recv(*done.op, done.env, done.total);
    else if (done.entry != nullptr) done.entry->complete = true;
  }
  return did;
}

// The fast paths of the usual small message: an eager frame that the oldest posted receive
// takes and accepts. They return false, having changed nothing, for anything else (a large
// frame, another receive first in line, a size, format or type the receive refuses, a frame the
// checks of decode_frame would reject): on_frame then does the general matching, checks and
// errors.

// True when the oldest posted receive takes an eager frame of `source` with this envelope and
// format (the envelope test of match_posted, for the front only).
bool Engine::front_takes(int source, const transport::FrameHeader& h, std::size_t bytes) const noexcept {
  if (posted_.empty() || bytes > eager_max_) return false;  // within a quarter of the ring
  const Operation& op = *posted_.front();
  return static_cast<std::uint8_t>(op.target.format) == h.kind() && op.comm->context() == h.context &&
         (op.peer < 0 || op.peer == source) && (op.tag < 0 || op.tag == h.tag);
}

// unpost() of the front receive, inline, and the envelope half of complete_recv().
Operation& Engine::take_front(int source, const transport::FrameHeader& h, std::size_t bytes) noexcept {
  Operation& op = *posted_.front();
  posted_.pop_front();
  op.posted = false;
  if (op.peer < 0) --posted_any_;
  else --posted_from_[static_cast<std::size_t>(source)];
  op.matched_source = source;
  op.trace_seq = next_received_seq(source);
  op.status = Status{op.comm->context() == 0 ? source : comm_rank(*op.comm, source), Tag{h.tag}, bytes};
  return op;
}

void Engine::finish_taken(Operation& op, int source, std::size_t bytes) noexcept {
  op.done = true;
  ++completed_;
  if (trace_.on()) [[unlikely]] traced_recv_complete(op, source, bytes);
}

bool Engine::take_eager_raw(int source, const transport::FrameHeader& h) {
  if ((h.info >> 13) != 0) return false;  // kind raw, no flags
  const std::size_t bytes = h.bytes();
  if (!front_takes(source, h, bytes)) return false;
  const RecvTarget& t = posted_.front()->target;
  if (t.elem_size > 1 && bytes % t.elem_size != 0) return false;
  if (t.prepare == nullptr && (bytes > t.capacity || (t.exact && bytes != t.capacity))) return false;
  Operation& op = take_front(source, h, bytes);
  std::byte* dst = t.prepare == nullptr ? t.buffer : t.prepare(t.ctx, bytes);
  in_[static_cast<std::size_t>(source)].ring.read(dst, bytes);
  finish_taken(op, source, bytes);
  return true;
}

// A serialized eager frame: [fingerprint (4)] data (frame.hpp). When the frame does not wrap
// around the ring's end, the payload is decoded where it lies, without the copy into the
// receive's storage that on_frame makes: the slots stay ours until consume(), and the decoders
// check every length against the span they are given (serialization.hpp), so a peer that wrote
// nonsense gets a DeserializeError, as on the general path.
bool Engine::take_eager_serialized(int source, const transport::FrameHeader& h) {
  const std::uint8_t kind = h.kind();
  if (kind == 0 || kind > 2 || h.flags() != 0) return false;
  constexpr std::size_t fp = sizeof(std::uint32_t);
  if (h.bytes() < fp) return false;
  const std::size_t bytes = h.bytes() - fp;
  if (!front_takes(source, h, h.bytes())) return false;
  const transport::RingConsumer& ring = in_[static_cast<std::size_t>(source)].ring;
  std::uint32_t fingerprint = 0;
  ring.read(reinterpret_cast<std::byte*>(&fingerprint), fp);
  if (fingerprint != posted_.front()->target.fingerprint) return false;
  Operation& op = take_front(source, h, bytes);
  std::span<const std::byte> payload = ring.contiguous(bytes, fp);
  if (payload.data() == nullptr) {  // wraps: one copy into the receive's storage
    op.storage->resize(bytes);
    ring.read(op.storage->data(), bytes, fp);
    payload = {op.storage->data(), bytes};
  }
  decode_payload(op, h.tag, payload);
  finish_taken(op, source, bytes);
  return true;
}

bool Engine::poll_source(int source, bool drain_all) {
  Incoming& in = in_[static_cast<std::size_t>(source)];
  bool did = false;
  // A frame that no posted receive or probe could take stays in the ring unread (on_frame would
  // leave it there), so the ring's lines are not even pulled over.
  if (drain_all || should_drain(source)) {
    while (const transport::FrameHeader* h = in.ring.peek()) {
      if (!take_eager_raw(source, *h) && !take_eager_serialized(source, *h) &&
          !on_frame(source, *h, drain_all)) {
        break;
      }
      in.ring.consume(h);
      did = true;
    }
    if (did) {
      in.ring.publish();
      if (in.ring.producer_needs_wake()) segment_.wake(source);
    }
  }
  if (!in.transfers.empty() && pump_stream(source)) did = true;
  return did;
}

bool Engine::progress(bool drain_all) {
  bool did = false;
  if (!unwoken_.empty()) flush_wakes();
  if (active_sends_ > 0) {
    for (int d = 0; d < size_; ++d) {
      if (!out_[static_cast<std::size_t>(d)].queue.empty() && push_sends(d)) did = true;
    }
  }
  const std::size_t n = sources_.size();
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t k = rr_ + i;
    if (k >= n) k -= n;
    if (poll_source(sources_[k], drain_all)) did = true;
  }
  if (n != 0 && ++rr_ == n) rr_ = 0;
  return did;
}

Status Engine::recv(CommunicatorImpl& comm, int source, int tag, const RecvTarget& t) {
  Operation op;
  op.kind = Operation::Kind::recv;
  op.engine = this;
  op.comm = &comm;
  op.peer = source;
  op.tag = tag;
  op.target = t;
  op.storage = &scratch_;
  op.blocking = true;
  if (trace_.on()) [[unlikely]] {
    TraceScope scope(*this, transport::TraceKind::recv, source, tag, comm.context(), 0, 0, &op);
    Status st = receive(op);
    scope.done();
    return st;
  }
  return receive(op);
}

Status Engine::receive(Operation& op) {
  post(op);
  if (!op.done) {
    struct Abandon {
      Engine& e;
      Operation& op;
      ~Abandon() {
        if (!op.done) e.fail(op, nullptr);
      }
    } guard{*this, op};
    progress(false);
    if (!op.done) {
      Operation* ops[] = {&op};
      block(ops, [&] { return op.done; });
    }
  }
  if (op.error) std::rethrow_exception(op.error);
  return op.status;
}

Request Engine::irecv(CommunicatorImpl& comm, int source, int tag, const RecvTarget& t) {
  Operation* op = acquire();
  op->kind = Operation::Kind::recv;
  op->comm = &comm;
  op->peer = source;
  op->tag = tag;
  op->target = t;
  op->storage = &op->own_storage;
  // Posting only: the frames waiting in the rings are matched by the next progress call (a
  // wait, a test, any blocking call), in post order, so a window of irecvs costs one poll.
  post(*op);
  return Request(op);
}

std::optional<Status> Engine::iprobe(CommunicatorImpl& comm, int source, int tag) {
  if (source < 0) ++probing_any_;
  else ++probing_from_[static_cast<std::size_t>(source)];
  struct Unprobe {
    Engine& e;
    int source;
    ~Unprobe() {
      if (source < 0) --e.probing_any_;
      else --e.probing_from_[static_cast<std::size_t>(source)];
    }
  } unprobe{*this, source};
  progress(false);
  for (const Unexpected& e : unexpected_) {
    if (e.env.context == comm.context() && (source < 0 || source == e.env.source) &&
        (tag < 0 || tag == e.env.tag)) {
      return Status{comm_rank(comm, e.env.source), Tag{e.env.tag}, e.bytes};
    }
  }
  return std::nullopt;
}

Status Engine::probe(CommunicatorImpl& comm, int source, int tag) {
  if (auto st = iprobe(comm, source, tag)) return *st;
  std::optional<TraceScope> scope;
  if (trace_.on()) [[unlikely]] {
    scope.emplace(*this, transport::TraceKind::probe, source, tag, comm.context(), 0, 0);
  }
  std::optional<Status> found;
  auto ready = [&] {
    found = iprobe(comm, source, tag);
    return found.has_value();
  };
  auto lost = [&]() -> int {
    if (source >= 0) return source != self_ && !alive(source) ? source : -1;
    int other = -1;
    for (int w : comm.world_ranks()) {
      if (w == self_) continue;
      if (alive(w)) return -1;
      other = w;
    }
    return other;
  };
  auto on_lost = [&](int peer) {
    throw PeerLost(peer, fmt::format(
        "rank {}: probe from {} ({}): rank {} has ended without sending a matching message; "
        "check that every probe has a matching send",
        comm.rank(), source < 0 ? std::string("any rank") : fmt::format("rank {}", comm_rank(comm, source)),
        tag_text(tag), comm_rank(comm, peer)));
  };
  waiter_.wait(ready, transport::WaitFor{transport::WaitOp::probe, source, tag, comm.context()},
               lost, on_lost);
  if (scope) scope->done();
  return *found;
}

// ---- waiting --------------------------------------------------------------------------------

int Engine::lost_peer(const Operation& op) {
  if (op.kind == Operation::Kind::send) {
    if (!alive(op.peer)) {
      progress(true);
      if (!op.done) return op.peer;
    }
    return -1;
  }
  int src = op.matched_source >= 0 ? op.matched_source : op.peer;
  if (src == self_) return -1;
  if (src >= 0) {
    if (!alive(src)) {
      progress(true);
      if (!op.done) return src;
    }
    return -1;
  }
  int other = -1;
  for (int w : op.comm->world_ranks()) {
    if (w == self_) continue;
    if (alive(w)) return -1;
    other = w;
  }
  if (other < 0) return -1;
  progress(true);
  return op.done ? -1 : other;
}

template <class Done>
void Engine::block(std::span<Operation* const> ops, Done&& done) {
  struct Blocking {
    bool& flag;
    bool was;
    explicit Blocking(bool& f) : flag(f), was(f) { flag = true; }
    ~Blocking() { flag = was; }
  } blocking{blocking_};
  // Polls before this wait counts as long and drains its rings (not the whole spin budget:
  // a sender blocked on a full ring should not wait out this rank's ~2 ms of spinning).
  const std::uint64_t patience = waiter_.policy().patience;
  // With a core of our own, poll hot (no pause) for a few microseconds first: a cross-core
  // hand-off takes ~50-200 ns and a pause instruction can cost ~40 ns of it.
  if (patience >= kHotPollsMinPatience) {
    for (int i = 0; i < kHotPolls; ++i) {
      progress(false);
      if (done()) return;
    }
  }
  std::uint64_t polls = 0;
  Operation* lost_op = nullptr;
  auto ready = [&] { return progress(++polls > patience) || done(); };
  auto lost = [&]() -> int {
    for (Operation* op : ops) {
      if (op == nullptr || op->done) continue;
      int p = lost_peer(*op);
      if (p >= 0) {
        lost_op = op;
        return p;
      }
    }
    return -1;
  };
  auto on_lost = [&](int peer) {
    Operation& op = *lost_op;
    const bool sending = op.kind == Operation::Kind::send;
    const bool any = !sending && op.peer < 0 && op.matched_source < 0;
    std::string what = fmt::format(
        "rank {}: {} {} ({}): {}; check that every {} has a matching {}", op.comm->rank(),
        sending ? "send to" : "recv from",
        any ? std::string("any rank") : fmt::format("rank {}", comm_rank(*op.comm, peer)),
        tag_text(op.tag),
        any ? std::string("every other rank has ended without sending a matching message")
            : fmt::format("rank {} has ended {}", comm_rank(*op.comm, peer),
                          sending ? "before receiving it" : "without sending a matching message"),
        sending ? "send" : "recv", sending ? "recv" : "send");
    auto err = std::make_exception_ptr(PeerLost(comm_rank(*op.comm, peer), what));
    fail(op, err);
    std::rethrow_exception(err);
  };
  const Operation* first = nullptr;
  for (Operation* op : ops) {
    if (op != nullptr && !op->done) {
      first = op;
      break;
    }
  }
  // Completions become visible in the rank's slot when it waits (hang reports): a store to that
  // line per message would bounce it between the cores, since senders read `sleeping` there.
  segment_.slot(self_).progress.store(completed_, std::memory_order_relaxed);
  transport::WaitFor what{};
  if (first != nullptr) {
    what.op = first->kind == Operation::Kind::send ? transport::WaitOp::send : transport::WaitOp::recv;
    what.peer = first->peer;
    what.tag = first->tag;
    what.comm = first->comm->context();
  }
  // A wait that moves data is not idle: a long transfer (a window of large messages) keeps its
  // rank polling instead of spending the Waiter's spin budget and falling asleep mid-transfer
  // (then every chunk the peer publishes costs a futex wake). The budget restarts whenever a
  // poll moved something; only polls that find nothing to do count toward yielding and sleeping.
  for (;;) {
    waiter_.wait(ready, what, lost, on_lost);
    if (done()) return;
  }
}

void Engine::wait(Operation& op) {
  if (!op.done) {
    progress(false);
    if (!op.done) {
      Operation* ops[] = {&op};
      block(ops, [&] { return op.done; });
    }
  }
  if (op.error) std::rethrow_exception(op.error);
}

void Engine::wait_all(std::span<Operation* const> ops) {
  auto all = [&] {
    return std::all_of(ops.begin(), ops.end(), [](const Operation* o) { return o == nullptr || o->done; });
  };
  if (all()) return;
  progress(false);
  if (!all()) block(ops, all);
}

std::size_t Engine::wait_any(std::span<Operation* const> ops) {
  auto any = [&] {
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (ops[i] != nullptr && ops[i]->done) return i;
    }
    return ops.size();
  };
  if (std::size_t i = any(); i < ops.size()) return i;
  progress(false);
  if (any() == ops.size()) block(ops, [&] { return any() < ops.size(); });
  return any();
}

}  // namespace cohort::p2p
