// Point-to-point: what the first bytes of a ring frame say, checked. Pure (no engine state), so
// that the fuzzer (tests/fuzz/fuzz_frame.cpp) runs exactly what the receive path runs.
//
// A frame's payload starts (engine.cpp, write_frame) with: large: total size (8, bit 62: the
// stream's store mode, bit 61: a split copy is offered) [fingerprint (4)] [sender's buffer
// address (8), with bit 61]; eager: [fingerprint (4)] data. The fingerprint is there for
// serialized formats only; split copies are offered for raw messages only.
// Another process wrote these bytes: a frame that does not follow that layout is a
// cohort::DeserializeError naming the sender, never an out-of-range read or a silent wrong size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "cohort/errors.hpp"
#include "runtime/transport/ring.hpp"

namespace cohort::p2p {

inline constexpr std::uint8_t kFrameLarge = 1;  // = kLarge in engine.hpp (FrameHeader::flags)
/// A large message's size must fit the user address space of x86-64 and AArch64 (2^47 bytes).
inline constexpr std::uint64_t kMaxMessageBytes = std::uint64_t{1} << 47;
/// In a large message's size word: the sender filled the stream with non-temporal stores
/// (stream_mode.hpp); not part of the size.
inline constexpr std::uint64_t kLargeNtBit = std::uint64_t{1} << 62;
/// In a large message's size word: the sender offers a split copy (engine.cpp), its buffer's
/// address follows the size word; not part of the size.
inline constexpr std::uint64_t kLargeSplitBit = std::uint64_t{1} << 61;
/// Bytes of a frame's payload decode_frame() looks at.
inline constexpr std::size_t kFramePrefixBytes = 16;

struct FrameLayout {
  bool large = false;
  std::size_t total = 0;    // the message's payload bytes (in the ring, or streamed when large)
  std::size_t data_at = 0;  // where the message's bytes start in the frame payload (eager)
  std::uint32_t fingerprint = 0;
  bool nt = false;  // large: streamed with non-temporal stores
  bool split = false;            // large: the sender offers a split copy
  std::uint64_t address = 0;     // split: the sender's buffer, in its address space
};

[[noreturn]] void throw_corrupt_frame(int self, int source, const std::string& what);

/// Checks and decodes a frame header. `prefix` holds the first min(h.bytes(), 16) payload bytes
/// (it may be empty for an eager raw frame: nothing is read from it then). `ring_bytes` is the
/// size of the slot ring the frame is in: a producer never writes a frame larger than a quarter
/// of it (RingProducer::try_write), so a larger one is corrupt (and reading it would wrap the
/// ring more than once).
inline FrameLayout decode_frame(const transport::FrameHeader& h, std::span<const std::byte> prefix,
                                std::size_t ring_bytes, int self, int source) {
  FrameLayout f;
  if (transport::frame_slots(h.bytes()) * transport::kSlotBytes > ring_bytes / 4) {
    throw_corrupt_frame(self, source, "a frame of " + std::to_string(h.bytes()) + " bytes in a ring of " +
                                          std::to_string(ring_bytes));
  }
  const std::uint8_t kind = h.kind();
  if (kind > 2) throw_corrupt_frame(self, source, "unknown message format " + std::to_string(kind));
  const bool serialized = kind != 0;
  f.large = (h.flags() & kFrameLarge) != 0;
  f.total = h.bytes();
  const std::size_t fp = serialized ? sizeof f.fingerprint : 0;
  if (f.large) {
    std::uint64_t t = 0;
    if (prefix.size() >= sizeof t) std::memcpy(&t, prefix.data(), sizeof t);
    f.split = (t & kLargeSplitBit) != 0;
    const std::size_t expect = sizeof(std::uint64_t) + fp + (f.split ? sizeof(std::uint64_t) : 0);
    if (h.bytes() != expect || prefix.size() < h.bytes() || (f.split && serialized)) {
      throw_corrupt_frame(self, source, "a large-message header of " + std::to_string(h.bytes()) + " bytes");
    }
    f.nt = (t & kLargeNtBit) != 0;
    t &= ~(kLargeNtBit | kLargeSplitBit);
    if (f.split) std::memcpy(&f.address, prefix.data() + sizeof t, sizeof f.address);
    if (t > kMaxMessageBytes) throw_corrupt_frame(self, source, "a message size of " + std::to_string(t));
    f.total = static_cast<std::size_t>(t);
    if (serialized) std::memcpy(&f.fingerprint, prefix.data() + sizeof t, sizeof f.fingerprint);
  } else if (serialized) {
    if (h.bytes() < fp || prefix.size() < fp) {
      throw_corrupt_frame(self, source, "a serialized message of " + std::to_string(h.bytes()) + " bytes");
    }
    std::memcpy(&f.fingerprint, prefix.data(), fp);
    f.data_at = fp;
    f.total -= fp;
  }
  return f;
}

}  // namespace cohort::p2p
