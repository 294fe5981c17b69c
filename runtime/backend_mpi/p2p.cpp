// MPI backend: point-to-point messaging and cohort::Request over MPI.
//
// Wire format: one MPI message per Cohort message, tag = the Cohort tag, on the communicator's
// own MPI communicator. Raw payloads go straight from the user's buffer as MPI_BYTE (no copy, no
// header). Serialized payloads are the encoding followed by a 16-byte trailer (magic, format,
// type fingerprint), so a receive can check what it gets; Status::bytes is then the size on the
// wire (encoding + 16), the same for probe and recv.
//
// Every receive learns the size first with a matched probe (MPI_Mprobe / MPI_Improbe, then
// MPI_Mrecv / MPI_Imrecv on the message it matched: thread-safe, and any-source receives of
// unknown size cannot race with another receive). So a message larger than the buffer is never
// handed to MPI to truncate (Open MPI 4.1's single-copy path writes past the buffer then): it is
// received into scratch memory and reported as cohort::TruncationError.
//
// Receives match in the order they were posted: pending non-blocking receives are probed in post
// order, and a receive is not probed while an earlier pending one that could match the same
// message is still unmatched. A blocking send to oneself, or of more than 4 KiB (Open MPI's eager
// size), is buffered: a copy sent with MPI_Isend and reaped later, so that it returns before the
// receive is posted, as on the shared-memory backend (two ranks may both send first). isend never
// copies a raw payload.
#include <sched.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>

#include <fmt/format.h>

#include "cohort/errors.hpp"
#include "cohort/p2p.hpp"
#include "runtime/complete_requests.hpp"
#include "runtime/backend_mpi/mpi.hpp"

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

constexpr std::size_t kBufferedSendBytes = 4096;  // Open MPI's eager limit on one node (vader)
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

void check_peer(const CommunicatorImpl& comm, int peer, bool any_ok, const char* op) {
  if (peer >= 0 && peer < comm.size()) return;
  if (any_ok && peer == any_source) return;
  throw InvalidArgument(fmt::format(
      "rank {}: {} rank {}: no such rank (the communicator has ranks 0 .. {}{})", comm.rank(), op,
      peer, comm.size() - 1, any_ok ? ", or cohort::any_source" : ""));
}

void check_tag(const CommunicatorImpl& comm, Tag tag, bool any_ok, const char* op, int peer) {
  int t = tag.value();
  if (t >= 0 && t <= Tag::kMax) return;
  if (any_ok && t == any_tag.value()) return;
  throw InvalidArgument(fmt::format(
      "rank {}: {} rank {}: tag {} is out of range (tags are 0 .. {}{}; negative tags are "
      "reserved)",
      comm.rank(), op, peer, t, Tag::kMax, any_ok ? ", or cohort::any_tag" : ""));
}

int mpi_source(int source) { return source == any_source ? MPI_ANY_SOURCE : source; }
int mpi_tag(int tag) { return tag < 0 ? MPI_ANY_TAG : tag; }

// ---- process-wide state (guarded: several threads may use different communicators) -----------

struct Detached {  // a buffered send to self
  MPI_Request request;
  std::vector<std::byte> data;
};

struct State {
  std::recursive_mutex mutex;
  std::deque<Detached> detached;
  std::vector<Operation*> pending;  // unmatched receives, in post order
};

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
  if (b.bytes != 0) std::memcpy(wire.data(), b.data, b.bytes);
  std::memcpy(wire.data() + b.bytes, &t, sizeof t);
  return wire;
}

/// Sends a copy of `bytes` with MPI_Isend and returns at once (reaped later).
void send_buffered(CommunicatorImpl& comm, int dest, int tag, std::span<const std::byte> bytes) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  reap_detached(s);
  Detached d{MPI_REQUEST_NULL, std::vector<std::byte>(bytes.begin(), bytes.end())};
  int count = backend_mpi::to_count(comm, d.data.size(), "send");
  check(MPI_Isend(d.data.data(), count, MPI_BYTE, dest, tag, mpi_comm(comm), &d.request), comm, "send");
  s.detached.push_back(std::move(d));
}

