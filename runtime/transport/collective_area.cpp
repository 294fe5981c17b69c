#include "runtime/transport/collective_area.hpp"

#include <new>

namespace cohort::transport {

std::size_t collective_chunk_bytes(int ranks) {
  if (ranks <= 8) return 128u << 10;
  if (ranks <= 16) return 64u << 10;
  if (ranks <= 64) return 32u << 10;
  return 16u << 10;
}

std::size_t collective_slots(int ranks) {
  if (ranks <= 8) return 16;
  if (ranks <= 16) return 8;
  return 4;
}

std::size_t collective_block_bytes(int ranks) {
  const std::size_t released = (static_cast<std::size_t>(ranks) * 8 + kCacheLine - 1) /
                               kCacheLine * kCacheLine;
  return CollectiveArea::kSlotData + collective_slots(ranks) * collective_chunk_bytes(ranks) +
         released;
}

std::size_t collective_area_bytes(int ranks) {
  return kCacheLine + static_cast<std::size_t>(ranks) * collective_block_bytes(ranks);
}

void format_collective_area(std::span<std::byte> area, int ranks) {
  // Zero-filled memory is a valid empty area; construct the atomics explicitly all the same.
  CollectiveArea view(area, ranks);
  new (&view.header()) CollectiveAreaHeader{};
  for (int r = 0; r < ranks; ++r) {
    for (std::size_t m = 0; m < kCollectiveMains; ++m) {
      new (&view.main(r, m)) CollectiveMain{};
      new (&view.main_consumed(r, m)) CollectiveCounter{};
    }
    for (std::size_t s = 0; s < view.slots(); ++s) {
      new (&view.slot(r, s)) CollectiveSlotHeader{};
      new (&view.slot_consumed(r, s)) CollectiveCounter{};
    }
    for (int p = 0; p < ranks; ++p) new (&view.released(r, p)) std::atomic<std::uint64_t>{0};
  }
}

}  // namespace cohort::transport
