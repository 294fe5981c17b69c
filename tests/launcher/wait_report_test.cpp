// Hang reports and deadlock detection as pure functions over rank snapshots.
#include "launcher/wait_report.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace cohort::launcher {
namespace {

using namespace std::chrono_literals;
using transport::RankState;
using transport::WaitOp;
using Clock = DeadlockDetector::Clock;

RankSnapshot blocked(int rank, WaitOp op, int peer, int tag = 5) {
  RankSnapshot s;
  s.rank = rank;
  s.state = RankState::attached;
  s.op = op;
  s.peer = peer;
  s.tag = tag;
  s.progress = 10;
  s.doorbell = 3;
  return s;
}

RankSnapshot running(int rank) {
  RankSnapshot s;
  s.rank = rank;
  s.state = RankState::attached;
  return s;
}

TEST(WaitReport, DescribesEachOperation) {
  EXPECT_EQ(describe_wait(WaitOp::recv, 1, 5, 0), "recv(source 1, tag 5)");
  EXPECT_EQ(describe_wait(WaitOp::recv, -1, -1, 0), "recv(any source, any tag)");
  EXPECT_EQ(describe_wait(WaitOp::send, 2, 0, 3), "send(dest 2, tag 0) on communicator 3");
  EXPECT_EQ(describe_wait(WaitOp::probe, 0, -1, 0), "probe(source 0, any tag)");
  EXPECT_EQ(describe_wait(WaitOp::collective, -1, 1, 0), "barrier");
  EXPECT_EQ(describe_wait(WaitOp::collective, -1, 4, 0), "collective allreduce");
  EXPECT_EQ(describe_wait(WaitOp::collective, -1, 999, 0), "collective");
  EXPECT_EQ(describe_wait(WaitOp::none, 1, 5, 0), "");
}

TEST(WaitReport, StateOfEachRank) {
  EXPECT_EQ(state_text(blocked(0, WaitOp::recv, 1)), "blocked");
  EXPECT_EQ(state_text(running(0)), "running");
  RankSnapshot f = running(0);
  f.state = RankState::finished;
  EXPECT_EQ(state_text(f), "finished");
  f.process_running = false;
  EXPECT_EQ(state_text(f), "exited");
  RankSnapshot p;
  EXPECT_EQ(state_text(p), "not attached");
}

TEST(WaitReport, FindsTheCycle) {
  std::vector<RankSnapshot> two = {blocked(0, WaitOp::recv, 1), blocked(1, WaitOp::recv, 0)};
  EXPECT_EQ(format_cycle(find_cycle(two)), "0 -> 1 -> 0");
  // 0 -> 1 -> 2 -> 3 -> 1: the cycle leaves 0 out.
  std::vector<RankSnapshot> tail = {blocked(0, WaitOp::recv, 1), blocked(1, WaitOp::send, 2),
                                    blocked(2, WaitOp::recv, 3), blocked(3, WaitOp::probe, 1)};
  EXPECT_EQ(format_cycle(find_cycle(tail)), "1 -> 2 -> 3 -> 1");
  // Any-source waits, collectives and running ranks are not edges.
  std::vector<RankSnapshot> none = {blocked(0, WaitOp::recv, -1), blocked(1, WaitOp::collective, -1, 1),
                                    running(2), blocked(3, WaitOp::recv, 2)};
  EXPECT_TRUE(find_cycle(none).empty());
  std::vector<RankSnapshot> self = {blocked(0, WaitOp::recv, 0)};
  EXPECT_TRUE(find_cycle(self).empty());
}

TEST(DeadlockDetector, NeedsEveryRunningRankBlockedAndUnchangedForTheWindow) {
  DeadlockDetector d(800ms);
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::recv, 1), blocked(1, WaitOp::recv, 0)};
  Clock::time_point t0{};
  EXPECT_FALSE(d.observe(ranks, t0));
  EXPECT_FALSE(d.observe(ranks, t0 + 400ms));
  EXPECT_TRUE(d.observe(ranks, t0 + 800ms));
}

TEST(DeadlockDetector, AComputingRankIsNotBlocked) {
  DeadlockDetector d(800ms);
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::recv, 1), running(1)};
  Clock::time_point t0{};
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(d.observe(ranks, t0 + i * 200ms));
}

TEST(DeadlockDetector, ARunnableRankIsNotStuck) {
  // Blocked in a recv, but runnable: starved of CPU on a loaded machine, about to see its message.
  DeadlockDetector d(800ms);
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::recv, 1), blocked(1, WaitOp::send, 0)};
  ranks[1].runnable = true;
  Clock::time_point t0{};
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(d.observe(ranks, t0 + i * 200ms));
  EXPECT_TRUE(find_cycle(ranks).empty());
  ranks[1].runnable = false;  // asleep again, nothing changed: the window starts now
  EXPECT_FALSE(d.observe(ranks, t0 + 2000ms));
  EXPECT_TRUE(d.observe(ranks, t0 + 2800ms));
}

TEST(DeadlockDetector, AFinishedOrStartingRankIsNotBlocked) {
  DeadlockDetector d(800ms);
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::recv, 1), running(1)};
  ranks[1].state = RankState::finished;
  Clock::time_point t0{};
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(d.observe(ranks, t0 + i * 200ms));
  ranks[1].state = RankState::pending;
  for (int i = 10; i < 20; ++i) EXPECT_FALSE(d.observe(ranks, t0 + i * 200ms));
}

