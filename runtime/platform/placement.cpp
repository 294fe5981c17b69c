#include "runtime/platform/placement.hpp"

#include <hwloc.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace cohort::platform {
namespace {

// RAII for an hwloc bitmap.
struct Bitmap {
  hwloc_bitmap_t b = hwloc_bitmap_alloc();
  Bitmap() = default;
  Bitmap(const Bitmap&) = delete;
  Bitmap& operator=(const Bitmap&) = delete;
  ~Bitmap() { hwloc_bitmap_free(b); }
};

std::vector<unsigned> to_list(hwloc_const_bitmap_t set) {
  std::vector<unsigned> out;
  for (int i = hwloc_bitmap_first(set); i >= 0; i = hwloc_bitmap_next(set, i)) {
    out.push_back(static_cast<unsigned>(i));
  }
  return out;
}

// The allowed cpus as a bitmap (the whole topology when `allowed` is empty).
void allowed_bitmap(const Topology& topology, std::span<const unsigned> allowed, Bitmap& out) {
  if (allowed.empty()) {
    hwloc_bitmap_copy(out.b, hwloc_topology_get_topology_cpuset(topology.get()));
    return;
  }
  hwloc_bitmap_zero(out.b);
  for (unsigned c : allowed) hwloc_bitmap_set(out.b, c);
}

// Cores (or PUs, on a topology without cores) that have at least one allowed cpu.
std::vector<hwloc_obj_t> usable_slots(const Topology& topology, hwloc_const_bitmap_t allowed) {
  hwloc_topology_t t = topology.get();
  hwloc_obj_type_t type = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  std::vector<hwloc_obj_t> slots;
  int n = hwloc_get_nbobjs_by_type(t, type);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(t, type, static_cast<unsigned>(i));
    if (obj->cpuset != nullptr && hwloc_bitmap_intersects(obj->cpuset, allowed)) slots.push_back(obj);
  }
  return slots;
}

// The NUMA node whose cpus contain `obj`'s first cpu (nullptr if none does).
hwloc_obj_t numa_of(const Topology& topology, hwloc_obj_t obj) {
  hwloc_topology_t t = topology.get();
  int first = hwloc_bitmap_first(obj->cpuset);
  int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    if (node->cpuset != nullptr && hwloc_bitmap_isset(node->cpuset, static_cast<unsigned>(first))) {
      return node;
    }
  }
  return nullptr;
}

hwloc_obj_t domain_of(const Topology& topology, hwloc_obj_t obj, bool numa) {
  if (numa) return numa_of(topology, obj);
  return hwloc_get_ancestor_obj_by_type(topology.get(), HWLOC_OBJ_PACKAGE, obj);
}

}  // namespace

std::optional<BindPolicy> parse_bind_policy(std::string_view text) {
  if (text == "core") return BindPolicy::core;
  if (text == "numa") return BindPolicy::numa;
  if (text == "package" || text == "socket") return BindPolicy::package;
  if (text == "none") return BindPolicy::none;
  return std::nullopt;
}

std::optional<MapPolicy> parse_map_policy(std::string_view text) {
  if (text == "core") return MapPolicy::core;
  if (text == "numa") return MapPolicy::numa;
  if (text == "package" || text == "socket") return MapPolicy::package;
  return std::nullopt;
}

std::string_view to_string(BindPolicy policy) {
  switch (policy) {
    case BindPolicy::automatic: return "auto";
    case BindPolicy::core: return "core";
    case BindPolicy::numa: return "numa";
    case BindPolicy::package: return "package";
    case BindPolicy::none: return "none";
  }
  return "?";
}

std::string_view to_string(MapPolicy policy) {
  switch (policy) {
    case MapPolicy::core: return "core";
    case MapPolicy::numa: return "numa";
    case MapPolicy::package: return "package";
  }
  return "?";
}

Topology Topology::load_system() {
  // hwloc dlopens its I/O plugins (libxml2 with ICU, OpenCL, X11/GL, libpciaccess) at the first
  // init: that costs more than the discovery itself, and placement needs none of them. Keep
  // them out for this init only (the ranks inherit cohortrun's environment unchanged).
  constexpr const char* kPluginVar = "HWLOC_PLUGINS_BLACKLIST";
  const char* user_setting = std::getenv(kPluginVar);
  std::optional<std::string> saved = user_setting != nullptr ? std::optional<std::string>(user_setting) : std::nullopt;
  if (!saved) ::setenv(kPluginVar, "hwloc_xml_libxml,hwloc_opencl,hwloc_gl,hwloc_pci,hwloc_cuda,hwloc_nvml,hwloc_rsmi,hwloc_levelzero", 1);
  hwloc_topology_t t = nullptr;
  int rc = hwloc_topology_init(&t);
  if (!saved) ::unsetenv(kPluginVar);
  if (rc != 0) throw std::runtime_error("hwloc_topology_init failed");
  Topology topo(t);
  // The x86 component re-reads cpuid on every cpu by binding this thread to each in turn: on a
  // loaded machine each migration waits for that cpu (seen: 4-6 ms instead of 0.5 ms on 2 busy
  // cpus). The linux component's sysfs view has the packages, cores, NUMA nodes and PUs that
  // placement uses (the same tree here with and without x86). A user's HWLOC_COMPONENTS wins.
  if (std::getenv("HWLOC_COMPONENTS") == nullptr) {
    hwloc_topology_set_components(t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "x86");
  }
  hwloc_topology_set_cache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_icache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
  if (hwloc_topology_load(t) != 0) throw std::runtime_error("hwloc: cannot load this machine's topology");
  return topo;
}

