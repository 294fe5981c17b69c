#include "runtime/transport/shared_heap.hpp"

#include <sched.h>

#include <chrono>
#include <new>
#include <string>
#include <type_traits>

#include <fmt/format.h>

#include "cohort/errors.hpp"

namespace cohort::transport {
namespace {
constexpr std::size_t kOverhead = sizeof(HeapHeader) + kHeapEntries * sizeof(HeapEntry);
}

std::size_t heap_area_bytes(std::size_t capacity) { return kOverhead + capacity; }

void format_heap_area(std::span<std::byte> area, std::size_t capacity) {
  // The area is zero-filled, which is what an empty HeapEntry is: only the header is written,
  // so the table's pages are committed only as entries are used.
  static_assert(std::is_trivially_default_constructible_v<HeapEntry> ||
                std::is_standard_layout_v<HeapEntry>);
  auto* h = new (area.data()) HeapHeader{};
  h->capacity = capacity;
}

namespace {
std::string exhausted(std::uint64_t bytes, std::uint64_t left, std::uint64_t capacity) {
  return fmt::format("shared heap exhausted: {} bytes requested, {} of {} bytes left; start the "
                     "job with a larger heap (cohortrun --shared-heap BYTES)",
                     bytes, left, capacity);
}
}  // namespace

std::span<std::byte> SharedHeap::attach(std::uint64_t key, std::size_t bytes, std::size_t align,
                                        Init init, const void* init_context) {
  if (key == 0 || align == 0 || (align & (align - 1)) != 0 || align > 4096) {
    throw InvalidArgument(fmt::format("shared heap: bad key {} or alignment {}", key, align));
  }
  HeapEntry* table = entries();
  // Open addressing over the table, starting at the key's hash.
  std::size_t start = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 56) % kHeapEntries;
  for (std::size_t probe = 0; probe < kHeapEntries; ++probe) {
    HeapEntry& e = table[(start + probe) % kHeapEntries];
    std::uint64_t seen = e.key.load(std::memory_order_acquire);
    if (seen == 0) {
      if (e.key.compare_exchange_strong(seen, key, std::memory_order_acq_rel)) {
        // We own the entry: allocate with a CAS loop on the bump pointer.
        HeapHeader& h = header();
        std::uint64_t used = h.used.load(std::memory_order_relaxed);
        std::uint64_t offset = 0;
        for (;;) {
          offset = (used + align - 1) / align * align;
          if (offset + bytes > h.capacity) {
            e.bytes = bytes;
            e.offset = h.capacity - std::min<std::uint64_t>(used, h.capacity);  // what was left
            e.ready.store(2, std::memory_order_release);
            throw ResourceError(exhausted(bytes, e.offset, h.capacity));
          }
          if (h.used.compare_exchange_weak(used, offset + bytes, std::memory_order_relaxed)) break;
        }
        e.offset = offset;
        e.bytes = bytes;
        e.align = static_cast<std::uint32_t>(align);
        std::span<std::byte> block{data() + offset, bytes};
        if (init != nullptr) init(block, init_context);
        e.ready.store(1, std::memory_order_release);
        return block;
      }
    }
    if (seen == key || e.key.load(std::memory_order_acquire) == key) {
      // Someone else claimed it: wait until it is published (it takes a few instructions).
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      std::uint32_t r = 0;
      while ((r = e.ready.load(std::memory_order_acquire)) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          throw ResourceError("shared heap: the process allocating this object died meanwhile");
        }
        ::sched_yield();
      }
      // The same words as on the rank that tried: whichever rank's error ends the job first
      // tells the user what to do.
      if (r == 2) throw ResourceError(exhausted(e.bytes, e.offset, header().capacity));
      if (e.bytes != bytes) {
        throw InvalidArgument(fmt::format(
            "shared object created with {} bytes on one rank and {} bytes on another; every rank "
            "must create shared objects in the same order with the same size",
            e.bytes, bytes));
      }
      return {data() + e.offset, bytes};
    }
  }
  throw ResourceError(fmt::format("shared heap: all {} object slots are used", kHeapEntries));
}

}  // namespace cohort::transport
