// Transport layer: the shared heap, where collectively created objects live (SharedArray,
// SharedValue, locks, ...). Pure data over memory it does not own.
//
//   HeapHeader      1 cache line: bytes used, capacity
//   HeapEntry[4096] 1 cache line each: key, offset, bytes, ready flag
//   data            capacity bytes, handed out by a bump pointer, never freed (job lifetime)
//
// Every process that asks for the same key gets the same block: the first one claims the entry
// and allocates, the others wait (a few hundred ns) until it is published. Blocks are zero-filled
// (the segment is a fresh memfd and nothing is ever reused).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace cohort::transport {

inline constexpr std::size_t kHeapEntries = 4096;  // 256 KiB of table, committed as used

struct alignas(64) HeapHeader {
  std::atomic<std::uint64_t> used;
  std::uint64_t capacity;
};

struct alignas(64) HeapEntry {
  std::atomic<std::uint64_t> key;     // 0: free
  std::atomic<std::uint32_t> ready;   // 1: offset and bytes are published; 2: allocation failed
  std::uint32_t align;
  std::uint64_t offset;               // from the start of the data area
  std::uint64_t bytes;
};

/// Bytes of the heap region for `capacity` bytes of data.
std::size_t heap_area_bytes(std::size_t capacity);

/// Formats a zero-filled heap region.
void format_heap_area(std::span<std::byte> area, std::size_t capacity);

/// A view of the heap region. Thread- and process-safe (lock-free).
class SharedHeap {
 public:
  explicit SharedHeap(std::span<std::byte> area) noexcept : area_(area) {}

  /// The block for `key` (nonzero), allocating `bytes` aligned to `align` (a power of two <= 4096)
  /// if nobody has yet. Throws cohort::InvalidArgument when the block exists with another size,
  /// cohort::ResourceError when the heap or its table is exhausted (naming what was asked, what
  /// is left and cohortrun's --shared-heap option).
  /// `init`, if given, fills the block once, before any other process can see it.
  using Init = void (*)(std::span<std::byte> block, const void* context);
  std::span<std::byte> attach(std::uint64_t key, std::size_t bytes, std::size_t align,
                              Init init = nullptr, const void* init_context = nullptr);

  [[nodiscard]] std::size_t capacity() const noexcept { return header().capacity; }
  [[nodiscard]] std::size_t used() const noexcept { return header().used.load(); }

 private:
  [[nodiscard]] HeapHeader& header() const noexcept {
    return *reinterpret_cast<HeapHeader*>(area_.data());
  }
  [[nodiscard]] HeapEntry* entries() const noexcept {
    return reinterpret_cast<HeapEntry*>(area_.data() + sizeof(HeapHeader));
  }
  [[nodiscard]] std::byte* data() const noexcept {
    return area_.data() + sizeof(HeapHeader) + kHeapEntries * sizeof(HeapEntry);
  }

  std::span<std::byte> area_;
};

}  // namespace cohort::transport
