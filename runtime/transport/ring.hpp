// Transport layer: single-producer single-consumer channels over shared memory they do not own.
//
// Slot ring (small messages). 32-byte slots, two per cache line; a frame is a header slot
// followed by as many slots as its payload needs (the payload starts inline, right after the
// 12-byte header):
//
//   slot p     | seq(2) info(2: bytes 13 bits, kind 2, large 1) tag(4) context(4) | payload (20 B)
//   slot p+1.. | payload ...
//
// The producer writes the payload and the header fields, then stores `seq = frame_seq(p)` with
// release: an 8-byte message takes half a cache line (two per line: half the line transfers at
// high message rates), a message of up to 52 bytes one line, and the consumer never reads a
// producer cursor. The producer caches the consumer's head and reads it only when the ring looks
// full.
//
// Why a stale slot is never taken for a new frame. The consumer looks only at the slot of its
// head position P, which is where the next frame starts, and takes it when the slot's `seq`
// equals frame_seq(P). Frames tile the ring (each absolute position belongs to exactly one
// frame, as its header slot or as a continuation slot), and the producer writes only positions
// in [head, head + slots) (it waits for the consumer's head), so before the frame at P is
// published, slot P holds what its previous use, position P - slots, left there:
//   - a header slot: its `seq`, frame_seq(P - slots), which differs from frame_seq(P) because
//     the ring has fewer than 2^15 slots (frame_seq keeps 15 bits of the position, times two);
//   - a continuation slot: payload, which could look like anything, so the consumer zeroes the
//     first word of every continuation slot it consumed before it publishes its head (0 is
//     never a frame_seq: those are odd);
//   - nothing yet (first lap): 0, the formatted state.
// While the producer writes the frame at P, the only store to the first word of slot P is the
// final release store of frame_seq(P). So the consumer never writes a header slot's line: a
// one-slot frame (up to 20 bytes of payload) costs the consumer no store into the ring at all,
// and the line moves back to the producer without an ownership round trip.
// (tests/unit/ring_test.cpp, SlotRing.*: wrapped thousands of times with mixed frame sizes, every
// position both header and continuation, a consumer that takes nothing stale.)
//
// Byte stream (large messages). A plain ring of bytes with a tail (producer) and a head
// (consumer) cursor on separate cache lines, copied in chunks so that both sides copy at once.
//
// Waking: the producer that finds no space raises a waiting flag (then re-checks after a fence);
// the consumer checks it after freeing space (see RingConsumer::producer_needs_wake) and wakes
// the producer. The caller owns the wake itself (Segment::wake).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "runtime/transport/copy.hpp"
#include "runtime/transport/segment.hpp"

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

namespace cohort::transport {

inline constexpr std::size_t kSlotBytes = 32;
inline constexpr std::size_t kFrameHeaderBytes = 12;
/// Largest inline payload of one frame (13 bits).
inline constexpr std::size_t kMaxFrameBytes = (1u << 13) - 1;

/// Written by the producer of a pair.
struct alignas(kCacheLine) ProducerLine {
  std::atomic<std::uint32_t> ring_waiting;    // 1: producer waits for ring space
  std::atomic<std::uint32_t> stream_waiting;  // 1: producer waits for stream space
  std::atomic<std::uint64_t> stream_tail;     // bytes written into the stream
  // Split copies of large messages (runtime/p2p/engine.cpp): (offer number << 1) | 1 once the
  // producer's half went into the consumer's buffer, | 0 if the kernel refused the copy.
  std::atomic<std::uint64_t> split_written;
};
/// Written by the consumer of a pair.
struct alignas(kCacheLine) ConsumerLine {
  std::atomic<std::uint64_t> ring_head;    // slots consumed
  std::atomic<std::uint64_t> stream_head;  // bytes consumed
  std::atomic<std::uint32_t> stream_nt;    // 1: the consumer asks for non-temporal stream stores
  // Split copies of large messages (runtime/p2p/engine.cpp): the answer to offer k is
  // (k << 1) | 1 to accept (the producer writes its half at split_address) or (k << 1) to have
  // the message streamed; split_read is (k << 1) | 1 once the consumer's half is in, | 0 if the
  // kernel refused it.
  std::atomic<std::uint64_t> split_answer;
  std::atomic<std::uint64_t> split_address;
  std::atomic<std::uint64_t> split_read;
};

/// Addresses of one pair's block in this process.
struct PairView {
  ProducerLine* producer = nullptr;
  ConsumerLine* consumer = nullptr;
  std::byte* slots = nullptr;
  std::size_t slot_count = 0;  // power of two
  std::byte* stream = nullptr;
  std::size_t stream_bytes = 0;  // power of two
};

/// The header of a frame (first 12 bytes of its first slot). `seq` is accessed atomically.
struct FrameHeader {
  std::uint16_t seq;
  std::uint16_t info;  // bits 0-12: inline payload bytes; 13-14: kind; 15: flags (large)
  std::int32_t tag;
  std::uint32_t context;

