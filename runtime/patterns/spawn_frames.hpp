// cohort::spawn: the frames a child writes on its result pipe, and their checked parsing.
//
//   frame = kind (1: 'R' result, 'E' error) | length (8, little-endian host order) | payload
//
// A child writes a result frame, or an error frame, or a result and then an error (its result was
// written but something failed after it). A child killed while writing leaves a truncated frame:
// that is reported, never taken as a (short) result. Pure, so that the fuzzer
// (tests/fuzz/fuzz_spawn_frames.cpp) runs exactly what the parent runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "cohort/errors.hpp"

namespace cohort::detail {

inline constexpr char kSpawnResultFrame = 'R';
inline constexpr char kSpawnErrorFrame = 'E';
inline constexpr std::size_t kSpawnFrameHeader = 1 + sizeof(std::uint64_t);

/// The header of a frame of `bytes` payload bytes.
inline std::string spawn_frame_header(char kind, std::size_t bytes) {
  std::string h(kSpawnFrameHeader, '\0');
  h[0] = kind;
  auto n = static_cast<std::uint64_t>(bytes);
  std::memcpy(h.data() + 1, &n, sizeof n);
  return h;
}

struct SpawnOutcome {
  bool has_result = false;
  std::span<const std::byte> result;
  std::string error;  // empty: none
};

/// Parses everything a child wrote. Throws DeserializeError on a truncated or malformed stream.
inline SpawnOutcome parse_spawn_frames(std::span<const std::byte> bytes) {
  SpawnOutcome out;
  std::size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < kSpawnFrameHeader) {
      throw DeserializeError("the result pipe ends inside a frame header (" +
                             std::to_string(bytes.size() - at) + " bytes): the child died writing it");
    }
    const char kind = static_cast<char>(bytes[at]);
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data() + at + 1, sizeof n);
    at += kSpawnFrameHeader;
    if (n > bytes.size() - at) {
      throw DeserializeError("the result pipe ends inside a frame of " + std::to_string(n) +
                             " bytes (" + std::to_string(bytes.size() - at) +
                             " written): the child died writing it");
    }
    auto payload = bytes.subspan(at, static_cast<std::size_t>(n));
    at += static_cast<std::size_t>(n);
    if (kind == kSpawnResultFrame && !out.has_result && out.error.empty()) {
      out.has_result = true;
      out.result = payload;
    } else if (kind == kSpawnErrorFrame) {
      out.error.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
      if (out.error.empty()) out.error = "(an empty error message)";
    } else {
      throw DeserializeError(std::string("unexpected frame kind '") + kind + "' on the result pipe");
    }
  }
  return out;
}

}  // namespace cohort::detail
