// cohort::Pipe: point-to-point messaging over a private two-rank communicator.
#include "cohort/pipe.hpp"

#include <thread>

#include <fmt/format.h>

#include "runtime/runtime.hpp"
#include "runtime/transport/waiter.hpp"

namespace cohort {

Pipe::Pipe(Communicator& comm, int rank_a, int rank_b, PipeMode mode) {
  self_ = comm.impl().world_rank(comm.rank());
  if (rank_a < 0 || rank_a >= comm.size() || rank_b < 0 || rank_b >= comm.size() || rank_a == rank_b) {
    throw InvalidArgument(fmt::format("rank {}: Pipe: ends {} and {} must be two distinct ranks of "
                                      "the communicator (size {})", self_, rank_a, rank_b, comm.size()));
  }
  const int me = comm.rank();
  const bool is_end = me == rank_a || me == rank_b;
  std::optional<Communicator> link = comm.split(is_end ? 0 : undefined, me == rank_a ? 0 : 1);
  if (!is_end) return;
  link_ = std::move(link);
  peer_ = me == rank_a ? rank_b : rank_a;
  writable_ = mode == PipeMode::duplex || me == rank_a;
  readable_ = mode == PipeMode::duplex || me == rank_b;
}

void Pipe::inactive(const char* op) const {
  throw InvalidArgument(fmt::format("rank {}: Pipe::{}: this rank is not one of the pipe's two "
                                    "ends (check pipe.active() first)", self_, op));
}

void Pipe::check_send() {
  if (!active()) inactive("send");
  if (!writable_) {
    throw InvalidArgument(fmt::format("rank {}: Pipe::send: this is the read end of a one-way pipe "
                                      "(rank {} writes, this rank reads)", self_, peer_));
  }
  if (closed_) throw PipeClosed(fmt::format("rank {}: Pipe::send: this end was closed", self_));
}

void Pipe::check_recv() {
  if (!active()) inactive("recv");
  if (!readable_) {
    throw InvalidArgument(fmt::format("rank {}: Pipe::recv: this is the write end of a one-way "
                                      "pipe (this rank writes, rank {} reads)", self_, peer_));
  }
  if (closed_) throw PipeClosed(fmt::format("rank {}: Pipe::recv: this end was closed", self_));
  const int other = 1 - link_->rank();
  if (!peer_closed_) {
    // The close message follows everything the peer sent before it (non-overtaking order on
    // one (source, tag) does not hold across tags, so look at what comes first).
    transport::WaitContext label(link_->impl().runtime().segment(), self_, transport::WaitOp::pipe_recv);
    Status st = link_->probe(other, any_tag);
    if (st.tag == kClose) {
      char byte = 0;
      link_->recv(byte, other, kClose);
      peer_closed_ = true;
    }
  }
  if (peer_closed_ && !link_->iprobe(other, kData)) {
    throw PipeClosed(fmt::format("rank {}: Pipe::recv: rank {} closed its end of the pipe and "
                                 "everything it sent has been received", self_, peer_));
  }
}

Pipe::SendLabel::SendLabel(const Pipe& p) noexcept : pipe(p) {
  pipe.link_->impl().runtime().segment().slot(pipe.self_).wait_context.store(
      static_cast<std::uint32_t>(transport::WaitOp::pipe_send), std::memory_order_relaxed);
}

Pipe::SendLabel::~SendLabel() {
  pipe.link_->impl().runtime().segment().slot(pipe.self_).wait_context.store(0, std::memory_order_relaxed);
}

bool Pipe::poll_ns(std::chrono::nanoseconds timeout) {
  if (!active()) inactive("poll");
  if (!readable_) {
    throw InvalidArgument(fmt::format("rank {}: Pipe::poll: this is the write end of a one-way "
                                      "pipe", self_));
  }
  const int other = 1 - link_->rank();
  if (peer_closed_ || link_->iprobe(other, any_tag)) return true;
  if (timeout.count() == 0) return false;
  if (timeout.count() < 0) {
    (void)link_->probe(other, any_tag);
    return true;
  }
  // Timed: spin per the job's policy, then sleep in growing steps (p2p has no timed probe).
  auto& rt = link_->impl().runtime();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::uint32_t spins = rt.waiter().policy().spins;
  for (std::uint32_t i = 0; i < spins; ++i) {
    transport::cpu_relax();
    if ((i & 63) == 0 && link_->iprobe(other, any_tag)) return true;
  }
  auto step = std::chrono::microseconds(20);
  const int peer_world = link_->impl().world_rank(other);
  for (;;) {
    if (link_->iprobe(other, any_tag)) return true;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    if (!rt.segment().alive(peer_world)) return true;  // recv() will say PeerLost
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
    std::this_thread::sleep_for(std::min(step, left));
    step = std::min(step * 2, std::chrono::microseconds(2000));
  }
}

void Pipe::close() {
  if (!active()) inactive("close");
  if (closed_) return;
  closed_ = true;
  if (writable_) {
    char byte = 0;
    link_->send(byte, 1 - link_->rank(), kClose);
  }
}

}  // namespace cohort
