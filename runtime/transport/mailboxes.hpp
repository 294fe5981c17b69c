// Transport layer: the mailbox area of the job segment (point-to-point rings and streams).
//
// One block per ordered pair (sender s, receiver r), s != r, at pair_offset(s, r):
//
//   +0                 ProducerLine   (1 cache line, written by s: stream tail, waiting flags)
//   +64                ConsumerLine   (1 cache line, written by r: ring head, stream head)
//   +128               slot ring      (ring_bytes: 64-byte slots; small messages, inline payload)
//   +128+ring_bytes    byte stream    (stream_bytes: large-message payload, pipelined in chunks)
//
// Sizes depend only on the rank count (mailbox_layout() is a pure function), scaled down as the
// number of pairs grows so that 64 ranks fit in Docker's default 64 MiB /dev/shm.
#pragma once

#include <cstddef>
#include <span>

#include "runtime/transport/ring.hpp"

namespace cohort::transport {

/// Sizes of the mailbox area for a job.
struct MailboxLayout {
  std::size_t ring_bytes;       // per pair: slot ring (power of two, multiple of 64)
  std::size_t stream_bytes;     // per pair: byte stream (power of two)
  std::size_t pair_bytes;       // per pair: 128 + ring_bytes + stream_bytes
  std::size_t pairs;            // ranks * (ranks - 1)
  std::size_t total_bytes;      // pairs * pair_bytes
  std::size_t eager_max_bytes;  // largest message carried whole in the ring
};

/// Pure function: the mailbox layout for `ranks` ranks.
MailboxLayout mailbox_layout(int ranks);

/// Bytes of the mailbox area for `ranks` ranks (pure function).
std::size_t mailbox_area_bytes(int ranks);

// A zero-filled mailbox area is formatted: all-zero is the empty state of every pair.

/// A view of a formatted mailbox area (does not own the memory).
class Mailboxes {
 public:
  Mailboxes() = default;
  Mailboxes(std::span<std::byte> area, int ranks) noexcept
      : area_(area), ranks_(ranks), layout_(mailbox_layout(ranks)) {}

  [[nodiscard]] const MailboxLayout& layout() const noexcept { return layout_; }
  /// The shared block of the pair sender -> receiver (sender != receiver).
  [[nodiscard]] PairView pair(int sender, int receiver) const noexcept;

 private:
  std::span<std::byte> area_;
  int ranks_ = 0;
  MailboxLayout layout_{};
};

}  // namespace cohort::transport
