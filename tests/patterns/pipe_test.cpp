// cohort::Pipe at several rank counts: duplex ping-pong, one-way direction errors, serialized
// values, poll, close (EOF), inert pipes on the other ranks.
#include <gtest/gtest.h>

#include <cohort/cohort.hpp>
#include <cohort/pipe.hpp>

#include <cereal/types/map.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/rank_env.hpp"

namespace {

using namespace std::chrono_literals;

cohort::Communicator& world() { return cohort::testing::env().world(); }

struct Msg {  // cereal
  std::string text;
  std::vector<int> values;
  template <class A>
  void serialize(A& ar) {
    ar(text, values);
  }
};

TEST(Pipe, EndsMustBeTwoDistinctRanks) {
  auto& w = world();
  EXPECT_THROW(cohort::Pipe(w, 0, 0), cohort::InvalidArgument);
  EXPECT_THROW(cohort::Pipe(w, 0, w.size()), cohort::InvalidArgument);
}

TEST(Pipe, DuplexPingPongBetweenFirstAndLastRank) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP() << "needs two ranks";
  const int a = 0, b = w.size() - 1;
  cohort::Pipe pipe(w, a, b);
  const int r = w.rank();
  EXPECT_EQ(pipe.active(), r == a || r == b);
  if (!pipe) {
    EXPECT_EQ(pipe.peer(), -1);
    EXPECT_THROW(pipe.send(1), cohort::InvalidArgument);
    EXPECT_THROW((void)pipe.recv<int>(), cohort::InvalidArgument);
  } else {
    EXPECT_EQ(pipe.peer(), r == a ? b : a);
    EXPECT_TRUE(pipe.can_send());
    EXPECT_TRUE(pipe.can_recv());
    for (int i = 0; i < 1000; ++i) {
      if (r == a) {
        pipe.send(i);
        ASSERT_EQ(pipe.recv<int>(), i + 1);
      } else {
        int v = pipe.recv<int>();
        ASSERT_EQ(v, i);
        pipe.send(v + 1);
      }
    }
  }
  w.barrier();
}

TEST(Pipe, OneWayWriterAndReader) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP() << "needs two ranks";
  const int writer = w.size() - 1, reader = 0;
  cohort::Pipe pipe(w, writer, reader, cohort::PipeMode::one_way);
  if (w.rank() == writer) {
    EXPECT_TRUE(pipe.can_send());
    EXPECT_FALSE(pipe.can_recv());
    EXPECT_THROW((void)pipe.recv<int>(), cohort::InvalidArgument);
    EXPECT_THROW((void)pipe.poll(), cohort::InvalidArgument);
    for (int i = 0; i < 100; ++i) pipe.send(i * i);
    pipe.close();
    EXPECT_THROW(pipe.send(1), cohort::PipeClosed);
  } else if (w.rank() == reader) {
    EXPECT_FALSE(pipe.can_send());
    EXPECT_THROW(pipe.send(1), cohort::InvalidArgument);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(pipe.recv<int>(), i * i);
    // Everything was received, then the writer closed: EOF.
    EXPECT_TRUE(pipe.poll(10s));
    EXPECT_THROW((void)pipe.recv<int>(), cohort::PipeClosed);
    EXPECT_THROW((void)pipe.recv<int>(), cohort::PipeClosed);
  }
  w.barrier();
}

TEST(Pipe, SerializedValuesAndContainers) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP() << "needs two ranks";
  cohort::Pipe pipe(w, 1, 0);
  if (w.rank() == 1) {
    pipe.send(std::string("hello"));
    pipe.send(std::vector<double>(1000, 2.5));
    pipe.send(Msg{"msg", {1, 2, 3}});
    pipe.send(std::map<int, std::string>{{1, "one"}, {2, "two"}});
    pipe.send(std::string(100000, 'x'));
    auto back = pipe.recv<std::string>();
    EXPECT_EQ(back, "thanks");
  } else if (w.rank() == 0) {
    EXPECT_EQ(pipe.recv<std::string>(), "hello");
    std::vector<double> v;
    pipe.recv(v);
    EXPECT_EQ(v, std::vector<double>(1000, 2.5));
    Msg m = pipe.recv<Msg>();
    EXPECT_EQ(m.text, "msg");
    EXPECT_EQ(m.values, (std::vector<int>{1, 2, 3}));
    auto mp = pipe.recv<std::map<int, std::string>>();
    EXPECT_EQ(mp.at(2), "two");
    EXPECT_EQ(pipe.recv<std::string>().size(), 100000u);
    pipe.send(std::string("thanks"));
  }
  w.barrier();
}

TEST(Pipe, PollTimesOutThenSeesData) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP() << "needs two ranks";
  cohort::Pipe pipe(w, 0, 1);
  if (w.rank() == 0) {
    EXPECT_FALSE(pipe.poll());
    EXPECT_FALSE(pipe.poll(20ms));
    pipe.send(1);  // tell rank 1 to answer
    EXPECT_TRUE(pipe.poll(10s));
    EXPECT_TRUE(pipe.poll());  // still there until received
    EXPECT_EQ(pipe.recv<int>(), 2);
    EXPECT_FALSE(pipe.poll());
  } else if (w.rank() == 1) {
    EXPECT_EQ(pipe.recv<int>(), 1);
    pipe.send(2);
  }
  w.barrier();
}

TEST(Pipe, PipesBetweenEveryPairDoNotMix) {
  auto& w = world();
  const int n = w.size();
  // A ring of pipes: rank r -> r+1. Plus world traffic on tag 0 that must not be confused.
  if (n < 2) GTEST_SKIP() << "needs two ranks";
  std::vector<cohort::Pipe> pipes;
  for (int r = 0; r < n; ++r) pipes.emplace_back(w, r, (r + 1) % n);
  const int me = w.rank();
  cohort::Pipe& out = pipes[static_cast<std::size_t>(me)];
  cohort::Pipe& in = pipes[static_cast<std::size_t>((me + n - 1) % n)];
  w.send(-me, (me + 1) % n, cohort::Tag{0});
  out.send(me * 10);
  EXPECT_EQ(in.recv<int>(), ((me + n - 1) % n) * 10);
  EXPECT_EQ(w.recv<int>((me + n - 1) % n, cohort::Tag{0}), -((me + n - 1) % n));
  w.barrier();
}

}  // namespace
