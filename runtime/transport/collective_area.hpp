// Transport layer: the collective area of the job segment (per-rank flags and staging buffers
// used by the shared-memory collectives). Owned by the collectives work.
#pragma once

#include <cstddef>
#include <span>

namespace cohort::transport {

/// Bytes of the collective area for `ranks` ranks (pure function).
std::size_t collective_area_bytes(int ranks);

/// Formats a zero-filled collective area of collective_area_bytes(ranks) bytes.
void format_collective_area(std::span<std::byte> area, int ranks);

}  // namespace cohort::transport
