// cohortrun: rank placement. The implementation lives in runtime/platform/placement.hpp (shared
// with cohort::spawn); these names keep the launcher's spelling.
#pragma once

#include "runtime/platform/placement.hpp"

namespace cohort::launcher {
using platform::BindPolicy;
using platform::count_cores;
using platform::format_cpu_list;
using platform::MapPolicy;
using platform::parse_bind_policy;
using platform::parse_map_policy;
using platform::place;
using platform::Placement;
using platform::RankPlacement;
using platform::to_string;
using platform::Topology;
}  // namespace cohort::launcher
