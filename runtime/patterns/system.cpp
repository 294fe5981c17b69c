// cohort::cpu_count / available_cpus through hwloc.
#include "cohort/system.hpp"

#include <hwloc.h>

#include <memory>
#include <system_error>

#include "runtime/platform/placement.hpp"

namespace cohort {

namespace {

struct Bitmap {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  ~Bitmap() { hwloc_bitmap_free(set); }
  Bitmap() = default;
  Bitmap(const Bitmap&) = delete;
  Bitmap& operator=(const Bitmap&) = delete;
};

}  // namespace

std::vector<int> available_cpus() {
  // The same discovery as cohortrun's placement (no I/O plugins, no cpuid pass).
  platform::Topology topology = platform::Topology::load_system();
  hwloc_topology_t topo = topology.get();
  Bitmap bound;
  // The process's binding; if hwloc cannot tell (no support), every allowed cpu counts.
  if (hwloc_get_cpubind(topo, bound.set, HWLOC_CPUBIND_PROCESS) != 0) {
    hwloc_bitmap_copy(bound.set, hwloc_topology_get_allowed_cpuset(topo));
  }
  hwloc_bitmap_and(bound.set, bound.set, hwloc_topology_get_allowed_cpuset(topo));
  std::vector<int> cpus;
  int i = -1;
  while ((i = hwloc_bitmap_next(bound.set, i)) != -1) cpus.push_back(i);
  return cpus;
}

int cpu_count() {
  auto n = static_cast<int>(available_cpus().size());
  return n > 0 ? n : 1;
}

}  // namespace cohort
