// Transport layer: which collective a wait record or a trace event is about. The number travels
// through the job segment (the wait record's tag, a trace event's detail), so the collectives,
// cohortrun's hang reports and its trace writer share this one list.
#pragma once

#include <cstdint>

namespace cohort::transport {

enum class CollectiveKind : std::uint16_t {
  barrier = 1,
  broadcast,
  reduce,
  allreduce,
  scan,
  exscan,
  reduce_scatter,
  gather,
  scatter,
  allgather,
  alltoall,
  split,
  dup,
};

/// "allreduce"; "unknown collective" for a number outside the list (read from shared memory).
[[nodiscard]] constexpr const char* collective_kind_name(std::uint16_t kind) noexcept {
  switch (static_cast<CollectiveKind>(kind)) {
    case CollectiveKind::barrier: return "barrier";
    case CollectiveKind::broadcast: return "broadcast";
    case CollectiveKind::reduce: return "reduce";
    case CollectiveKind::allreduce: return "allreduce";
    case CollectiveKind::scan: return "scan";
    case CollectiveKind::exscan: return "exscan";
    case CollectiveKind::reduce_scatter: return "reduce_scatter";
    case CollectiveKind::gather: return "gather";
    case CollectiveKind::scatter: return "scatter";
    case CollectiveKind::allgather: return "allgather";
    case CollectiveKind::alltoall: return "alltoall";
    case CollectiveKind::split: return "split";
    case CollectiveKind::dup: return "dup";
  }
  return "unknown collective";
}

}  // namespace cohort::transport
