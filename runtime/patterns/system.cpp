// cohort::cpu_count / available_cpus through hwloc.
#include "cohort/system.hpp"

#include <hwloc.h>

#include <memory>
#include <system_error>

namespace cohort {

namespace {

struct Topology {
  hwloc_topology_t topo = nullptr;
  Topology() {
    if (hwloc_topology_init(&topo) != 0) {
      throw std::system_error(errno, std::generic_category(), "hwloc_topology_init");
    }
    if (hwloc_topology_load(topo) != 0) {
      int err = errno;
      hwloc_topology_destroy(topo);
      throw std::system_error(err, std::generic_category(), "hwloc_topology_load");
    }
  }
  ~Topology() { hwloc_topology_destroy(topo); }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
};

struct Bitmap {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  ~Bitmap() { hwloc_bitmap_free(set); }
  Bitmap() = default;
  Bitmap(const Bitmap&) = delete;
  Bitmap& operator=(const Bitmap&) = delete;
};

}  // namespace

std::vector<int> available_cpus() {
  Topology t;
  Bitmap bound;
  // The process's binding; if hwloc cannot tell (no support), every allowed cpu counts.
  if (hwloc_get_cpubind(t.topo, bound.set, HWLOC_CPUBIND_PROCESS) != 0) {
    hwloc_bitmap_copy(bound.set, hwloc_topology_get_allowed_cpuset(t.topo));
  }
  hwloc_bitmap_and(bound.set, bound.set, hwloc_topology_get_allowed_cpuset(t.topo));
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
