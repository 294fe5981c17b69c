// Transport layer: the mailbox area of the job segment (point-to-point rings and buffers).
// Owned by the point-to-point work; the segment only asks how many bytes it needs and formats it.
#pragma once

#include <cstddef>
#include <span>

namespace cohort::transport {

/// Bytes of the mailbox area for `ranks` ranks (pure function; documented per rank and per pair).
std::size_t mailbox_area_bytes(int ranks);

/// Formats a zero-filled mailbox area of mailbox_area_bytes(ranks) bytes.
void format_mailboxes(std::span<std::byte> area, int ranks);

}  // namespace cohort::transport
