// A rank that exits before taking part in a collective makes the others throw PeerLost naming
// it, never hang.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include <cohort/cohort.hpp>

#include "tests/support/rank_env.hpp"

namespace {

TEST(PeerLost, CollectivesWithAnExitedRankThrow) {
  auto& w = cohort::testing::env().world();
  if (w.size() < 2) GTEST_SKIP();
  const int gone = w.size() - 1;
  w.barrier();  // everyone is up
  if (w.rank() == gone) std::_Exit(0);  // leaves without a word (the launcher marks it exited)
  try {
    w.barrier();
    FAIL() << "barrier returned";
  } catch (const cohort::PeerLost& e) {
    EXPECT_EQ(e.peer(), gone);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("barrier"));
  }
  std::vector<double> v(100000, 1.0);
  EXPECT_THROW(w.broadcast(std::span(v), gone), cohort::PeerLost);
  double small = 1.0;  // the inline broadcast's own path (collectives.cpp, broadcast_impl)
  EXPECT_THROW(w.broadcast(small, gone), cohort::PeerLost);
  EXPECT_THROW(w.allreduce(v, std::plus<>{}), cohort::PeerLost);
  // The inline reduce, gather, allgather and scatter paths (collectives.cpp). A root waits for
  // the rank that left; a plain member of a reduce or gather only publishes, so it returns.
  auto lost_names_gone = [&](auto&& collective, const char* what) {
    try {
      collective();
      ADD_FAILURE() << what << " returned";
    } catch (const cohort::PeerLost& e) {
      EXPECT_EQ(e.peer(), gone) << what;
      EXPECT_THAT(e.what(), ::testing::HasSubstr(what));
    }
  };
  if (w.rank() == 0) {
    lost_names_gone([&] { (void)w.reduce(small, std::plus<>{}, 0); }, "reduce");
    lost_names_gone([&] { (void)w.gather(small, 0); }, "gather");
  } else {
    (void)w.reduce(small, std::plus<>{}, 0);
    (void)w.gather(small, 0);
  }
  lost_names_gone([&] { (void)w.allgather(small); }, "allgather");
  std::vector<int> parts(static_cast<std::size_t>(w.size()), 1);
  lost_names_gone([&] { (void)w.scatter(parts, gone); }, "scatter");
  // Blocks of 80 KB, one staging chunk each (alltoall's progress loop).
  std::vector<int> blocks(static_cast<std::size_t>(w.size()) * 20000, 1), got(blocks.size());
  lost_names_gone([&] { w.alltoall(blocks, got); }, "alltoall");
}

// Run on its own (ctest collectives_peer_lost_test.released_then_left.np3): a publisher waiting
// for its readers to release a line must not take a reader that released everything it was
// given and then exited for one that never will, while another reader is merely late. (Before
// the released() counts, rank 0 threw PeerLost naming rank 1 at its 65th broadcast.)
TEST(PeerLostLate, AReaderThatReleasedEverythingAndLeftIsNotLost) {
  auto& w = cohort::testing::env().world();
  if (w.size() != 3) GTEST_SKIP();
  w.barrier();  // call #0, main line 0
  constexpr int kMains = 64;  // transport::kCollectiveMains: call #65 reuses call #1's line
  if (w.rank() == 2) std::this_thread::sleep_for(std::chrono::milliseconds(300));  // late reader
  const int calls = w.rank() == 1 ? kMains : kMains + 1;
  for (int i = 1; i <= calls; ++i) {
    int x = w.rank() == 0 ? i * 7 : -1;
    w.broadcast(x, 0);  // inline: the root publishes and returns, the readers release
    ASSERT_EQ(x, i * 7) << "call #" << i;
  }
  // Rank 1 released calls #1..#64 and now ends (its Environment publishes what it released)
  // while rank 0 waits in call #65 for the late rank 2.
}

}  // namespace
