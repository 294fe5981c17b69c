#include "runtime/transport/mailboxes.hpp"

#include <algorithm>
#include <bit>
#include <new>

namespace cohort::transport {
namespace {

// Total budget for all pairs; per-pair space is this divided by the pair count, clamped.
constexpr std::size_t kAreaBudget = std::size_t{32} << 20;
constexpr std::size_t kMinPart = std::size_t{4} << 10;
constexpr std::size_t kMaxRing = std::size_t{64} << 10;
constexpr std::size_t kMaxStream = std::size_t{1} << 20;
// Messages above this go through the stream even when the ring could hold them (measured:
// bench/p2p, README.md, "Point-to-point messaging").
constexpr std::size_t kEagerLimit = std::size_t{4} << 10;

std::size_t pow2_floor(std::size_t n) { return n == 0 ? 0 : std::bit_floor(n); }

}  // namespace

MailboxLayout mailbox_layout(int ranks) {
  MailboxLayout l{};
  std::size_t n = ranks > 0 ? static_cast<std::size_t>(ranks) : 0;
  l.pairs = n * (n > 0 ? n - 1 : 0);
  std::size_t half = l.pairs > 0 ? pow2_floor(kAreaBudget / l.pairs / 2) : kMaxStream;
  l.ring_bytes = std::clamp(half, kMinPart, kMaxRing);
  l.stream_bytes = std::clamp(half, kMinPart, kMaxStream);
  l.pair_bytes = 2 * kCacheLine + l.ring_bytes + l.stream_bytes;
  l.total_bytes = l.pairs * l.pair_bytes;
  // A frame may take at most a quarter of the ring (the consumer's wake-up rule relies on it).
  // 8 bytes stay free for the frame's own prefix (a serialized message's type fingerprint).
  l.eager_max_bytes = std::min(kEagerLimit, l.ring_bytes / 4 - kFrameHeaderBytes - 8);
  static_assert(kEagerLimit + 8 <= kMaxFrameBytes);
  static_assert(kMaxRing / kSlotBytes < (1u << 15), "frame_seq must tell laps apart");
  return l;
}

std::size_t mailbox_area_bytes(int ranks) { return mailbox_layout(ranks).total_bytes; }

PairView Mailboxes::pair(int sender, int receiver) const noexcept {
  auto s = static_cast<std::size_t>(sender);
  auto r = static_cast<std::size_t>(receiver);
  std::size_t index = s * static_cast<std::size_t>(ranks_ - 1) + (r < s ? r : r - 1);
  std::byte* base = area_.data() + index * layout_.pair_bytes;
  PairView v{};
  v.producer = reinterpret_cast<ProducerLine*>(base);
  v.consumer = reinterpret_cast<ConsumerLine*>(base + kCacheLine);
  v.slots = base + 2 * kCacheLine;
  v.slot_count = layout_.ring_bytes / kSlotBytes;
  v.stream = v.slots + layout_.ring_bytes;
  v.stream_bytes = layout_.stream_bytes;
  return v;
}

}  // namespace cohort::transport
