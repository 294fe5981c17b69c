// MPI backend: point-to-point messaging and cohort::Request over MPI.
//
// Wire format: one MPI message per Cohort message, tag = the Cohort tag, on the communicator's
// own MPI communicator. Raw payloads go straight from the user's buffer as MPI_BYTE (no copy, no
// header). Serialized payloads are the encoding followed by a 16-byte trailer (magic, format,
// type fingerprint), so a receive can check what it gets; Status::bytes is then the size on the
// wire (encoding + 16), the same for probe and recv.
//
// Open MPI 4.1.4 writes past a receive buffer when a message longer than the buffer arrives by its
// rendezvous protocol (above ~4 KiB on one node: the CMA get fetches the sender's whole length;
// eager messages are cut correctly). Checked with guard bytes after the buffer: 4096 bytes into
// an 8-byte receive wrote 4088 bytes past it. So MPI is never given a buffer a message could
// overrun:
// - A blocking receive of raw bytes into a buffer of at most 4 KiB, with no earlier non-blocking
//   receive still waiting, is an MPI_Recv of count INT_MAX into a per-thread scratch reservation
//   of INT_MAX bytes (address space only; no Cohort message is larger, to_count), then a copy into
//   the caller's buffer. That is plain MPI's pre-posted receive; a message that does not fit is
//   reported with its exact size as cohort::TruncationError and discarded.
// - Every other receive learns the size first with a matched probe (MPI_Mprobe / MPI_Improbe,
//   then MPI_Mrecv / MPI_Imrecv on the message it matched: thread-safe, and any-source receives
//   of unknown size cannot race with another receive); a message larger than the buffer is
//   received into scratch memory and reported as cohort::TruncationError.
//
// Receives match in the order they were posted: pending non-blocking receives are probed in post
// order, a receive is not probed while an earlier pending one that could match the same message
// is still unmatched, and a blocking receive waits behind pending ones. A blocking send to
// oneself, or of more than 4040 bytes (Open MPI's eager size on one node), is buffered: a copy
// sent with MPI_Isend and reaped later, so that it returns before the receive is posted, as on
// the shared-memory backend (two ranks may both send first). isend never copies a raw payload.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "cohort/errors.hpp"
#include "cohort/p2p.hpp"
#include "runtime/complete_requests.hpp"
#include "runtime/backend_mpi/mpi.hpp"
#include "runtime/platform/shared_memory.hpp"
#include "runtime/transport/copy.hpp"

