#include "launcher/wait_report.hpp"

#include <fmt/format.h>

#include "runtime/transport/collective_kind.hpp"

namespace cohort::launcher {
namespace {

using transport::RankState;
using transport::WaitOp;

std::string peer_text(const char* role, int peer) {
  return peer < 0 ? fmt::format("any {}", role) : fmt::format("{} {}", role, peer);
}

std::string tag_text(int tag) { return tag < 0 ? std::string("any tag") : fmt::format("tag {}", tag); }

bool same_wait(const RankSnapshot& a, const RankSnapshot& b) {
  return a.op == b.op && a.peer == b.peer && a.tag == b.tag && a.comm == b.comm &&
         a.object == b.object && a.timed == b.timed &&
         a.progress == b.progress && a.doorbell == b.doorbell && a.state == b.state;
}

}  // namespace

RankSnapshot take_snapshot(const transport::Segment& segment, int rank, bool process_running) {
  const transport::RankSlot& slot = segment.slot(rank);
  RankSnapshot s;
  s.rank = rank;
  s.process_running = process_running;
  s.state = static_cast<RankState>(slot.state.load(std::memory_order_acquire));
  std::uint32_t op = slot.wait_op.load(std::memory_order_acquire);
  s.op = static_cast<WaitOp>(op & ~transport::kWaitTimed);
  s.timed = (op & transport::kWaitTimed) != 0;
  s.object = slot.wait_object.load(std::memory_order_relaxed);
  s.context = static_cast<WaitOp>(slot.wait_context.load(std::memory_order_relaxed));
  s.peer = slot.wait_peer.load(std::memory_order_relaxed);
  s.tag = slot.wait_tag.load(std::memory_order_relaxed);
  s.comm = slot.wait_comm.load(std::memory_order_relaxed);
  s.progress = slot.progress.load(std::memory_order_relaxed);
  s.doorbell = slot.doorbell.load(std::memory_order_relaxed);
  return s;
}

bool is_blocked(const RankSnapshot& s) {
  return s.process_running && s.state == RankState::attached && s.op != WaitOp::none;
}

bool is_stuck(const RankSnapshot& s) { return is_blocked(s) && !s.timed && !s.runnable; }

std::string state_text(const RankSnapshot& s) {
  if (!s.process_running || s.state == RankState::exited) return "exited";
  switch (s.state) {
    case RankState::pending: return "not attached";
    case RankState::finished: return "finished";
    case RankState::exited: return "exited";
    case RankState::attached: break;
  }
  return s.op != WaitOp::none ? "blocked" : "running";
}

std::string describe_wait(WaitOp op, int peer, int tag, std::uint32_t comm) {
  return describe_wait(op, peer, tag, comm, 0, WaitOp::none, false);
}

std::string describe_wait(WaitOp op, int peer, int tag, std::uint32_t comm, std::uint32_t object,
                          WaitOp context, bool timed) {
  std::string text;
  const std::string at = fmt::format("at {:#x}", std::uint64_t{object} * transport::kCacheLine);
  const char* limit = timed ? ", with a timeout" : "";
  if (op == WaitOp::none) return {};
  if (context == WaitOp::pipe_recv && (op == WaitOp::recv || op == WaitOp::probe)) {
    return fmt::format("Pipe.recv ({}{})", peer_text("from rank", peer), limit);
  }
  if (context == WaitOp::pipe_send && op == WaitOp::send) {
    return fmt::format("Pipe.send ({}{})", peer_text("to rank", peer), limit);
  }
  switch (op) {
    case WaitOp::queue_get: return fmt::format("Queue.get (queue {}, empty{})", at, limit);
    case WaitOp::queue_put:
      return fmt::format("Queue.put (queue {}, {}{})", at, tag == 1 ? "no pool space" : "full", limit);
    case WaitOp::queue_join: return fmt::format("Queue.join (queue {}, items unfinished{})", at, limit);
    case WaitOp::lock:
      return fmt::format("Lock.acquire ({}, lock {}{})",
                         peer < 0 ? std::string("held") : fmt::format("held by rank {}", peer), at, limit);
    case WaitOp::semaphore: return fmt::format("Semaphore.acquire (semaphore {}, count 0{})", at, limit);
    case WaitOp::event: return fmt::format("Event.wait (event {}, not set{})", at, limit);
    case WaitOp::condition: return fmt::format("Condition.wait (condition {}{})", at, limit);
    case WaitOp::sync_barrier:
      return fmt::format("Barrier.wait (barrier {}, {} parties{})", at, tag, limit);
    default: break;
  }
  switch (op) {
    case WaitOp::none: return {};
    case WaitOp::send: text = fmt::format("send({}, {})", peer_text("dest", peer), tag_text(tag)); break;
    case WaitOp::recv: text = fmt::format("recv({}, {})", peer_text("source", peer), tag_text(tag)); break;
    case WaitOp::probe: text = fmt::format("probe({}, {})", peer_text("source", peer), tag_text(tag)); break;
    case WaitOp::barrier: text = "barrier"; break;
    case WaitOp::collective:
      if (tag == 1) {
        text = "barrier";
      } else if (tag > 1 && tag <= static_cast<int>(transport::CollectiveKind::dup)) {
        // The collectives' wait records carry which collective in `tag`.
        text = fmt::format("collective {}", transport::collective_kind_name(static_cast<std::uint16_t>(tag)));
      } else {
        text = "collective";
      }
      break;
    case WaitOp::other: text = "wait"; break;
    default: text = fmt::format("wait (operation {})", static_cast<unsigned>(op)); break;
  }
  if (comm != 0) text += fmt::format(" on communicator {}", comm);
  return text + (timed ? " with a timeout" : "");
}

std::string describe_wait(const RankSnapshot& s) {
  return describe_wait(s.op, s.peer, s.tag, s.comm, s.object, s.context, s.timed);
}

std::vector<int> find_cycle(std::span<const RankSnapshot> ranks) {
  const int n = static_cast<int>(ranks.size());
  auto next = [&](int r) -> int {
    const RankSnapshot& s = ranks[static_cast<std::size_t>(r)];
    if (!is_stuck(s) || s.peer < 0 || s.peer >= n || s.peer == r) return -1;
    if (s.op != WaitOp::send && s.op != WaitOp::recv && s.op != WaitOp::probe && s.op != WaitOp::lock) {
      return -1;
    }
    return s.peer;
  };
  // Each rank has at most one out-edge: follow the chain from each start, marking the walk.
  std::vector<int> seen(static_cast<std::size_t>(n), -1);  // start that first visited the rank
  for (int start = 0; start < n; ++start) {
    int r = start;
    while (r >= 0 && seen[static_cast<std::size_t>(r)] < 0) {
      seen[static_cast<std::size_t>(r)] = start;
      r = next(r);
    }
    if (r < 0 || seen[static_cast<std::size_t>(r)] != start) continue;  // chain ended, or old walk
    std::vector<int> cycle{r};
    for (int c = next(r); c != r; c = next(c)) cycle.push_back(c);
    cycle.push_back(r);
    return cycle;
  }
  return {};
}

std::string format_cycle(std::span<const int> cycle) {
  std::string out;
  for (int r : cycle) out += fmt::format("{}{}", out.empty() ? "" : " -> ", r);
  return out;
}

bool DeadlockDetector::observe(std::span<const RankSnapshot> ranks, Clock::time_point now) {
  bool any_blocked = false;
  bool all_blocked = true;
  for (const RankSnapshot& s : ranks) {
    if (!s.process_running) continue;
    if (is_stuck(s)) any_blocked = true;
    else all_blocked = false;
  }
  if (!any_blocked || !all_blocked) {
    since_.reset();
    return false;
  }
  bool unchanged = since_.has_value() && base_.size() == ranks.size();
  for (std::size_t i = 0; unchanged && i < ranks.size(); ++i) {
    unchanged = ranks[i].process_running == base_[i].process_running &&
                (!ranks[i].process_running || same_wait(ranks[i], base_[i]));
  }
  if (!unchanged) {
    base_.assign(ranks.begin(), ranks.end());
    since_ = now;
    return false;
  }
  return now - *since_ >= window_;
}

}  // namespace cohort::launcher
