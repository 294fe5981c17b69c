// Inconsistent collective calls: the ranks that can see the inconsistency throw
// cohort::CollectiveMismatch naming both values. Each scenario runs as its own job (the
// communicator is unusable afterwards): see CMakeLists.txt.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <cohort/cohort.hpp>

#include "tests/support/rank_env.hpp"

namespace {

cohort::Communicator& world() { return cohort::testing::env().world(); }

TEST(Mismatch, AllreduceCountsDiffer) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  std::vector<int> v(w.rank() == 0 ? 2 : 1, 1);
  try {
    w.allreduce(v, std::plus<>{});
    FAIL() << "no error";
  } catch (const cohort::CollectiveMismatch& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("allreduce"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr(w.rank() == 0 ? "rank 1 passed bytes 4, this rank passed 8"
                                                             : "rank 0 passed bytes 8, this rank passed 4"));
  }
}

TEST(Mismatch, AllreduceOneRankDiffers) {
  // Every rank learns of it, whichever algorithm runs (flat, or gather-release through rank 0).
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  std::vector<float> v(w.rank() == w.size() - 1 ? 3 : 2, 1.0f);
  EXPECT_THROW(w.allreduce(v, std::plus<>{}), cohort::CollectiveMismatch);
}

TEST(Mismatch, DifferentOperations) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  if (w.rank() == 0) {
    EXPECT_THROW(w.allreduce(1.0, cohort::max), cohort::CollectiveMismatch);
  } else {
    EXPECT_THROW(w.allreduce(1.0, std::plus<>{}), cohort::CollectiveMismatch);
  }
}

TEST(Mismatch, DifferentCollectives) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  try {
    if (w.rank() == 0) {
      w.barrier();
    } else {
      (void)w.allreduce(1, std::plus<>{});
    }
    FAIL() << "no error";
  } catch (const cohort::CollectiveMismatch& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(w.rank() == 0 ? "called allreduce" : "called barrier"));
  }
}

TEST(Mismatch, ReduceRootsDiffer) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  int root = w.rank() == 0 ? 0 : 1;
  if (w.rank() <= 1) {
    try {
      (void)w.reduce(1, std::plus<>{}, root);
      FAIL() << "no error";
    } catch (const cohort::CollectiveMismatch& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("root"));
    }
  } else {
    (void)w.reduce(1, std::plus<>{}, root);  // a plain member cannot tell
  }
}

TEST(Mismatch, BroadcastCountsDiffer) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  std::vector<double> v(w.rank() == 1 ? 5 : 4, 0.0);
  if (w.rank() == 1) {
    try {
      w.broadcast(std::span(v), 0);
      FAIL() << "no error";
    } catch (const cohort::CollectiveMismatch& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("rank 0 passed bytes 32, this rank passed 40"));
    }
  } else {
    w.broadcast(std::span(v), 0);
  }
}

TEST(Mismatch, BroadcastBlockingMatchedWithNonBlocking) {
  // Two ranks, 1 MiB: the blocking broadcast copies across address spaces, ibroadcast stages.
  auto& w = world();
  if (w.size() != 2) GTEST_SKIP();
  std::vector<char> v(1 << 20, 'x');
  if (w.rank() == 1) {
    try {
      w.broadcast(std::span(v), 0);
      FAIL() << "no error";
    } catch (const cohort::CollectiveMismatch& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("rank 0 called the non-blocking form of this "
                                                 "broadcast, this rank the blocking one"));
    }
  } else {
    auto req = w.ibroadcast(std::span(v), 0);
    try {
      req.wait();  // the root cannot see the mismatch; its staged chunks fit the ring
    } catch (const cohort::PeerLost&) {
    }
  }
}