namespace cohort::detail {

/// A pending non-blocking send or receive (the state behind a cohort::Request).
struct Operation {
  enum class Kind : std::uint8_t { send, recv };
  Kind kind = Kind::recv;
  bool done = false;
  bool matched = false;  // recv: MPI_Imrecv started (or the message was taken)
  CommunicatorImpl* comm = nullptr;
  int peer = -1;  // comm rank, or -1 for any source
  int tag = -1;   // -1: any tag
  MPI_Request request = MPI_REQUEST_NULL;
  Status status;
  std::exception_ptr error;
  RecvTarget target;
  std::vector<std::byte> wire;  // serialized send, or a receive's scratch (serialized, truncated)
  std::byte* dest = nullptr;    // where the matched receive lands
  std::size_t bytes = 0;        // matched receive: message size
  std::shared_ptr<const void> keep_alive;
};

void OperationDeleter::operator()(Operation* op) const noexcept { delete op; }

namespace {

using backend_mpi::check;
using backend_mpi::mpi_comm;

// The largest message Open MPI 4.1.4 sends eagerly on one node (btl_vader_eager_limit 4096 minus
// its headers: measured, an MPI_Isend of 4041 bytes does not complete before its receive is
// posted). A larger standard-mode send waits for its receive.
constexpr std::size_t kBufferedSendBytes = 4040;
constexpr std::size_t kScratchRecvBytes = 4096;   // blocking raw receives this small: the scratch
constexpr std::size_t kScratchKeepBytes = 64 << 10;  // scratch pages kept after a large message
constexpr std::uint64_t kTrailerMagic = 0xC0407752'53E2A11DULL;

struct Trailer {
  std::uint64_t magic;
  std::uint32_t fingerprint;
  std::uint8_t format;
  std::uint8_t pad[3];
};
static_assert(sizeof(Trailer) == 16);

const char* format_name(MessageFormat f) noexcept {
  switch (f) {
    case MessageFormat::raw: return "raw bytes";
    case MessageFormat::cereal: return "cereal";
    case MessageFormat::boost: return "Boost.Serialization";
  }
  return "unknown";
}

std::string tag_text(int tag) { return tag < 0 ? std::string("any tag") : fmt::format("tag {}", tag); }

[[noreturn, gnu::cold]] void bad_peer(const CommunicatorImpl& comm, int peer, bool any_ok, const char* op) {
  throw InvalidArgument(fmt::format(
      "rank {}: {} rank {}: no such rank (the communicator has ranks 0 .. {}{})", comm.rank(), op,
      peer, comm.size() - 1, any_ok ? ", or cohort::any_source" : ""));
}

[[noreturn, gnu::cold]] void bad_tag(const CommunicatorImpl& comm, Tag tag, bool any_ok, const char* op, int peer) {
  int t = tag.value();
  throw InvalidArgument(fmt::format(
      "rank {}: {} rank {}: tag {} is out of range (tags are 0 .. {}{}; negative tags are "
      "reserved)",
      comm.rank(), op, peer, t, Tag::kMax, any_ok ? ", or cohort::any_tag" : ""));
}

inline void check_peer(const CommunicatorImpl& comm, int peer, bool any_ok, const char* op) {
  if (peer >= 0 && peer < comm.size()) [[likely]] return;
  if (any_ok && peer == any_source) return;
  bad_peer(comm, peer, any_ok, op);
}

inline void check_tag(const CommunicatorImpl& comm, Tag tag, bool any_ok, const char* op, int peer) {
  int t = tag.value();
  if (t >= 0 && t <= Tag::kMax) [[likely]] return;
  if (any_ok && t == any_tag.value()) return;
  bad_tag(comm, tag, any_ok, op, peer);
}

int mpi_source(int source) { return source == any_source ? MPI_ANY_SOURCE : source; }
int mpi_tag(int tag) { return tag < 0 ? MPI_ANY_TAG : tag; }

// ---- process-wide state (guarded: several threads may use different communicators) -----------

struct Detached {  // a buffered send (to self, or above the eager size)
  MPI_Request request;
  std::unique_ptr<std::byte[]> data;  // uninitialised until the copy
};

struct State {
  std::recursive_mutex mutex;
  std::deque<Detached> detached;
  std::vector<Operation*> pending;  // unmatched receives, in post order

