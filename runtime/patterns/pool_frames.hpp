// pool_map & co: the frames a worker sends the root (a chunk of results) and the root sends the
// workers (the end of a call), checked. Pure, so that the fuzzer (tests/fuzz/fuzz_pool_frames.cpp)
// runs exactly what the pool runs; a malformed frame is a cohort::DeserializeError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "cohort/errors.hpp"

namespace cohort::detail {

struct ChunkHeader {
  std::uint64_t first = 0, last = 0;  // items [first, last)
  std::size_t offset = 0;             // where the results start
};

/// A chunk frame: first(8) last(8) results...; [first, last) must lie within `items`.
inline ChunkHeader parse_chunk_header(std::span<const std::byte> frame, std::size_t items) {
  ChunkHeader h;
  if (frame.size() < 2 * sizeof(std::uint64_t)) throw DeserializeError("pool: short frame");
  std::memcpy(&h.first, frame.data(), sizeof h.first);
  std::memcpy(&h.last, frame.data() + sizeof h.first, sizeof h.last);
  if (h.first > h.last || h.last > items) throw DeserializeError("pool: bad frame");
  h.offset = 2 * sizeof(std::uint64_t);
  return h;
}

struct EndFrame {
  std::string report;
  std::span<const std::byte> rest;
};

/// The end frame: length(8) report rest...
inline EndFrame parse_end_frame(std::span<const std::byte> end) {
  std::uint64_t len = 0;
  if (end.size() < sizeof len) throw DeserializeError("pool: short end frame");
  std::memcpy(&len, end.data(), sizeof len);
  if (end.size() - sizeof len < len) throw DeserializeError("pool: bad end frame");
  EndFrame f;
  f.report.assign(reinterpret_cast<const char*>(end.data()) + sizeof len, static_cast<std::size_t>(len));
  f.rest = end.subspan(sizeof len + static_cast<std::size_t>(len));
  return f;
}

}  // namespace cohort::detail
