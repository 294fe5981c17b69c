// Placement is a pure function: tested on synthetic machines far larger than the 2-core CI box.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "launcher/placement.hpp"

namespace cohort::launcher {
namespace {

std::vector<unsigned> range(unsigned first, unsigned last) {
  std::vector<unsigned> v(last - first + 1);
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(Placement, TwoPackagesWithSmtBindToConsecutiveCores) {
  auto topo = Topology::synthetic("pack:2 core:32 pu:2");
  EXPECT_EQ(count_cores(topo, {}), 64);
  Placement p = place(topo, {}, 4, BindPolicy::automatic, MapPolicy::core);
  EXPECT_EQ(p.cores, 64);
  EXPECT_FALSE(p.oversubscribed);
  EXPECT_EQ(p.binding, BindPolicy::core);
  ASSERT_EQ(p.ranks.size(), 4u);
  for (unsigned r = 0; r < 4; ++r) {
    EXPECT_EQ(p.ranks[r].cpus, (std::vector<unsigned>{2 * r, 2 * r + 1})) << "rank " << r;
  }
  EXPECT_EQ(p.ranks[3].where, "core 3 of package 0");
}

TEST(Placement, EveryCoreUsedOnceWhenRanksEqualCores) {
  auto topo = Topology::synthetic("pack:2 core:32 pu:2");
  Placement p = place(topo, {}, 64, BindPolicy::automatic, MapPolicy::package);
  EXPECT_FALSE(p.oversubscribed);
  std::vector<int> uses(128, 0);
  for (const auto& r : p.ranks) {
    ASSERT_EQ(r.cpus.size(), 2u);
    for (unsigned c : r.cpus) ++uses[c];
  }
  for (int u : uses) EXPECT_EQ(u, 1);
}

TEST(Placement, MapByPackageAlternatesPackages) {
  auto topo = Topology::synthetic("pack:2 core:32 pu:2");
  Placement p = place(topo, {}, 4, BindPolicy::core, MapPolicy::package);
  EXPECT_EQ(p.ranks[0].cpus, (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(p.ranks[1].cpus, (std::vector<unsigned>{64, 65}));
  EXPECT_EQ(p.ranks[2].cpus, (std::vector<unsigned>{2, 3}));
  EXPECT_EQ(p.ranks[3].cpus, (std::vector<unsigned>{66, 67}));
}

TEST(Placement, BindToPackageGivesTheWholePackage) {
  auto topo = Topology::synthetic("pack:2 core:32 pu:2");
  Placement p = place(topo, {}, 2, BindPolicy::package, MapPolicy::package);
  EXPECT_EQ(p.ranks[0].cpus, range(0, 63));
  EXPECT_EQ(p.ranks[1].cpus, range(64, 127));
  EXPECT_EQ(p.ranks[1].where, "package 1");
}

TEST(Placement, OversubscribedJobIsNotBoundByDefault) {
  auto topo = Topology::synthetic("pack:2 core:32 pu:2");
  Placement p = place(topo, {}, 65, BindPolicy::automatic, MapPolicy::core);
  EXPECT_TRUE(p.oversubscribed);
  EXPECT_EQ(p.binding, BindPolicy::none);
  ASSERT_EQ(p.ranks.size(), 65u);
  for (const auto& r : p.ranks) EXPECT_TRUE(r.cpus.empty());
}

TEST(Placement, ExplicitCoreBindingWrapsAroundWhenOversubscribed) {
  auto topo = Topology::synthetic("pack:1 core:4 pu:1");
  Placement p = place(topo, {}, 6, BindPolicy::core, MapPolicy::core);
  EXPECT_TRUE(p.oversubscribed);
  EXPECT_EQ(p.ranks[4].cpus, (std::vector<unsigned>{0}));
  EXPECT_EQ(p.ranks[5].cpus, (std::vector<unsigned>{1}));
}

TEST(Placement, NumaNodesBindAndMap) {
  // 2 packages x 2 NUMA nodes x 4 cores x 2 PUs: node k holds cpus 8k .. 8k+7.
  auto topo = Topology::synthetic("pack:2 numa:2 core:4 pu:2");
  EXPECT_EQ(count_cores(topo, {}), 16);
  Placement by_numa = place(topo, {}, 4, BindPolicy::numa, MapPolicy::numa);
  for (unsigned r = 0; r < 4; ++r) {
    EXPECT_EQ(by_numa.ranks[r].cpus, range(8 * r, 8 * r + 7)) << "rank " << r;
  }
  EXPECT_EQ(by_numa.ranks[2].where.rfind("NUMA node 2", 0), 0u) << by_numa.ranks[2].where;
  Placement cores = place(topo, {}, 5, BindPolicy::core, MapPolicy::numa);
  EXPECT_EQ(cores.ranks[1].cpus, (std::vector<unsigned>{8, 9}));   // first core of node 1
  EXPECT_EQ(cores.ranks[4].cpus, (std::vector<unsigned>{2, 3}));   // second core of node 0
}

TEST(Placement, NumaBindingWithConsecutiveMapping) {
  auto topo = Topology::synthetic("pack:1 numa:4 core:2 pu:1");
  Placement p = place(topo, {}, 3, BindPolicy::numa, MapPolicy::core);
  EXPECT_EQ(p.ranks[0].cpus, (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(p.ranks[1].cpus, (std::vector<unsigned>{0, 1}));  // core 1 is on node 0 too
  EXPECT_EQ(p.ranks[2].cpus, (std::vector<unsigned>{2, 3}));
}

TEST(Placement, AllowedCpusRestrictCoresAndBindings) {
  auto topo = Topology::synthetic("pack:2 core:32 pu:2");
  std::vector<unsigned> allowed = {1, 3, 64};  // one PU of cores 0, 1 and 32
  EXPECT_EQ(count_cores(topo, allowed), 3);
  Placement p = place(topo, allowed, 3, BindPolicy::automatic, MapPolicy::core);
  EXPECT_FALSE(p.oversubscribed);
  EXPECT_EQ(p.ranks[0].cpus, (std::vector<unsigned>{1}));
  EXPECT_EQ(p.ranks[1].cpus, (std::vector<unsigned>{3}));
  EXPECT_EQ(p.ranks[2].cpus, (std::vector<unsigned>{64}));
  Placement pkg = place(topo, allowed, 1, BindPolicy::package, MapPolicy::core);
  EXPECT_EQ(pkg.ranks[0].cpus, (std::vector<unsigned>{1, 3}));
  EXPECT_TRUE(place(topo, allowed, 4, BindPolicy::automatic, MapPolicy::core).oversubscribed);
}

TEST(Placement, TopologyWithoutCoresUsesPus) {
  auto topo = Topology::synthetic("pack:1 pu:3");
  EXPECT_EQ(count_cores(topo, {}), 3);
  Placement p = place(topo, {}, 3, BindPolicy::automatic, MapPolicy::core);
  EXPECT_EQ(p.ranks[2].cpus, (std::vector<unsigned>{2}));
}

TEST(Placement, NoBindingRequested) {
  auto topo = Topology::synthetic("pack:2 core:2 pu:1");
  Placement p = place(topo, {}, 2, BindPolicy::none, MapPolicy::core);
  EXPECT_FALSE(p.oversubscribed);
  for (const auto& r : p.ranks) EXPECT_TRUE(r.cpus.empty());
}

TEST(Placement, BadSyntheticDescriptionThrows) {
  EXPECT_THROW(Topology::synthetic("bogus:3"), std::invalid_argument);
}

TEST(Placement, PolicyNames) {
  EXPECT_EQ(parse_bind_policy("core"), BindPolicy::core);
  EXPECT_EQ(parse_bind_policy("socket"), BindPolicy::package);
  EXPECT_EQ(parse_bind_policy("numa"), BindPolicy::numa);
  EXPECT_EQ(parse_bind_policy("none"), BindPolicy::none);
  EXPECT_FALSE(parse_bind_policy("hwthread"));
  EXPECT_EQ(parse_map_policy("package"), MapPolicy::package);
  EXPECT_FALSE(parse_map_policy("node"));
}

TEST(CpuList, FormatsRanges) {
  EXPECT_EQ(format_cpu_list(std::vector<unsigned>{}), "");
  EXPECT_EQ(format_cpu_list(std::vector<unsigned>{5}), "5");
  EXPECT_EQ(format_cpu_list(std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
}

}  // namespace
}  // namespace cohort::launcher