  void pending_changed() noexcept;
};

// State::pending.size(), readable without the mutex or the State (the blocking receive's fast
// path). A receive that another thread posts at the same moment is unordered with it anyway, as
// in MPI.
constinit std::atomic<std::size_t> g_pending_count{0};

void State::pending_changed() noexcept { g_pending_count.store(pending.size(), std::memory_order_release); }

State& state() {
  static State s;
  return s;
}

void reap_detached(State& s) {
  while (!s.detached.empty()) {
    int flag = 0;
    MPI_Test(&s.detached.front().request, &flag, MPI_STATUS_IGNORE);
    if (flag == 0) return;
    s.detached.pop_front();
  }
}

/// The bytes a send puts on the wire: the user's buffer (raw) or encoding + trailer (copied
/// into `wire`).
std::span<const std::byte> wire_bytes(const SendBuffer& b, std::vector<std::byte>& wire) {
  if (b.format == MessageFormat::raw) return {b.data, b.bytes};
  Trailer t{kTrailerMagic, b.fingerprint, static_cast<std::uint8_t>(b.format), {0, 0, 0}};
  wire.resize(b.bytes + sizeof t);
  transport::copy_bytes(wire.data(), b.data, b.bytes);
  std::memcpy(wire.data() + b.bytes, &t, sizeof t);
  return wire;
}

/// Sends a copy of `bytes` with MPI_Isend and returns at once (reaped later).
void send_buffered(CommunicatorImpl& comm, int dest, int tag, std::span<const std::byte> bytes) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  reap_detached(s);
  int count = backend_mpi::to_count(comm, bytes.size(), "send");
  Detached d{MPI_REQUEST_NULL, std::make_unique_for_overwrite<std::byte[]>(bytes.size())};
  transport::copy_bytes(d.data.get(), bytes.data(), bytes.size());
  check(MPI_Isend(d.data.get(), count, MPI_BYTE, dest, tag, mpi_comm(comm), &d.request), comm, "send");
  s.detached.push_back(std::move(d));
}

// ---- receive side ----------------------------------------------------------------------------

std::string where(const CommunicatorImpl& comm, int source, int tag) {
  return fmt::format("rank {}: recv from rank {} ({})", comm.rank(), source, tag_text(tag));
}

std::string where(const Operation& op, int source, int tag) { return where(*op.comm, source, tag); }

/// What a message of `bytes` is against the receive `t` (its size only). Returns the error, or
/// nullptr.
std::exception_ptr validate_size(const CommunicatorImpl& comm, const RecvTarget& t, int source,
                                 int tag, std::size_t bytes) {
  if (t.format != MessageFormat::raw) {
    if (bytes < sizeof(Trailer)) {
      return std::make_exception_ptr(TypeMismatch(fmt::format(
          "{}: the message was sent as {} and is received as {} (the message was discarded); "
          "send and receive the same type",
          where(comm, source, tag), format_name(MessageFormat::raw), format_name(t.format))));
    }
    return nullptr;
  }
  if (t.elem_size > 1 && bytes % t.elem_size != 0) {
    return std::make_exception_ptr(TypeMismatch(fmt::format(
        "{}: the message is {} bytes, not a whole number of {}-byte elements (the message was "
        "discarded); send and receive the same element type",
        where(comm, source, tag), bytes, t.elem_size)));
  }
  if (t.prepare == nullptr) {
    if (bytes > t.capacity) {
      return std::make_exception_ptr(TruncationError(
          bytes, t.capacity,
          fmt::format("{}: message is {} bytes, buffer holds {} (the message was discarded); "
                      "receive into a larger buffer or a std::vector",
                      where(comm, source, tag), bytes, t.capacity)));
    }
    if (t.exact && bytes != t.capacity) {
      return std::make_exception_ptr(TypeMismatch(fmt::format(
          "{}: the message is {} bytes, the object received into is {} bytes (the message was "
          "discarded); receive into a std::span or std::vector for variable sizes",
          where(comm, source, tag), bytes, t.capacity)));
    }
  }
  return nullptr;
}

bool has_trailer(std::span<const std::byte> payload, Trailer& t) {
  if (payload.size() < sizeof t) return false;
  std::memcpy(&t, payload.data() + payload.size() - sizeof t, sizeof t);
  return t.magic == kTrailerMagic && t.format >= 1 && t.format <= 2 && t.pad[0] == 0 &&
         t.pad[1] == 0 && t.pad[2] == 0;
}

/// A serialized message received as raw bytes (its trailer gives it away): the error, or nullptr.
std::exception_ptr serialized_as_raw(const CommunicatorImpl& comm, const RecvTarget& t, int source,
                                     int tag, std::span<const std::byte> payload) {
  Trailer tr{};
  if (!has_trailer(payload, tr)) return nullptr;
  return std::make_exception_ptr(TypeMismatch(fmt::format(
      "{}: the message was sent as {} and is received as {} (the message was discarded); "
      "send and receive the same type",
      where(comm, source, tag), format_name(static_cast<MessageFormat>(tr.format)),
      format_name(t.format))));
}

/// Chooses where a matched message of `bytes` lands (the user's memory, or scratch when it will
/// be rejected or is serialized); records a size error in op.error.
void prepare_destination(Operation& op, int source, int tag, std::size_t bytes) {
  op.bytes = bytes;
  op.status = Status{source, Tag{tag}, bytes};
  op.error = validate_size(*op.comm, op.target, source, tag, bytes);
  const RecvTarget& t = op.target;
  if (op.error || t.format != MessageFormat::raw) {
    op.wire.resize(bytes);
    op.dest = op.wire.data();
  } else if (t.prepare != nullptr) {
    op.dest = t.prepare(t.ctx, bytes);
  } else {
    op.dest = t.buffer;
  }
}

/// After the payload has arrived: the trailer checks and the decoding.
void finish_recv(Operation& op) {
  op.done = true;
  if (op.error) return;
  const RecvTarget& t = op.target;
  const int source = op.status.source;
  const int tag = op.status.tag.value();
  Trailer tr{};
  if (t.format == MessageFormat::raw) {
    op.error = serialized_as_raw(*op.comm, t, source, tag, {op.dest, op.bytes});
    if (op.error && t.prepare != nullptr) t.prepare(t.ctx, 0);
    return;
  }
  std::span<const std::byte> payload(op.wire.data(), op.bytes);
  if (!has_trailer(payload, tr)) {
    op.error = std::make_exception_ptr(TypeMismatch(fmt::format(
        "{}: the message was sent as {} and is received as {} (the message was discarded); "
        "send and receive the same type",
        where(op, source, tag), format_name(MessageFormat::raw), format_name(t.format))));
    return;
  }
  if (tr.format != static_cast<std::uint8_t>(t.format)) {
    op.error = std::make_exception_ptr(TypeMismatch(fmt::format(
        "{}: the message was sent as {} and is received as {} (the message was discarded); "
        "send and receive the same type",
        where(op, source, tag), format_name(static_cast<MessageFormat>(tr.format)),
        format_name(t.format))));
    return;
  }
  if (tr.fingerprint != t.fingerprint) {
    op.error = std::make_exception_ptr(TypeMismatch(fmt::format(
        "{}: the {}-byte message was serialized from another type than the one it is received "
        "as (the message was discarded); send and receive the same type",
        where(op, source, tag), op.bytes - sizeof tr)));
    return;
  }
  if (t.finish != nullptr) {
    std::optional<std::string> why;
    try {
      t.finish(t.ctx, payload.first(op.bytes - sizeof tr));
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {  // a user's load() may throw anything: still this receive's error
      why = "the type's load threw an exception that is not a std::exception";
    }
    if (why) {
      op.error = std::make_exception_ptr(DeserializeError(fmt::format(
          "rank {}: recv from rank {} ({}): the {}-byte {} payload could not be decoded: {}; "
          "check that sender and receiver serialize the same fields in the same order",
          op.comm->rank(), source, tag_text(tag), op.bytes - sizeof tr, format_name(t.format),
          *why)));
    }
  }
}

/// The size of a received or probed message: every Cohort message is MPI_BYTEs, at most INT_MAX
/// (to_count), so MPI_Get_count is exact (and cheaper than MPI_Get_elements_x).
std::size_t count_of(const MPI_Status& st) {
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  return static_cast<std::size_t>(n);
}

/// Starts the receive of a matched message (non-blocking).
void start_matched(Operation& op, MPI_Message& msg, const MPI_Status& st) {
  prepare_destination(op, st.MPI_SOURCE, st.MPI_TAG, count_of(st));
  op.matched = true;
  int count = backend_mpi::to_count(*op.comm, op.bytes, "irecv");
  check(MPI_Imrecv(op.dest, count, MPI_BYTE, &msg, &op.request), *op.comm, "irecv");
}

bool overlaps(const Operation& a, const Operation& b) {
  if (a.comm != b.comm && mpi_comm(*a.comm) != mpi_comm(*b.comm)) return false;
  bool src = a.peer < 0 || b.peer < 0 || a.peer == b.peer;
  bool tag = a.tag < 0 || b.tag < 0 || a.tag == b.tag;
  return src && tag;
}

/// Probes the pending receives in post order; starts those that match. Caller holds the mutex.
void progress_pending(State& s) {
  reap_detached(s);
  for (std::size_t i = 0; i < s.pending.size();) {
    Operation& op = *s.pending[i];
    bool blocked = false;
    for (std::size_t j = 0; j < i && !blocked; ++j) blocked = overlaps(*s.pending[j], op);
    if (!blocked) {
      int flag = 0;
      MPI_Message msg;
      MPI_Status st;
      check(MPI_Improbe(mpi_source(op.peer), mpi_tag(op.tag), mpi_comm(*op.comm), &flag, &msg, &st),
            *op.comm, "irecv");
      if (flag != 0) {
        s.pending.erase(s.pending.begin() + static_cast<std::ptrdiff_t>(i));
        s.pending_changed();
        start_matched(op, msg, st);
        continue;
      }
    }
    ++i;
  }
}

/// Advances `op` without blocking; true once done.
bool poll(Operation& op) {
  if (op.done) return true;
  State& s = state();
  {
    // Every poll also probes the pending receives: a peer's send to one of them may be what
    // `op` (say, a rendezvous send to that peer) waits for.
    std::lock_guard lock(s.mutex);
    progress_pending(s);
    if (!op.matched) return false;
  }
  int flag = 0;
  MPI_Status st;
  int rc = MPI_Test(&op.request, &flag, &st);
  if (rc != MPI_SUCCESS) {
    op.done = true;
    op.request = MPI_REQUEST_NULL;
    op.error = std::make_exception_ptr(
        Error(fmt::format("rank {}: {} rank {}: MPI error: {}", op.comm->rank(),
                          op.kind == Operation::Kind::send ? "isend to" : "irecv from",
                          op.status.source, backend_mpi::error_text(rc))));
    return true;
  }
  if (flag == 0) return false;
  if (op.kind == Operation::Kind::send) {
    op.done = true;
    op.keep_alive.reset();
    op.wire = {};
  } else {
    finish_recv(op);
  }
  return true;
}

/// Spin, then yield: MPI has no sleep-until-message, and the machine may be oversubscribed.
class Backoff {
 public:
  void pause() {
    if (++n_ > 64) ::sched_yield();
  }

 private:
  unsigned n_ = 0;
};

void wait_op(Operation& op) {
  // Polls (MPI_Test makes MPI progress): blocking in MPI_Wait would leave this rank's pending
  // receives unprobed, and a peer's rendezvous send to one of them would never match.
  Backoff b;
  while (!poll(op)) b.pause();
}

// ---- the blocking receive's fast path ---------------------------------------------------------

/// Where a blocking receive into a small fixed-size buffer lets MPI put the message: INT_MAX bytes
/// of address space per thread (reserved, not committed). No Cohort message is larger (MPI counts
/// are int: to_count), so a receive of count INT_MAX into it can never be truncated, and Open MPI
/// never gets the chance to write past a buffer (see the top). Null when the address space could
/// not be reserved, or with COHORT_MPI_RECV_SCRATCH=0: receives then take the matched probe.
platform::Reservation* receive_scratch() noexcept {
  struct Scratch {
    platform::Reservation region;
    bool tried = false;
  };
  thread_local Scratch s;
  if (!s.tried) {
    s.tried = true;
    const char* off = std::getenv("COHORT_MPI_RECV_SCRATCH");
    if (off == nullptr || std::strcmp(off, "0") != 0) {
      try {
        s.region = platform::Reservation(static_cast<std::size_t>(INT_MAX), "MPI receive scratch");
      } catch (const std::exception&) {  // e.g. strict overcommit or RLIMIT_AS: the matched probe
      }
    }
  }
  return s.region.data() != nullptr ? &s.region : nullptr;
}

/// A pre-posted MPI_Recv into the scratch, then a copy into the caller's buffer: plain MPI's own
/// path (no unexpected-message copy, no probe, no message handle), for raw receives into at most
/// kScratchRecvBytes. A message that does not fit is reported with its exact size and discarded.
Status recv_via_scratch(CommunicatorImpl& comm, int source, int tag, const RecvTarget& t,
                        platform::Reservation& scratch) {
  MPI_Status st;
  int rc = MPI_Recv(scratch.data(), INT_MAX, MPI_BYTE, mpi_source(source), mpi_tag(tag), mpi_comm(comm), &st);
  if (rc != MPI_SUCCESS) {
    backend_mpi::throw_mpi(comm, fmt::format("recv from rank {} ({})", source, tag_text(tag)), rc);
  }
  const std::size_t bytes = count_of(st);
  std::span<const std::byte> payload(scratch.data(), bytes);
  // The common case in one test: it fits, fills an object exactly if it must, holds whole
  // elements, and is too short to carry a serialized message's trailer.
  const bool plainly_fine =
      bytes <= t.capacity && bytes < sizeof(Trailer) &&
      (t.exact ? bytes == t.capacity : t.elem_size <= 1 || bytes % t.elem_size == 0);
  if (!plainly_fine) [[unlikely]] {
    std::exception_ptr error = validate_size(comm, t, st.MPI_SOURCE, st.MPI_TAG, bytes);
    if (!error) error = serialized_as_raw(comm, t, st.MPI_SOURCE, st.MPI_TAG, payload);
    if (error) {
      // A large message landed here: give its pages back.
      if (bytes > kScratchKeepBytes) scratch.release(kScratchKeepBytes, bytes - kScratchKeepBytes);
      std::rethrow_exception(error);
    }
  }
  transport::copy_bytes(t.buffer, payload.data(), bytes);
  return Status{st.MPI_SOURCE, Tag{st.MPI_TAG}, bytes};
}

Operation* new_recv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target) {
  auto* op = new Operation;
  op->kind = Operation::Kind::recv;
  op->comm = &comm;
  op->peer = source;
  op->tag = tag.value();
  op->target = target;
  return op;
}

}  // namespace

