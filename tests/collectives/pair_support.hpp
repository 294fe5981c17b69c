// What the tests of copies across address spaces share (pair_broadcast_test, pair_allreduce_test).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include <cohort/cohort.hpp>

#include "runtime/collectives/engine.hpp"
#include "runtime/runtime.hpp"
#include "tests/support/rank_env.hpp"

namespace cohort::testing {

/// This rank's collectives engine (its cross-memory copier and count of crossing calls).
inline collectives::Engine& engine() { return detail::Runtime::current()->collectives(); }

/// These tests are about copies across address spaces: two-rank allreduces copy whenever both
/// ranks can, whatever the engine measured (collectives::PairModes); the staged form is tested
/// under COHORT_CMA=0, by the tests that fix it here, and by collectives_test.np2.pair_staged.
struct CopyWheneverBothCan : ::testing::Environment {
  void SetUp() override { engine().pair_modes().fix(false); }
};
inline ::testing::Environment* const copy_whenever_both_can =
    ::testing::AddGlobalTestEnvironment(new CopyWheneverBothCan);

/// False under COHORT_CMA=0 (the ctest runs *.no_cma): then no rank offers to cross.
inline bool cross_memory_enabled_by_environment() {
  const char* v = std::getenv("COHORT_CMA");
  return v == nullptr || v[0] != '0';
}

/// World at np=2; at more ranks, pairs (0 1) (2 3) ... from split (a last odd rank is alone).
inline Communicator& pair() {
  static std::optional<Communicator> sub;
  auto& w = env().world();
  if (w.size() == 2) return w;
  if (!sub) sub = w.split(w.rank() / 2, w.rank());
  if (!sub) throw std::logic_error("split with a color returned no communicator");
  return *sub;
}

/// Runs `calls` (collectives on `c`) with rank `declining` not offering cross-memory copies,
/// checks that none of them crossed, and restores the offer on every rank before the next call
/// reads the offers.
template <class Calls>
void expect_staged_when_one_declines(Communicator& c, int declining, Calls&& calls) {
  const bool saved = engine().cross_memory().on();
  if (c.rank() == declining) engine().cross_memory().allow(false);
  const std::uint64_t before = engine().cross_memory_calls();
  calls();
  EXPECT_EQ(engine().cross_memory_calls(), before) << "rank " << declining << " declined";
  engine().cross_memory().allow(saved);
  c.barrier();
}

/// Runs `collective` on the two-rank `c` while a point-to-point message of round `i` to and
/// from the peer is in flight on the same communicator, then checks that message.
template <class Collective>
void with_message_in_flight(Communicator& c, int i, Collective&& collective) {
  const int peer = 1 - c.rank();
  std::vector<double> mine(5000, c.rank() + i), theirs(5000);
  auto req = c.irecv(std::span(theirs), peer, Tag{i});
  c.send(std::span<const double>(mine), peer, Tag{i});
  collective();
  req.wait();
  EXPECT_EQ(theirs[4999], peer + i);
}

}  // namespace cohort::testing