  [[nodiscard]] std::size_t bytes() const noexcept { return info & kMaxFrameBytes; }
  [[nodiscard]] std::uint8_t kind() const noexcept { return static_cast<std::uint8_t>((info >> 13) & 3u); }
  [[nodiscard]] std::uint8_t flags() const noexcept { return static_cast<std::uint8_t>(info >> 15); }
};
static_assert(sizeof(FrameHeader) == kFrameHeaderBytes);

/// The sequence word marking a frame that starts at absolute slot position `pos` (never 0;
/// different from the frames of the previous laps of any ring of fewer than 2^15 slots).
constexpr std::uint16_t frame_seq(std::uint64_t pos) noexcept {
  return static_cast<std::uint16_t>((pos << 1) | 1u);
}
/// Slots taken by a frame with `bytes` of inline payload.
constexpr std::size_t frame_slots(std::size_t bytes) noexcept {
  return (kFrameHeaderBytes + bytes + kSlotBytes - 1) / kSlotBytes;
}

namespace ring_detail {
// Copies `n` bytes into / out of a circular buffer of `size` bytes (power of two) at `offset`.
inline void copy_in(std::byte* ring, std::size_t size, std::uint64_t offset, const std::byte* src,
                    std::size_t n) noexcept {
  std::size_t at = static_cast<std::size_t>(offset) & (size - 1);
  std::size_t first = std::min(n, size - at);
  copy_bytes(ring + at, src, first);
  copy_bytes(ring, src + first, n - first);
}
inline void copy_out(const std::byte* ring, std::size_t size, std::uint64_t offset, std::byte* dst,
                     std::size_t n) noexcept {
  std::size_t at = static_cast<std::size_t>(offset) & (size - 1);
  std::size_t first = std::min(n, size - at);
  copy_bytes(dst, ring + at, first);
  copy_bytes(dst + first, ring, n - first);
}
// Copies n <= 24 bytes without a call into the library's memcpy (the payload of a one-slot
// frame: the usual small message). Overlapping fixed-size copies cover every length.
inline void copy_small(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  if (n >= 8) {
    std::uint64_t a, b, c;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + (n - 8), 8);
    if (n > 16) {
      std::memcpy(&c, src + 8, 8);
      std::memcpy(dst + 8, &c, 8);
    }
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + (n - 8), &b, 8);
  } else if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + (n - 4), 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + (n - 4), &b, 4);
  } else if (n != 0) {
    std::byte a = src[0], b = src[n / 2], c = src[n - 1];
    dst[0] = a;
    dst[n / 2] = b;
    dst[n - 1] = c;
  }
}
inline void copy_nt(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
#if defined(__x86_64__)
  std::size_t i = 0;
  if ((reinterpret_cast<std::uintptr_t>(dst) & 15) == 0) {
    for (; i + 64 <= n; i += 64) {
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16));
      __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 32));
      __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 48));
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), a);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 16), b);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 32), c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 48), d);
    }
    _mm_sfence();
  }
  copy_bytes(dst + i, src + i, n - i);
#else
  copy_bytes(dst, src, n);
#endif
}
inline void copy_in_nt(std::byte* ring, std::size_t size, std::uint64_t offset, const std::byte* src,
                       std::size_t n) noexcept {
  std::size_t at = static_cast<std::size_t>(offset) & (size - 1);
  std::size_t first = std::min(n, size - at);
  if (first != 0) copy_nt(ring + at, src, first);
  if (n > first) copy_nt(ring, src + first, n - first);
}
inline std::uint16_t load_seq(const std::byte* slot) noexcept {
  return std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(const_cast<std::byte*>(slot)))
      .load(std::memory_order_acquire);
}
inline void store_seq(std::byte* slot, std::uint16_t v, std::memory_order order) noexcept {
  std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(slot)).store(v, order);
}
}  // namespace ring_detail

