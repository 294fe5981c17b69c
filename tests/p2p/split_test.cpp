// Large raw messages as split copies (runtime/p2p/engine.cpp, "split copies"): the receiver reads
// the first half out of the sender's buffer while the sender writes the second half into the
// receiver's. Checks the data around the threshold and odd sizes both ways, that the copies
// really crossed (the engine's count, on both sides), a message nobody had posted for (it
// streams), a receive that refuses it (truncation), a rank that does not offer, every refused
// copy (injected: the sender's write, the receiver's read, both), MPI's order among split,
// streamed and eager messages, any-source receives from two senders, receives into a vector.
// Under COHORT_CMA=0 (ctest split_test.np2.no_cma) every message streams.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include <cohort/cohort.hpp>

#include "runtime/p2p/engine.hpp"
#include "runtime/runtime.hpp"
#include "tests/support/rank_env.hpp"

namespace {

cohort::Communicator& world() { return cohort::testing::env().world(); }
cohort::p2p::Engine& engine() { return cohort::detail::Runtime::current()->p2p(); }
constexpr std::size_t kMin = cohort::p2p::kSplitMinBytes;

/// These tests are about the split copies: a receiver takes every offer, whatever it measured
/// (p2p::SplitModeChooser); declined offers are tested below and by p2p_test.np2.split_declined.
struct TakeEveryOffer : ::testing::Environment {
  void SetUp() override { engine().fix_split(true); }
};
::testing::Environment* const take_every_offer = ::testing::AddGlobalTestEnvironment(new TakeEveryOffer);

bool enabled_by_environment() {
  const char* v = std::getenv("COHORT_CMA");
  return v == nullptr || v[0] != '0';
}

std::uint8_t byte_at(std::size_t seed, std::size_t i) {
  return static_cast<std::uint8_t>((i * 31 + seed * 7 + (i >> 12)) & 0xff);
}

std::vector<std::uint8_t> pattern(std::size_t seed, std::size_t bytes) {
  std::vector<std::uint8_t> v(bytes);
  for (std::size_t i = 0; i < bytes; ++i) v[i] = byte_at(seed, i);
  return v;
}

// Rank `from` sends `bytes` to rank `to` (a posted receive: irecv, then a barrier, then the
// send); both check that the crossing count moved by `crossed`.
void send_one(int from, int to, std::size_t bytes, std::size_t seed, int crossed) {
  auto& w = world();
  const std::uint64_t before = engine().split_copies();
  if (w.rank() == to) {
    std::vector<std::uint8_t> got(bytes, 0);
    auto req = w.irecv(std::span(got), from, cohort::Tag{5});
    w.barrier();
    req.wait();
    ASSERT_TRUE(got == pattern(seed, bytes)) << "bytes=" << bytes << " from " << from;
  } else if (w.rank() == from) {
    w.barrier();
    w.send(std::span<const std::uint8_t>(pattern(seed, bytes)), to, cohort::Tag{5});
  } else {
    w.barrier();
  }
  if (w.rank() == from || w.rank() == to) {
    EXPECT_EQ(engine().split_copies(), before + static_cast<std::uint64_t>(crossed))
        << "bytes=" << bytes << " rank " << w.rank();
  }
}

int crosses(std::size_t bytes) { return enabled_by_environment() && bytes >= kMin ? 1 : 0; }

TEST(Split, SizesAroundTheThresholdBothWays) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  std::size_t seed = 0;
  for (std::size_t bytes : {kMin - 1, kMin, kMin + 1, kMin + 4095, 2 * kMin + 4097,
                            (1ul << 20) + 5, (4ul << 20) + 3}) {
    send_one(0, 1, bytes, ++seed, crosses(bytes));
    send_one(1, 0, bytes, ++seed, crosses(bytes));
    if (enabled_by_environment() && !engine().cross_memory().on()) {
      GTEST_SKIP() << "the kernel refused cross-memory attach here: only the stream was checked";
    }
  }
}

TEST(Split, AMessageNobodyPostedForStreams) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  const std::size_t bytes = (1ul << 20) + 77;
  const std::uint64_t before = engine().split_copies();
  if (w.rank() == 0) {
    const std::vector<std::uint8_t> data = pattern(1, bytes);  // an isend's buffer outlives it
    auto req = w.isend(std::span<const std::uint8_t>(data), 1, cohort::Tag{6});
    w.barrier();
    req.wait();
  } else if (w.rank() == 1) {
    // A probe takes the frame into the unexpected queue: no posted receive, so "stream it".
    w.barrier();
    cohort::Status st = w.probe(0, cohort::Tag{6});
    EXPECT_EQ(st.bytes, bytes);
    std::vector<std::uint8_t> got(bytes);
    w.recv(std::span(got), 0, cohort::Tag{6});
    EXPECT_TRUE(got == pattern(1, bytes));
  } else {
    w.barrier();
  }
  EXPECT_EQ(engine().split_copies(), before);
}