Topology Topology::synthetic(const std::string& description) {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) throw std::runtime_error("hwloc_topology_init failed");
  Topology topo(t);
  if (hwloc_topology_set_synthetic(t, description.c_str()) != 0 || hwloc_topology_load(t) != 0) {
    throw std::invalid_argument(fmt::format("hwloc rejects the synthetic topology '{}'", description));
  }
  return topo;
}

Topology::Topology(Topology&& other) noexcept : topology_(std::exchange(other.topology_, nullptr)) {}

Topology& Topology::operator=(Topology&& other) noexcept {
  if (this != &other) {
    if (topology_ != nullptr) hwloc_topology_destroy(topology_);
    topology_ = std::exchange(other.topology_, nullptr);
  }
  return *this;
}

Topology::~Topology() {
  if (topology_ != nullptr) hwloc_topology_destroy(topology_);
}

int count_cores(const Topology& topology, std::span<const unsigned> allowed) {
  Bitmap allow;
  allowed_bitmap(topology, allowed, allow);
  return static_cast<int>(usable_slots(topology, allow.b).size());
}

Placement place(const Topology& topology, std::span<const unsigned> allowed, int ranks,
                BindPolicy bind, MapPolicy map) {
  Bitmap allow;
  allowed_bitmap(topology, allowed, allow);
  std::vector<hwloc_obj_t> slots = usable_slots(topology, allow.b);

  Placement out;
  out.cores = static_cast<int>(slots.size());
  out.oversubscribed = ranks > out.cores;
  out.binding = bind;
  if (bind == BindPolicy::automatic) bind = out.oversubscribed ? BindPolicy::none : BindPolicy::core;
  out.binding = bind;

  // Map order: consecutive cores, or round-robin over the domains (NUMA nodes, packages).
  std::vector<hwloc_obj_t> order;
  if (map == MapPolicy::core || slots.empty()) {
    order = slots;
  } else {
    std::vector<std::pair<hwloc_obj_t, std::vector<hwloc_obj_t>>> groups;
    for (hwloc_obj_t s : slots) {
      hwloc_obj_t d = domain_of(topology, s, map == MapPolicy::numa);
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == d; });
      if (it == groups.end()) {
        groups.push_back({d, {}});
        it = groups.end() - 1;
      }
      it->second.push_back(s);
    }
    for (std::size_t k = 0; order.size() < slots.size(); ++k) {
      for (auto& g : groups) {
        if (k < g.second.size()) order.push_back(g.second[k]);
      }
    }
  }

  out.ranks.resize(static_cast<std::size_t>(std::max(ranks, 0)));
  if (bind == BindPolicy::none || order.empty()) return out;
  for (int r = 0; r < ranks; ++r) {
    hwloc_obj_t slot = order[static_cast<std::size_t>(r) % order.size()];
    hwloc_obj_t target = slot;
    if (bind == BindPolicy::numa) target = numa_of(topology, slot);
    if (bind == BindPolicy::package) target = domain_of(topology, slot, false);
    if (target == nullptr) target = hwloc_get_root_obj(topology.get());
    Bitmap cpus;
    hwloc_bitmap_and(cpus.b, target->cpuset, allow.b);
    RankPlacement& rp = out.ranks[static_cast<std::size_t>(r)];
    rp.cpus = to_list(cpus.b);
    hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topology.get(), HWLOC_OBJ_PACKAGE, slot);
    std::string core = fmt::format("{} {}", slot->type == HWLOC_OBJ_CORE ? "core" : "pu", slot->logical_index);
    if (package != nullptr) core += fmt::format(" of package {}", package->logical_index);
    switch (bind) {
      case BindPolicy::numa:
        rp.where = target->type == HWLOC_OBJ_NUMANODE
                       ? fmt::format("NUMA node {} (around {})", target->logical_index, core)
                       : fmt::format("the machine (no NUMA node holds {})", core);
        break;
      case BindPolicy::package:
        rp.where = package != nullptr ? fmt::format("package {}", package->logical_index) : "the machine";
        break;
      default: rp.where = core; break;
    }
  }
  return out;
}

std::string format_cpu_list(std::span<const unsigned> cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace cohort::platform