// ---- receive side ----------------------------------------------------------------------------

std::string where(const Operation& op, int source, int tag) {
  return fmt::format("rank {}: recv from rank {} ({})", op.comm->rank(), source, tag_text(tag));
}

/// What the message is (from its size and, once received, its trailer) against the receive.
/// Returns the error, or nullptr. `payload` is the received bytes (trailer checks), or empty
/// before the receive (size checks only).
std::exception_ptr validate_size(const Operation& op, int source, int tag, std::size_t bytes) {
  const RecvTarget& t = op.target;
  if (t.format != MessageFormat::raw) {
    if (bytes < sizeof(Trailer)) {
      return std::make_exception_ptr(TypeMismatch(fmt::format(
          "{}: the message was sent as {} and is received as {} (the message was discarded); "
          "send and receive the same type",
          where(op, source, tag), format_name(MessageFormat::raw), format_name(t.format))));
    }
    return nullptr;
  }
  if (t.elem_size > 1 && bytes % t.elem_size != 0) {
    return std::make_exception_ptr(TypeMismatch(fmt::format(
        "{}: the message is {} bytes, not a whole number of {}-byte elements (the message was "
        "discarded); send and receive the same element type",
        where(op, source, tag), bytes, t.elem_size)));
  }
  if (t.prepare == nullptr) {
    if (bytes > t.capacity) {
      return std::make_exception_ptr(TruncationError(
          bytes, t.capacity,
          fmt::format("{}: message is {} bytes, buffer holds {} (the message was discarded); "
                      "receive into a larger buffer or a std::vector",
                      where(op, source, tag), bytes, t.capacity)));
    }
    if (t.exact && bytes != t.capacity) {
      return std::make_exception_ptr(TypeMismatch(fmt::format(
          "{}: the message is {} bytes, the object received into is {} bytes (the message was "
          "discarded); receive into a std::span or std::vector for variable sizes",
          where(op, source, tag), bytes, t.capacity)));
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

/// Chooses where a matched message of `bytes` lands (the user's memory, or scratch when it will
/// be rejected or is serialized); records a size error in op.error.
void prepare_destination(Operation& op, int source, int tag, std::size_t bytes) {
  op.bytes = bytes;
  op.status = Status{source, Tag{tag}, bytes};
  op.error = validate_size(op, source, tag, bytes);
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
    // A serialized message received as raw bytes (its trailer gives it away).
    if (has_trailer({op.dest, op.bytes}, tr)) {
      if (t.prepare != nullptr) t.prepare(t.ctx, 0);
      op.error = std::make_exception_ptr(TypeMismatch(fmt::format(
          "{}: the message was sent as {} and is received as {} (the message was discarded); "
          "send and receive the same type",
          where(op, source, tag), format_name(static_cast<MessageFormat>(tr.format)),
          format_name(t.format))));
    }
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
    try {
      t.finish(t.ctx, payload.first(op.bytes - sizeof tr));
    } catch (const std::exception& e) {
      op.error = std::make_exception_ptr(DeserializeError(fmt::format(
          "rank {}: recv from rank {} ({}): the {}-byte {} payload could not be decoded: {}; "
          "check that sender and receiver serialize the same fields in the same order",
          op.comm->rank(), source, tag_text(tag), op.bytes - sizeof tr, format_name(t.format),
          e.what())));
    }
  }
}

std::size_t count_of(const MPI_Status& st) {
  MPI_Count n = 0;
  MPI_Get_elements_x(&st, MPI_BYTE, &n);
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
  thread_local std::vector<std::byte> wire;
  std::span<const std::byte> bytes = wire_bytes(buffer, wire);
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

Status p2p_recv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target) {
  check_peer(comm, source, true, "recv from");
  check_tag(comm, tag, true, "recv from", source);
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

Request p2p_irecv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target) {
  check_peer(comm, source, true, "irecv from");
  check_tag(comm, tag, true, "irecv from", source);
  Operation* op = new_recv(comm, source, tag, target);
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.pending.push_back(op);
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