void p2p_send(CommunicatorImpl& comm, int dest, Tag tag, const SendBuffer& buffer) {
  check_peer(comm, dest, false, "send to");
  check_tag(comm, tag, false, "send to", dest);
  std::span<const std::byte> bytes(buffer.data, buffer.bytes);
  if (buffer.format != MessageFormat::raw) {
    thread_local std::vector<std::byte> wire;
    bytes = wire_bytes(buffer, wire);
  }
  // Beyond Open MPI's eager size a standard-mode send would wait for its receive; Cohort's send
  // returns once the data is handed over (both ranks may send first), so it sends a copy.
  if (dest == comm.rank() || bytes.size() > kBufferedSendBytes) {
    return send_buffered(comm, dest, tag.value(), bytes);
  }
  int count = backend_mpi::to_count(comm, bytes.size(), "send");
  int rc = MPI_Send(bytes.data(), count, MPI_BYTE, dest, tag.value(), mpi_comm(comm));
  if (rc != MPI_SUCCESS) {
    backend_mpi::throw_mpi(comm, fmt::format("send to rank {} (tag {})", dest, tag.value()), rc);
  }
}

Request p2p_isend(CommunicatorImpl& comm, int dest, Tag tag, const SendBuffer& buffer,
                  std::shared_ptr<const void> keep_alive) {
  check_peer(comm, dest, false, "isend to");
  check_tag(comm, tag, false, "isend to", dest);
  auto op = std::unique_ptr<Operation, OperationDeleter>(new Operation);
  op->kind = Operation::Kind::send;
  op->comm = &comm;
  op->peer = dest;
  op->tag = tag.value();
  std::span<const std::byte> bytes = wire_bytes(buffer, op->wire);
  op->status = Status{dest, tag, bytes.size()};
  if (dest == comm.rank()) {
    send_buffered(comm, dest, tag.value(), bytes);
    return Request::completed(op->status);
  }
  op->keep_alive = std::move(keep_alive);
  op->matched = true;
  int count = backend_mpi::to_count(comm, bytes.size(), "isend");
  int rc = MPI_Isend(bytes.data(), count, MPI_BYTE, dest, tag.value(), mpi_comm(comm), &op->request);
  if (rc != MPI_SUCCESS) {
    backend_mpi::throw_mpi(comm, fmt::format("isend to rank {} (tag {})", dest, tag.value()), rc);
  }
  return Request(op.release());
}

