// Platform layer: machine topology (hwloc) and rank placement, shared by cohortrun and
// cohort::spawn.
//
// Placement is a pure function of (topology, allowed cpus, number of ranks, policies) -> one cpu
// list per rank, so that it can be tested on synthetic machines (hwloc_topology_set_synthetic)
// much larger than the one the tests run on:
//
//   auto topo = platform::Topology::synthetic("pack:2 core:32 pu:2");
//   auto p = platform::place(topo, {}, 4, platform::BindPolicy::core, platform::MapPolicy::package);
//   // p.ranks[1].cpus == {64, 65}: rank 1 on the first core of the second package.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct hwloc_topology;

namespace cohort::platform {

/// What each rank is bound to. `automatic`: cores while ranks <= cores, else no binding.
enum class BindPolicy { automatic, core, numa, package, none };
/// In which order ranks take the cores: consecutive cores (`core`), or round-robin over NUMA
/// nodes or packages (spreads ranks over memory controllers).
enum class MapPolicy { core, numa, package };

std::optional<BindPolicy> parse_bind_policy(std::string_view text);
std::optional<MapPolicy> parse_map_policy(std::string_view text);
std::string_view to_string(BindPolicy policy);
std::string_view to_string(MapPolicy policy);

/// An hwloc topology (owned). Loaded without caches or I/O devices: placement needs only
/// packages, NUMA nodes, cores and PUs, and leaving the rest out makes loading faster.
class Topology {
 public:
  /// This machine.
  static Topology load_system();
  /// A synthetic machine, e.g. "pack:2 core:32 pu:2" or "pack:2 numa:2 core:8 pu:1".
  /// Throws std::invalid_argument for a description hwloc rejects.
  static Topology synthetic(const std::string& description);

  Topology(Topology&& other) noexcept;
  Topology& operator=(Topology&& other) noexcept;
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology();

  [[nodiscard]] hwloc_topology* get() const noexcept { return topology_; }

 private:
  explicit Topology(hwloc_topology* t) noexcept : topology_(t) {}
  hwloc_topology* topology_ = nullptr;
};

struct RankPlacement {
  std::vector<unsigned> cpus;  // OS cpu numbers the rank is bound to; empty: not bound
  std::string where;           // e.g. "core 3 of package 0" (for --report-bindings)
};

struct Placement {
  std::vector<RankPlacement> ranks;
  int cores = 0;                // cores the job may use (PUs if the topology has no cores)
  bool oversubscribed = false;  // ranks > cores
  BindPolicy binding = BindPolicy::none;  // the policy applied (automatic resolved)
};

/// Number of cores with at least one cpu in `allowed` (empty: every cpu of the topology).
int count_cores(const Topology& topology, std::span<const unsigned> allowed);

/// Places `ranks` ranks. Pure: reads the topology only. `allowed` restricts the cpus (empty:
/// all). Rank i takes the i-th core in map order (wrapping around when ranks > cores); it is
/// bound to that core's allowed cpus, or to those of its NUMA node or package.
Placement place(const Topology& topology, std::span<const unsigned> allowed, int ranks,
                BindPolicy bind, MapPolicy map);

/// "0-3,8,10-11".
std::string format_cpu_list(std::span<const unsigned> cpus);

}  // namespace cohort::platform
