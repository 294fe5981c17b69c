// cohort::Queue: reading an item's chunk chain, checked. The chain (chunk indices and links in the
// queue's shared block) was written by another process: a link out of range, a chain shorter or
// longer than the item's size, or a size larger than the pool is corruption, reported instead of
// read out of range. Pure, so that the fuzzer (tests/fuzz/fuzz_queue_item.cpp) runs exactly this.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cohort::detail {

inline constexpr std::size_t kQueueChunkBytes = 1024;

/// Copies an item of `bytes` (> the inline size) stored in chunks from `first` (links in `next`:
/// index + 1 of the following chunk, 0 at the end; chunk data at `data`, `chunks` of them) to
/// `dst` (nullptr: only checks). Returns false, having read nothing out of range, when the chain
/// is corrupt.
inline bool read_item_chunks(std::byte* dst, std::size_t bytes, std::uint32_t first,
                             const std::atomic<std::uint32_t>* next, const std::byte* data,
                             std::uint32_t chunks) noexcept {
  const std::size_t n = (bytes + kQueueChunkBytes - 1) / kQueueChunkBytes;
  if (n > chunks) return false;
  std::uint32_t cur = first;
  for (std::size_t i = 0; i < n; ++i) {
    if (cur >= chunks) return false;
    std::uint32_t nxt = next[cur].load(std::memory_order_relaxed);
    if ((i + 1 < n) != (nxt != 0)) return false;  // the chain must end exactly at the last chunk
    if (dst != nullptr) {
      std::size_t off = i * kQueueChunkBytes;
      std::memcpy(dst + off, data + std::size_t{cur} * kQueueChunkBytes,
                  std::min(kQueueChunkBytes, bytes - off));
    }
    cur = nxt - 1;
  }
  return true;
}

}  // namespace cohort::detail