namespace {

/// The blocking receive that learns the size first (matched probe), or queues behind earlier
/// pending receives: every receive the scratch does not take.
[[gnu::noinline]] Status recv_probed(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target) {
  State& s = state();
  bool queue_behind = false;
  {
    std::lock_guard lock(s.mutex);
    reap_detached(s);
    queue_behind = !s.pending.empty();
  }
  if (queue_behind) {  // earlier non-blocking receives come first
    Request r = p2p_irecv(comm, source, tag, target);
    return r.wait();
  }
  Operation op;
  op.comm = &comm;
  op.peer = source;
  op.tag = tag.value();
  op.target = target;
  MPI_Message msg;
  MPI_Status st;
  int rc = MPI_Mprobe(mpi_source(source), mpi_tag(tag.value()), mpi_comm(comm), &msg, &st);
  if (rc != MPI_SUCCESS) backend_mpi::throw_mpi(comm, fmt::format("recv from rank {} ({})", source, tag_text(tag.value())), rc);
  prepare_destination(op, st.MPI_SOURCE, st.MPI_TAG, count_of(st));
  int count = backend_mpi::to_count(comm, op.bytes, "recv");
  rc = MPI_Mrecv(op.dest, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS) backend_mpi::throw_mpi(comm, fmt::format("recv from rank {} ({})", source, tag_text(tag.value())), rc);
  finish_recv(op);
  if (op.error) std::rethrow_exception(op.error);
  return op.status;
}

}  // namespace