/// What a frame carries besides its payload.
struct FrameMeta {
  std::int32_t tag = 0;
  std::uint32_t context = 0;
  std::uint8_t kind = 0;
  std::uint8_t flags = 0;
};

/// Producer side of a slot ring. Only the sending rank calls it (single producer).
class RingProducer {
 public:
  RingProducer() = default;
  explicit RingProducer(const PairView& v) noexcept : v_(v) {}

  /// Writes one frame whose payload is `prefix` then `payload`; returns false (and raises the
  /// waiting flag) when it does not fit yet. The payload must fit in a quarter of the ring
  /// (and in kMaxFrameBytes).
  [[nodiscard]] bool try_write(const FrameMeta& meta, std::span<const std::byte> prefix,
                               std::span<const std::byte> payload) noexcept {
    const std::size_t bytes = prefix.size() + payload.size();
    const std::size_t need = frame_slots(bytes);
    if (v_.slot_count - (tail_ - cached_head_) < need && !refresh(need)) return false;
    const std::size_t ring_bytes = v_.slot_count * kSlotBytes;
    const std::uint64_t at = tail_ * kSlotBytes + kFrameHeaderBytes;
    if (!prefix.empty()) ring_detail::copy_in(v_.slots, ring_bytes, at, prefix.data(), prefix.size());
    if (!payload.empty()) {
      ring_detail::copy_in(v_.slots, ring_bytes, at + prefix.size(), payload.data(), payload.size());
    }
    publish_frame(meta, bytes, need);
    return true;
  }
  /// The same without a prefix. A payload of up to 20 bytes (one slot, the usual small message)
  /// is copied straight behind the header: no wrap-around to handle.
  [[nodiscard]] bool try_write(const FrameMeta& meta, std::span<const std::byte> payload) noexcept {
    const std::size_t bytes = payload.size();
    if (bytes <= kSlotBytes - kFrameHeaderBytes) {
      if (tail_ - cached_head_ == v_.slot_count && !refresh(1)) return false;
      ring_detail::copy_small(slot_at(tail_) + kFrameHeaderBytes, payload.data(), bytes);
      publish_frame(meta, bytes, 1);
      return true;
    }
    return try_write(meta, {}, payload);
  }

 private:
  [[nodiscard]] std::byte* slot_at(std::uint64_t pos) const noexcept {
    return v_.slots + (static_cast<std::size_t>(pos) & (v_.slot_count - 1)) * kSlotBytes;
  }
  // Writes the header of the frame at the tail, then its `seq` (release), and moves the tail.
  void publish_frame(const FrameMeta& meta, std::size_t bytes, std::size_t slots) noexcept {
    std::byte* slot = slot_at(tail_);
    auto* h = reinterpret_cast<FrameHeader*>(slot);
    h->info = static_cast<std::uint16_t>(bytes | (static_cast<std::size_t>(meta.kind & 3u) << 13) |
                                         (static_cast<std::size_t>(meta.flags & 1u) << 15));
    h->tag = meta.tag;
    h->context = meta.context;
    ring_detail::store_seq(slot, frame_seq(tail_), std::memory_order_release);
    tail_ += slots;
  }

  bool refresh(std::size_t need) noexcept {
    cached_head_ = v_.consumer->ring_head.load(std::memory_order_acquire);
    if (v_.slot_count - (tail_ - cached_head_) >= need) {
      if (flagged_) clear_flag();
      return true;
    }
    if (!flagged_) {
      v_.producer->ring_waiting.store(1, std::memory_order_relaxed);
      flagged_ = true;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with producer_needs_wake()
    cached_head_ = v_.consumer->ring_head.load(std::memory_order_acquire);
    if (v_.slot_count - (tail_ - cached_head_) < need) return false;
    clear_flag();
    return true;
  }
  void clear_flag() noexcept {
    v_.producer->ring_waiting.store(0, std::memory_order_relaxed);
    flagged_ = false;
  }

  PairView v_;
  std::uint64_t tail_ = 0;
  std::uint64_t cached_head_ = 0;
  bool flagged_ = false;
};

/// Consumer side of a slot ring. Only the receiving rank calls it (single consumer).
class RingConsumer {
 public:
  RingConsumer() = default;
  explicit RingConsumer(const PairView& v) noexcept : v_(v) {}