TEST(DeadlockDetector, ProgressOrADoorbellRestartsTheWindow) {
  DeadlockDetector d(800ms);
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::recv, 1), blocked(1, WaitOp::recv, 0)};
  Clock::time_point t0{};
  EXPECT_FALSE(d.observe(ranks, t0));
  ranks[0].progress += 2;  // left a wait and entered the same one again between samples
  EXPECT_FALSE(d.observe(ranks, t0 + 600ms));
  EXPECT_FALSE(d.observe(ranks, t0 + 1200ms));
  ranks[1].doorbell += 1;  // someone woke it
  EXPECT_FALSE(d.observe(ranks, t0 + 1400ms));
  EXPECT_FALSE(d.observe(ranks, t0 + 2000ms));
  EXPECT_TRUE(d.observe(ranks, t0 + 2200ms));
}

TEST(DeadlockDetector, ARunningSampleInBetweenRestartsTheWindow) {
  DeadlockDetector d(800ms);
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::recv, 1), blocked(1, WaitOp::recv, 0)};
  Clock::time_point t0{};
  EXPECT_FALSE(d.observe(ranks, t0));
  std::vector<RankSnapshot> busy = {blocked(0, WaitOp::recv, 1), running(1)};
  EXPECT_FALSE(d.observe(busy, t0 + 400ms));
  EXPECT_FALSE(d.observe(ranks, t0 + 800ms));
  EXPECT_TRUE(d.observe(ranks, t0 + 1600ms));
}

TEST(DeadlockDetector, ExitedRanksDoNotCountButTheirExitRestartsTheWindow) {
  DeadlockDetector d(800ms);
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::recv, -1), blocked(1, WaitOp::recv, -1), running(2)};
  Clock::time_point t0{};
  EXPECT_FALSE(d.observe(ranks, t0));
  ranks[2].process_running = false;
  ranks[2].state = RankState::exited;
  EXPECT_FALSE(d.observe(ranks, t0 + 200ms));
  EXPECT_FALSE(d.observe(ranks, t0 + 600ms));
  EXPECT_TRUE(d.observe(ranks, t0 + 1000ms));
}

TEST(DeadlockDetector, NoRankRunningIsNoDeadlock) {
  DeadlockDetector d(800ms);
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::recv, 1)};
  ranks[0].process_running = false;
  Clock::time_point t0{};
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(d.observe(ranks, t0 + i * 200ms));
}

}  // namespace
}  // namespace cohort::launcher

namespace cohort::launcher {
namespace {

TEST(WaitReport, DescribesPatternWaits) {
  using transport::WaitOp;
  EXPECT_EQ(describe_wait(WaitOp::queue_get, -1, -1, 0, 3, WaitOp::none, false),
            "Queue.get (queue at 0xc0, empty)");
  EXPECT_EQ(describe_wait(WaitOp::queue_put, -1, 0, 0, 1, WaitOp::none, false),
            "Queue.put (queue at 0x40, full)");
  EXPECT_EQ(describe_wait(WaitOp::queue_put, -1, 1, 0, 1, WaitOp::none, true),
            "Queue.put (queue at 0x40, no pool space, with a timeout)");
  EXPECT_EQ(describe_wait(WaitOp::lock, 0, -1, 0, 2, WaitOp::none, false),
            "Lock.acquire (held by rank 0, lock at 0x80)");
  EXPECT_EQ(describe_wait(WaitOp::sync_barrier, -1, 4, 0, 2, WaitOp::none, false),
            "Barrier.wait (barrier at 0x80, 4 parties)");
  EXPECT_EQ(describe_wait(WaitOp::probe, 1, -1, 7, 0, WaitOp::pipe_recv, false), "Pipe.recv (from rank 1)");
  EXPECT_EQ(describe_wait(WaitOp::send, 0, 0, 7, 0, WaitOp::pipe_send, false), "Pipe.send (to rank 0)");
  // A context without a wait (the Pipe call has not blocked) is nothing.
  EXPECT_EQ(describe_wait(WaitOp::none, 1, 0, 7, 0, WaitOp::pipe_recv, false), "");
  EXPECT_EQ(describe_wait(WaitOp::recv, 1, 5, 0, 0, WaitOp::none, true), "recv(source 1, tag 5) with a timeout");
}

TEST(WaitReport, LockWaitsAreEdgesOfTheCycle) {
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::lock, 1, -1), blocked(1, WaitOp::lock, 2, -1),
                                     blocked(2, WaitOp::recv, 0)};
  EXPECT_EQ(find_cycle(ranks), (std::vector<int>{0, 1, 2, 0}));
  // Queue waits have no single peer: listed, never an edge.
  std::vector<RankSnapshot> queue = {blocked(0, WaitOp::queue_get, -1), blocked(1, WaitOp::queue_get, -1)};
  EXPECT_TRUE(find_cycle(queue).empty());
}

TEST(WaitReport, TimedWaitsAreNeverADeadlock) {
  std::vector<RankSnapshot> ranks = {blocked(0, WaitOp::event, -1), blocked(1, WaitOp::lock, 0, -1)};
  ranks[0].timed = true;
  EXPECT_TRUE(is_blocked(ranks[0]));
  EXPECT_FALSE(is_stuck(ranks[0]));
  DeadlockDetector d(800ms);
  auto t = Clock::now();
  for (int i = 0; i <= 10; ++i) EXPECT_FALSE(d.observe(ranks, t + i * 200ms));
  EXPECT_TRUE(find_cycle(ranks).empty());
  ranks[0].timed = false;  // the same waits without a time limit: a deadlock
  bool found = false;
  for (int i = 11; i <= 20; ++i) found = d.observe(ranks, t + i * 200ms) || found;
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace cohort::launcher
