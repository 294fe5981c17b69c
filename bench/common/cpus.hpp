// Shared by the single-machine ceiling benchmarks (copy_ceiling, parallel_ceiling, wake_latency):
// the cpus this process may run on.
#pragma once

#include <sched.h>

#include <cstddef>
#include <vector>

namespace bench_common {

/// The first `at_most` cpus of this process's affinity mask, in order.
inline std::vector<int> allowed_cpus(std::size_t at_most) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof(allowed), &allowed);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < at_most; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  return cpus;
}

}  // namespace bench_common