  /// The frame at the head, or nullptr when none is published yet.
  [[nodiscard]] const FrameHeader* peek() const noexcept {
    const std::byte* slot = slot_at(head_);
    if (ring_detail::load_seq(slot) != frame_seq(head_)) return nullptr;
    return reinterpret_cast<const FrameHeader*>(slot);
  }
  /// Copies `n` payload bytes of the head frame, from payload offset `offset`, to `dst`.
  void read(std::byte* dst, std::size_t n, std::size_t offset = 0) const noexcept {
    if (offset + n <= kSlotBytes - kFrameHeaderBytes) {  // within the header slot: no wrap
      ring_detail::copy_small(dst, slot_at(head_) + kFrameHeaderBytes + offset, n);
      return;
    }
    ring_detail::copy_out(v_.slots, v_.slot_count * kSlotBytes,
                          head_ * kSlotBytes + kFrameHeaderBytes + offset, dst, n);
  }
  /// The `n` payload bytes of the head frame from payload offset `offset`, where they lie in the
  /// ring; an empty span (null data) when they wrap around the ring's end.
  [[nodiscard]] std::span<const std::byte> contiguous(std::size_t n,
                                                      std::size_t offset = 0) const noexcept {
    const std::size_t ring_bytes = v_.slot_count * kSlotBytes;
    const std::size_t at =
        (static_cast<std::size_t>(head_) * kSlotBytes + kFrameHeaderBytes + offset) & (ring_bytes - 1);
    if (at + n > ring_bytes) return {};
    return {v_.slots + at, n};
  }
  /// Releases the head frame (its slots become free once publish() runs). Zeroes the first
  /// word of its continuation slots only: the header slot keeps its `seq`, which can never be
  /// taken for a later frame (see the top of this file).
  void consume(const FrameHeader* h) noexcept {
    std::size_t n = frame_slots(h->bytes());
    for (std::size_t i = 1; i < n; ++i) {
      ring_detail::store_seq(const_cast<std::byte*>(slot_at(head_ + i)), 0, std::memory_order_relaxed);
    }
    head_ += n;
    since_check_ += n;
  }
  /// Makes consumed slots available to the producer.
  void publish() noexcept { v_.consumer->ring_head.store(head_, std::memory_order_release); }
  /// After publish(): true when the producer may be waiting for space and must be woken.
  /// Fenced (exact) at least once per quarter ring consumed, which is enough because a frame
  /// never exceeds a quarter of the ring; a cheap unfenced look in between wakes it earlier.
  [[nodiscard]] bool producer_needs_wake() noexcept {
    if (since_check_ < v_.slot_count / 4 &&
        v_.producer->ring_waiting.load(std::memory_order_relaxed) == 0) {
      return false;
    }
    since_check_ = 0;
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with RingProducer::refresh
    return v_.producer->ring_waiting.load(std::memory_order_relaxed) != 0;
  }

 private:
  [[nodiscard]] const std::byte* slot_at(std::uint64_t pos) const noexcept {
    return v_.slots + (static_cast<std::size_t>(pos) & (v_.slot_count - 1)) * kSlotBytes;
  }

  PairView v_;
  std::uint64_t head_ = 0;
  std::uint64_t since_check_ = 0;
};

/// Producer side of a byte stream (single producer).
class StreamProducer {
 public:
  StreamProducer() = default;
  explicit StreamProducer(const PairView& v) noexcept : v_(v) {}