TEST(Mismatch, AllreduceBlockingMatchedWithNonBlocking) {
  // Two ranks, 1 MiB: the blocking allreduce copies across address spaces, iallreduce stages.
  auto& w = world();
  if (w.size() != 2) GTEST_SKIP();
  std::vector<float> in(1 << 18, 1.0f), out(in.size());
  if (w.rank() == 1) {
    try {
      w.allreduce(in, out, std::plus<>{});
      FAIL() << "no error";
    } catch (const cohort::CollectiveMismatch& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("rank 0 called the non-blocking form of this "
                                                 "allreduce, this rank the blocking one"));
    }
  } else {
    try {
      // Starting it may already see rank 1's publication, and fail there.
      auto req = w.iallreduce(in, out, std::plus<>{});
      req.wait();
      FAIL() << "no error";
    } catch (const cohort::CollectiveMismatch& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("rank 1 called the blocking form of this "
                                                 "allreduce, this rank the non-blocking one"));
    } catch (const cohort::PeerLost&) {
      // Rank 1 saw the mismatch first and ended: as good, the job cannot go on either way.
    }
  }
}

TEST(Mismatch, GathervCountsDiffer) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  std::vector<std::size_t> counts(static_cast<std::size_t>(w.size()), 2);
  std::vector<int> mine(w.rank() == 1 ? 3 : 2, w.rank());
  std::vector<int> out(w.rank() == 0 ? 2 * counts.size() : 0);
  if (w.rank() == 0) {
    EXPECT_THROW(w.gatherv(mine, out, counts, 0), cohort::CollectiveMismatch);
  } else {
    w.gatherv(mine, out, counts, 0);
  }
}

TEST(Mismatch, AllgathervCountsDiffer) {
  // Rank 1 sends 3 elements and says so; the others expect 2 from it.
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  std::vector<std::size_t> counts(static_cast<std::size_t>(w.size()), 2);
  if (w.rank() == 1) counts[1] = 3;
  std::vector<std::int64_t> mine(counts[static_cast<std::size_t>(w.rank())], w.rank());
  std::vector<std::int64_t> out(counts.size() * 2 + (w.rank() == 1 ? 1 : 0));
  if (w.rank() == 1) {
    w.allgatherv(mine, out, counts);  // what it reads matches what it expects
  } else {
    try {
      w.allgatherv(mine, out, counts);
      FAIL() << "no error";
    } catch (const cohort::CollectiveMismatch& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("allgather"));
      EXPECT_THAT(e.what(), ::testing::HasSubstr("rank 1 passed bytes 24, this rank passed 16"));
    }
  }
}

TEST(Mismatch, ScatterCountsDiffer) {
  // Rank 1 expects two elements per rank, the root sends one.
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  const auto n = static_cast<std::size_t>(w.size());
  std::vector<int> src(w.rank() == 0 ? n : 0, 7), got(w.rank() == 1 ? 2 : 1);
  if (w.rank() == 1) {
    try {
      w.scatter(src, got, 0);
      FAIL() << "no error";
    } catch (const cohort::CollectiveMismatch& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("scatter"));
      EXPECT_THAT(e.what(), ::testing::HasSubstr("rank 0 passed bytes " + std::to_string(4 * n) +
                                                 ", this rank passed " + std::to_string(8 * n)));
    }
  } else {
    w.scatter(src, got, 0);
  }
}

TEST(Mismatch, AlltoallBlocksDiffer) {
  // Rank 0's blocks are 64 KiB, the others' 16 KiB (each one staging chunk a block): every
  // rank names both stream sizes.
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  const auto n = static_cast<std::size_t>(w.size());
  const std::size_t block = w.rank() == 0 ? 65536 : 16384;
  std::vector<char> in(block * n, 1), out(block * n);
  const std::size_t mine = block * (n - 1);
  const std::size_t theirs = (w.rank() == 0 ? 16384 : 65536) * (n - 1);
  try {
    w.alltoall(in, out);
    FAIL() << "no error";
  } catch (const cohort::CollectiveMismatch& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("alltoall"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("passed bytes " + std::to_string(theirs) +
                                               ", this rank passed " + std::to_string(mine)));
  }
}

TEST(Mismatch, BadArgumentsAreInvalidArgument) {
  auto& w = world();
  std::vector<int> in(3), out(2);
  EXPECT_THROW(w.allreduce(in, out, std::plus<>{}), cohort::InvalidArgument);
  int x = 0;
  EXPECT_THROW(w.broadcast(x, w.size()), cohort::InvalidArgument);
}

}  // namespace
