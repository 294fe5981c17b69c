// cohort::cpu_count / available_cpus agree with the kernel's affinity mask.
#include <gtest/gtest.h>
#include <sched.h>

#include <cohort/system.hpp>

#include <algorithm>

namespace {

int affinity_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
  return CPU_COUNT(&set);
}

TEST(System, CpuCountMatchesTheAffinityMask) {
  auto cpus = cohort::available_cpus();
  EXPECT_GE(cohort::cpu_count(), 1);
  EXPECT_EQ(static_cast<std::size_t>(cohort::cpu_count()), cpus.size());
  EXPECT_TRUE(std::is_sorted(cpus.begin(), cpus.end()));
  EXPECT_EQ(cohort::cpu_count(), affinity_count());
}

TEST(System, CpuCountFollowsANarrowerBinding) {
  cpu_set_t old;
  CPU_ZERO(&old);
  ASSERT_EQ(sched_getaffinity(0, sizeof(old), &old), 0);
  auto cpus = cohort::available_cpus();
  ASSERT_FALSE(cpus.empty());
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpus.back(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  EXPECT_EQ(cohort::cpu_count(), 1);
  EXPECT_EQ(cohort::available_cpus(), std::vector<int>{cpus.back()});
  ASSERT_EQ(sched_setaffinity(0, sizeof(old), &old), 0);
}

}  // namespace