  /// Copies up to `n` bytes in chunks of `chunk` (at most half the stream), publishing each;
  /// returns how many were written. Raises the waiting flag when the stream is full before `n`
  /// bytes went in. The consumer must read with the same chunk size.
  std::size_t write(const std::byte* src, std::size_t n, std::size_t chunk_) noexcept {
    std::size_t done = 0;
    while (done < n) {
      // Whole chunks only (or the message's tail): copying into every sliver of free space
      // would degrade into tiny hand-offs ("silly window").
      const std::size_t need = std::min(chunk_, n - done);
      std::size_t free = v_.stream_bytes - static_cast<std::size_t>(tail_ - cached_head_);
      if (free < need) {
        cached_head_ = v_.consumer->stream_head.load(std::memory_order_acquire);
        free = v_.stream_bytes - static_cast<std::size_t>(tail_ - cached_head_);
        if (free < need) {
          if (!flagged_) {
            v_.producer->stream_waiting.store(1, std::memory_order_relaxed);
            flagged_ = true;
          }
          std::atomic_thread_fence(std::memory_order_seq_cst);
          cached_head_ = v_.consumer->stream_head.load(std::memory_order_acquire);
          free = v_.stream_bytes - static_cast<std::size_t>(tail_ - cached_head_);
          if (free < need) break;
        }
      }
      if (flagged_) {
        v_.producer->stream_waiting.store(0, std::memory_order_relaxed);
        flagged_ = false;
      }
      std::size_t k = std::min({free, n - done, chunk_});
      if (nt_) ring_detail::copy_in_nt(v_.stream, v_.stream_bytes, tail_, src + done, k);
      else ring_detail::copy_in(v_.stream, v_.stream_bytes, tail_, src + done, k);
      tail_ += k;
      done += k;
      v_.producer->stream_tail.store(tail_, std::memory_order_release);
    }
    return done;
  }
  void set_nontemporal(bool on) noexcept { nt_ = on; }
  [[nodiscard]] bool nontemporal() const noexcept { return nt_; }
  /// The store mode the consumer asks for (StreamConsumer::request_nt; a hint, on a line the
  /// producer reads anyway for the stream's head).
  [[nodiscard]] bool requested_nt() const noexcept {
    return v_.consumer->stream_nt.load(std::memory_order_relaxed) != 0;
  }

 private:
  PairView v_;
  bool nt_ = false;
  std::uint64_t tail_ = 0;
  std::uint64_t cached_head_ = 0;
  bool flagged_ = false;
};

/// Consumer side of a byte stream (single consumer).
class StreamConsumer {
 public:
  StreamConsumer() = default;
  explicit StreamConsumer(const PairView& v) noexcept : v_(v) {}

  /// Copies up to `n` available bytes to `dst` (or skips them when `dst` is null) in whole
  /// chunks of `chunk` (as written), freeing each as it goes; returns how many were taken.
  std::size_t read(std::byte* dst, std::size_t n, std::size_t chunk_) noexcept {
    std::size_t done = 0;
    while (done < n) {
      const std::size_t need = std::min(chunk_, n - done);  // whole chunks, as written
      std::size_t avail = static_cast<std::size_t>(cached_tail_ - head_);
      if (avail < need) {
        cached_tail_ = v_.producer->stream_tail.load(std::memory_order_acquire);
        avail = static_cast<std::size_t>(cached_tail_ - head_);
        if (avail < need) break;
      }
      std::size_t k = std::min({avail, n - done, chunk_});
      if (dst != nullptr) ring_detail::copy_out(v_.stream, v_.stream_bytes, head_, dst + done, k);
      head_ += k;
      done += k;
      v_.consumer->stream_head.store(head_, std::memory_order_release);
    }
    return done;
  }
  /// After read() took bytes: true when the producer waits for space and must be woken.
  [[nodiscard]] bool producer_needs_wake() const noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with StreamProducer::write
    return v_.producer->stream_waiting.load(std::memory_order_relaxed) != 0;
  }
  /// Whether the last `n` bytes taken (a transfer just completed) all came after the stream's
  /// first lap, i.e. from pages both sides had touched before. A first lap is slow on some
  /// guests: 3-4 us a page for a process's first touch of a page of the segment (60 us for a
  /// 64 KiB message against 2 once warm on the guest of 2026-12-08), which a chooser must not
  /// hold against the stream.
  [[nodiscard]] bool warm_for(std::size_t n) const noexcept { return head_ >= n + v_.stream_bytes; }
  /// Asks the producer for non-temporal stores (or not) from its next message on.
  void request_nt(bool on) noexcept {
    if (on == asked_nt_) return;
    asked_nt_ = on;
    v_.consumer->stream_nt.store(on ? 1 : 0, std::memory_order_relaxed);
  }

 private:
  PairView v_;
  bool asked_nt_ = false;
  std::uint64_t head_ = 0;
  std::uint64_t cached_tail_ = 0;
};

}  // namespace cohort::transport
