// Point-to-point layer: the public entry points (argument checks) and cohort::Request.
#include <fmt/format.h>

#include "cohort/errors.hpp"
#include "cohort/p2p.hpp"
#include "runtime/complete_requests.hpp"
#include "runtime/p2p/engine.hpp"
#include "runtime/runtime.hpp"

namespace cohort {
namespace detail {
namespace {

p2p::Engine& engine_of(CommunicatorImpl& comm) { return comm.runtime().p2p(); }

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

int world_of(const CommunicatorImpl& comm, int rank) { return rank < 0 ? -1 : comm.world_rank(rank); }

}  // namespace

void p2p_send(CommunicatorImpl& comm, int dest, Tag tag, const SendBuffer& buffer) {
  check_peer(comm, dest, false, "send to");
  check_tag(comm, tag, false, "send to", dest);
  engine_of(comm).send(comm, comm.world_rank(dest), tag.value(), buffer);
}

Request p2p_isend(CommunicatorImpl& comm, int dest, Tag tag, const SendBuffer& buffer,
                  std::shared_ptr<const void> keep_alive) {
  check_peer(comm, dest, false, "isend to");
  check_tag(comm, tag, false, "isend to", dest);
  return engine_of(comm).isend(comm, comm.world_rank(dest), tag.value(), buffer, std::move(keep_alive));
}

Status p2p_recv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target) {
  check_peer(comm, source, true, "recv from");
  check_tag(comm, tag, true, "recv from", source);
  return engine_of(comm).recv(comm, world_of(comm, source), tag.value(), target);
}

Request p2p_irecv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target) {
  check_peer(comm, source, true, "irecv from");
  check_tag(comm, tag, true, "irecv from", source);
  return engine_of(comm).irecv(comm, world_of(comm, source), tag.value(), target);
}

}  // namespace detail

Status Communicator::probe(int source, Tag tag) {
  detail::CommunicatorImpl& c = impl();
  detail::check_peer(c, source, true, "probe from");
  detail::check_tag(c, tag, true, "probe from", source);
  return detail::engine_of(c).probe(c, detail::world_of(c, source), tag.value());
}

std::optional<Status> Communicator::iprobe(int source, Tag tag) {
  detail::CommunicatorImpl& c = impl();
  detail::check_peer(c, source, true, "iprobe from");
  detail::check_tag(c, tag, true, "iprobe from", source);
  return detail::engine_of(c).iprobe(c, detail::world_of(c, source), tag.value());
}

// ---- Request --------------------------------------------------------------------------------

void detail::OperationDeleter::operator()(detail::Operation* op) const noexcept {
  if (op->engine == nullptr) {  // detached: its engine (the Environment) ended first
    delete op;
    return;
  }
  op->engine->release(op);
}

Request::Request(Request&& other) noexcept
    : op_(std::move(other.op_)), status_(other.status_) {}

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
  if (op_->engine->cancel(*op_)) return;
  try {
    op_->engine->wait(*op_);
  } catch (...) {  // NOLINT: a destructor must not throw; the error is dropped as documented
  }
}

Status Request::wait() {
  if (op_ == nullptr) return status_;
  if (op_->engine == nullptr) {  // detached when the Environment ended (Engine::~Engine)
    std::exception_ptr error = op_->error;
    status_ = op_->status;
    op_.reset();
    if (error) std::rethrow_exception(error);
    return status_;
  }
  try {
    op_->engine->wait(*op_);
  } catch (...) {
    if (op_->done) op_.reset();
    throw;
  }
  status_ = op_->status;
  op_.reset();
  return status_;
}

std::optional<Status> Request::test() {
  if (op_ == nullptr) return status_;
  if (!op_->done) op_->engine->poll();
  if (!op_->done) return std::nullopt;
  return wait();
}

namespace {
/// The requests' operations (null for inactive ones) and the engine of an active one, if any.
p2p::Engine* operations_of(std::span<Request> requests, std::vector<detail::Operation*>& ops) {
  ops.clear();
  p2p::Engine* engine = nullptr;
  for (Request& r : requests) {
    ops.push_back(r.operation());
    if (r.operation() != nullptr) engine = r.operation()->engine;
  }
  return engine;
}
}  // namespace

std::vector<Status> wait_all(std::span<Request> requests) {
  thread_local std::vector<detail::Operation*> ops;
  p2p::Engine* engine = operations_of(requests, ops);
  if (engine != nullptr) engine->wait_all(ops);
  return detail::complete_requests(requests);
}

Completion wait_any(std::span<Request> requests) {
  thread_local std::vector<detail::Operation*> ops;
  p2p::Engine* engine = operations_of(requests, ops);
  for (std::size_t i = 0; i < requests.size(); ++i) {  // detached: completed (with its error)
    if (ops[i] != nullptr && ops[i]->engine == nullptr) return Completion{i, requests[i].wait()};
  }
  if (engine == nullptr) {
    throw InvalidArgument("wait_any: no request is active (every request has completed already)");
  }
  std::size_t i = engine->wait_any(ops);
  return Completion{i, requests[i].wait()};
}

bool test_all(std::span<Request> requests) {
  p2p::Engine* engine = nullptr;
  for (Request& r : requests) {
    if (r.operation() != nullptr) engine = r.operation()->engine;
  }
  if (engine == nullptr) {  // none active, or detached ones (which throw their error here)
    detail::finish_requests(requests);
    return true;
  }
  engine->poll();
  for (Request& r : requests) {
    if (r.operation() != nullptr && !r.operation()->done) return false;
  }
  detail::finish_requests(requests);
  return true;
}

}  // namespace cohort