TEST(Split, ATruncatedReceiveRefusesAndTheNextMessageArrives) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  const std::size_t bytes = 2 * kMin;
  if (w.rank() == 0) {
    w.send(std::span<const std::uint8_t>(pattern(2, bytes)), 1, cohort::Tag{7});
    w.send(std::span<const std::uint8_t>(pattern(3, bytes)), 1, cohort::Tag{7});
  } else if (w.rank() == 1) {
    std::vector<std::uint8_t> small(bytes / 2);
    EXPECT_THROW(w.recv(std::span(small), 0, cohort::Tag{7}), cohort::TruncationError);
    std::vector<std::uint8_t> got(bytes);
    w.recv(std::span(got), 0, cohort::Tag{7});
    EXPECT_TRUE(got == pattern(3, bytes));
  }
  w.barrier();
}

TEST(Split, ARankThatDoesNotOfferGetsEverythingStreamed) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  for (int declining = 0; declining < 2; ++declining) {
    const bool saved = engine().cross_memory().on();
    if (w.rank() == declining) engine().cross_memory().allow(false);
    send_one(0, 1, (1ul << 20) + 3, 10 + static_cast<std::size_t>(declining), 0);
    send_one(1, 0, (1ul << 20) + 3, 20 + static_cast<std::size_t>(declining), 0);
    engine().cross_memory().allow(saved);
    w.barrier();
  }
}

TEST(Split, AReceiverThatDeclinesGetsEverythingStreamed) {
  // What a receiver does when SplitModeChooser finds the stream faster: it answers "stream it".
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  for (int declining = 0; declining < 2; ++declining) {
    if (w.rank() == declining) engine().fix_split(false);
    send_one(0, 1, (1ul << 20) + 3, 30 + static_cast<std::size_t>(declining),
             declining == 1 ? 0 : crosses((1ul << 20) + 3));
    send_one(1, 0, (1ul << 20) + 5, 40 + static_cast<std::size_t>(declining),
             declining == 0 ? 0 : crosses((1ul << 20) + 5));
    engine().fix_split(true);
    w.barrier();
  }
}

TEST(Split, RefusedCopiesStreamWhatTheyLeftOut) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  if (!enabled_by_environment()) GTEST_SKIP() << "COHORT_CMA=0: no copy is attempted";
  struct Case { bool sender_fails, receiver_fails; };
  std::size_t seed = 100;
  for (Case k : {Case{true, false}, Case{false, true}, Case{true, true}}) {
    for (std::size_t bytes : {kMin + 1, (1ul << 20) + 4097}) {
      const bool fails = (w.rank() == 0 && k.sender_fails) || (w.rank() == 1 && k.receiver_fails);
      if (fails) engine().cross_memory().inject_failures(1);
      send_one(0, 1, bytes, ++seed, 0);
      if (w.rank() < 2) {
        EXPECT_EQ(engine().cross_memory().on(), !fails) << "a refusal turns the offer off";
      }
      engine().cross_memory().allow(true);
      w.barrier();
      send_one(0, 1, bytes, ++seed, 1);  // and the next message crosses again
    }
  }
}

TEST(Split, OrderIsKeptAmongSplitStreamedAndEagerMessages) {
  auto& w = world();
  if (w.size() < 2) GTEST_SKIP();
  const std::size_t sizes[] = {8, kMin, 100, kMin - 1, (1ul << 20) + 1, 4000, kMin + 9, 1};
  constexpr int kRounds = 3;
  if (w.rank() == 0) {
    std::vector<cohort::Request> reqs;
    std::vector<std::vector<std::uint8_t>> keep;
    for (int r = 0; r < kRounds; ++r) {
      for (std::size_t i = 0; i < std::size(sizes); ++i) {
        keep.push_back(pattern(static_cast<std::size_t>(r) * 100 + i, sizes[i]));
        reqs.push_back(w.isend(std::span<const std::uint8_t>(keep.back()), 1, cohort::Tag{8}));
      }
    }
    cohort::wait_all(reqs);
  } else if (w.rank() == 1) {
    for (int r = 0; r < kRounds; ++r) {
      for (std::size_t i = 0; i < std::size(sizes); ++i) {
        std::vector<std::uint8_t> got;  // sized by the message: the order shows in the sizes
        cohort::Status st = w.recv(got, cohort::any_source, cohort::any_tag);
        ASSERT_EQ(st.bytes, sizes[i]) << "round " << r << " message " << i;
        ASSERT_TRUE(got == pattern(static_cast<std::size_t>(r) * 100 + i, sizes[i]));
      }
    }
  }
  w.barrier();
}

TEST(Split, AnySourceFromTwoSenders) {
  auto& w = world();
  if (w.size() < 3) GTEST_SKIP();
  const std::size_t bytes = (1ul << 20) + 11;
  if (w.rank() == 1 || w.rank() == 2) {
    for (int i = 0; i < 4; ++i) {
      w.send(std::span<const std::uint8_t>(pattern(static_cast<std::size_t>(w.rank() * 10 + i), bytes)), 0,
             cohort::Tag{9});
    }
  } else if (w.rank() == 0) {
    int next[3] = {0, 0, 0};
    for (int k = 0; k < 8; ++k) {
      std::vector<std::uint8_t> got(bytes);
      cohort::Status st = w.recv(std::span(got), cohort::any_source, cohort::Tag{9});
      ASSERT_TRUE(st.source == 1 || st.source == 2);
      const int i = next[st.source]++;
      ASSERT_TRUE(got == pattern(static_cast<std::size_t>(st.source * 10 + i), bytes))
          << "from " << st.source << " message " << i;
    }
  }
  w.barrier();
}

}  // namespace