Status p2p_recv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target) {
  check_peer(comm, source, true, "recv from");
  check_tag(comm, tag, true, "recv from", source);
  // Raw bytes into a small buffer of known size, with no earlier receive still waiting: a
  // pre-posted MPI_Recv into the scratch. Everything else: the matched probe.
  if (target.format == MessageFormat::raw && target.prepare == nullptr &&
      target.capacity <= kScratchRecvBytes &&
      g_pending_count.load(std::memory_order_acquire) == 0) {
    if (platform::Reservation* scratch = receive_scratch()) {
      return recv_via_scratch(comm, source, tag.value(), target, *scratch);
    }
  }
  return recv_probed(comm, source, tag, target);
}

Request p2p_irecv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target) {
  check_peer(comm, source, true, "irecv from");
  check_tag(comm, tag, true, "irecv from", source);
  Operation* op = new_recv(comm, source, tag, target);
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.pending.push_back(op);
  s.pending_changed();
  progress_pending(s);
  return Request(op);
}

}  // namespace cohort::detail

namespace cohort {

Status Communicator::probe(int source, Tag tag) {
  detail::CommunicatorImpl& c = impl();
  detail::check_peer(c, source, true, "probe from");
  detail::check_tag(c, tag, true, "probe from", source);
  MPI_Status st;
  int rc = MPI_Probe(detail::mpi_source(source), detail::mpi_tag(tag.value()), backend_mpi::mpi_comm(c), &st);
  if (rc != MPI_SUCCESS) backend_mpi::throw_mpi(c, "probe", rc);
  return Status{st.MPI_SOURCE, Tag{st.MPI_TAG}, detail::count_of(st)};
}

std::optional<Status> Communicator::iprobe(int source, Tag tag) {
  detail::CommunicatorImpl& c = impl();
  detail::check_peer(c, source, true, "iprobe from");
  detail::check_tag(c, tag, true, "iprobe from", source);
  int flag = 0;
  MPI_Status st;
  int rc = MPI_Iprobe(detail::mpi_source(source), detail::mpi_tag(tag.value()), backend_mpi::mpi_comm(c),
                      &flag, &st);
  if (rc != MPI_SUCCESS) backend_mpi::throw_mpi(c, "iprobe", rc);
  if (flag == 0) return std::nullopt;
  return Status{st.MPI_SOURCE, Tag{st.MPI_TAG}, detail::count_of(st)};
}

// ---- Request ---------------------------------------------------------------------------------

Request::Request(Request&& other) noexcept : op_(std::move(other.op_)), status_(other.status_) {}

Request& Request::operator=(Request&& other) noexcept {
  if (this != &other) {
    if (op_ != nullptr) Request old(std::move(*this));  // completes or cancels the old one
    op_ = std::move(other.op_);
    status_ = other.status_;
  }
  return *this;
}

Request::~Request() {
  if (op_ == nullptr || op_->done) return;
  detail::Operation& op = *op_;
  if (op.kind == detail::Operation::Kind::recv && !op.matched) {
    auto& s = detail::state();
    std::lock_guard lock(s.mutex);
    if (!op.matched) {  // cancel: it never matched a message
      std::erase(s.pending, &op);
      s.pending_changed();
      return;
    }
  }
  try {
    detail::wait_op(op);
  } catch (...) {  // NOLINT: a destructor must not throw; the error is dropped as documented
  }
}

Status Request::wait() {
  if (op_ == nullptr) return status_;
  try {
    detail::wait_op(*op_);
  } catch (...) {
    if (op_->done) op_.reset();
    throw;
  }
  status_ = op_->status;
  std::exception_ptr error = op_->error;
  op_.reset();
  if (error) std::rethrow_exception(error);
  return status_;
}

std::optional<Status> Request::test() {
  if (op_ == nullptr) return status_;
  if (!detail::poll(*op_)) return std::nullopt;
  return wait();
}

std::vector<Status> wait_all(std::span<Request> requests) {
  // Receives are matched in post order whichever request is waited for first (see the top).
  return detail::complete_requests(requests);
}

Completion wait_any(std::span<Request> requests) {
  bool any = false;
  for (Request& r : requests) any = any || r.active();
  if (!any) throw InvalidArgument("wait_any: no request is active (every request has completed already)");
  detail::Backoff b;
  for (;;) {
    for (std::size_t i = 0; i < requests.size(); ++i) {
      detail::Operation* op = requests[i].operation();
      if (op != nullptr && detail::poll(*op)) return Completion{i, requests[i].wait()};
    }
    b.pause();
  }
}

bool test_all(std::span<Request> requests) {
  bool all = true;
  for (Request& r : requests) {
    if (r.operation() != nullptr && !detail::poll(*r.operation())) all = false;
  }
  if (!all) return false;
  detail::complete_requests(requests);
  return true;
}

}  // namespace cohort
