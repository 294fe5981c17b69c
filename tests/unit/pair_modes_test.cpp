// How two-rank allreduces choose between copying across address spaces and the staging slots
// (collectives::PairModes over transport::ModeChooser), fed with made-up timings: each power of
// two of the size is chosen on its own, a job's first (cold) calls of a mode are not held
// against it, and COHORT_PAIR_STAGED or fix() overrides what was measured.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>

#include "runtime/collectives/engine.hpp"

namespace cohort::collectives {
namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;

/// A machine on which a call of `bytes` takes `copy_ns` copied and `staged_ns` staged, except
/// the first `cold_staged` staged calls, which take `cold_ns`.
struct Machine {
  std::uint64_t copy_ns = 120000;
  std::uint64_t staged_ns = 65000;
  int cold_staged = 0;
  std::uint64_t cold_ns = 3000000;
  int staged_calls = 0;

  /// Makes `calls` calls in the mode `modes` asks for; returns how many were staged.
  int run(PairModes& modes, std::uint64_t bytes, int calls) {
    int staged = 0;
    for (int i = 0; i < calls; ++i) {
      const bool s = modes.staged(bytes);
      std::uint64_t ns = copy_ns;
      if (s) ns = staged_calls++ < cold_staged ? cold_ns : staged_ns;
      modes.record(bytes, s, ns);
      staged += s ? 1 : 0;
    }
    return staged;
  }
};

TEST(PairModes, CopiesUntilStagingIsMeasuredFaster) {
  PairModes modes;
  EXPECT_FALSE(modes.staged(kMiB));
  Machine m;  // 1 MiB on the guest of 2026-12-07 night: 65 us staged against 120 copied
  EXPECT_GT(m.run(modes, kMiB, 1000), 950);
  EXPECT_TRUE(modes.staged(kMiB));
  // It still looks at copying now and then.
  EXPECT_GT(modes.chooser(kMiB).count(false), 1000u / PairModes::kExploreEvery);
}

TEST(PairModes, AJobsFirstStagedCallsAreNotHeldAgainstStaging) {
  PairModes modes;
  Machine m;
  m.cold_staged = 4;  // a job's first staged calls of 1 MiB: 0.3-3 ms on the 2026-12-07 guest
  m.run(modes, kMiB, 100);
  EXPECT_TRUE(modes.staged(kMiB));
  EXPECT_NEAR(modes.chooser(kMiB).rate(true), static_cast<double>(kMiB) / 65000, 0.5);
}

TEST(PairModes, EachSizeIsChosenOnItsOwn) {
  PairModes modes;
  Machine big;  // staging faster at 1 MiB
  big.run(modes, kMiB, 300);
  Machine small{11000, 14000};  // copying faster at 64 KiB
  small.run(modes, 64 * kKiB, 300);
  EXPECT_TRUE(modes.staged(kMiB));
  EXPECT_TRUE(modes.staged(2 * kMiB - 1));  // the same power of two
  EXPECT_FALSE(modes.staged(2 * kMiB));     // the next one: not measured yet
  EXPECT_FALSE(modes.staged(64 * kKiB));
  // 32 KiB is the first size class; 16 MiB and more share the last.
  Machine tiny{9000, 4000};
  tiny.run(modes, 32 * kKiB, 300);
  EXPECT_TRUE(modes.staged(64 * kKiB - 1));
  EXPECT_FALSE(modes.staged(64 * kKiB));
  Machine huge{4000000, 2000000};
  huge.run(modes, 16 * kMiB, 300);
  EXPECT_TRUE(modes.staged(std::uint64_t{1} << 34));
}

TEST(PairModes, NeedsAClearMarginToStage) {
  PairModes modes;
  Machine m{30000, 28500};  // staging 5% faster
  EXPECT_LT(m.run(modes, 256 * kKiB, 1000), 1000 / 20);
  EXPECT_FALSE(modes.staged(256 * kKiB));
}

TEST(PairModes, FollowsAChangeBackToCopying) {
  PairModes modes;
  Machine m;
  m.run(modes, kMiB, 500);
  EXPECT_TRUE(modes.staged(kMiB));
  // The host moves the vCPUs: staging slows down, noticed at the next look at copying.
  m.copy_ns = 60000;
  m.staged_ns = 150000;
  m.run(modes, kMiB, 2 * static_cast<int>(PairModes::kExploreEvery));
  EXPECT_FALSE(modes.staged(kMiB));
}

TEST(PairModes, FixedModesIgnoreTimings) {
  PairModes modes;
  modes.fix(false);
  Machine m;
  EXPECT_EQ(m.run(modes, kMiB, 300), 0);
  modes.fix(true);
  Machine slow_staging{1000, 900000};
  EXPECT_EQ(slow_staging.run(modes, 64 * kKiB, 300), 300);
  ::setenv("COHORT_PAIR_STAGED", "1", 1);
  PairModes from_environment;
  ::unsetenv("COHORT_PAIR_STAGED");
  EXPECT_TRUE(from_environment.staged(32 * kKiB));
  EXPECT_EQ(slow_staging.run(from_environment, 32 * kKiB, 300), 300);
}

}  // namespace
}  // namespace cohort::collectives
