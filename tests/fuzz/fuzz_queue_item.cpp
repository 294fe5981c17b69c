// Fuzz: a Queue item's chunk chain as Queue::get reads it (runtime/patterns/queue_item.hpp).
#include <atomic>
#include <vector>

#include "runtime/patterns/queue_item.hpp"
#include "tests/fuzz/fuzz_target.hpp"

COHORT_FUZZ_TARGET(queue_item) {
  using cohort::detail::kQueueChunkBytes;
  cohort::fuzz::Input in(data, size);
  const std::uint32_t chunks = in.take<std::uint8_t>() % 9;  // a pool of up to 8 chunks
  const auto bytes = in.take<std::uint32_t>();
  const auto first = in.take<std::uint32_t>();
  std::vector<std::atomic<std::uint32_t>> next(chunks);
  for (auto& n : next) n.store(in.take<std::uint32_t>() % 12, std::memory_order_relaxed);  // some out of range
  std::vector<std::byte> pool(std::size_t{chunks} * kQueueChunkBytes, std::byte{0x5a});
  const bool fits = bytes <= pool.size();
  std::vector<std::byte> dst(fits ? bytes : 0);
  bool ok = cohort::detail::read_item_chunks(fits ? dst.data() : nullptr, bytes, first, next.data(),
                                             pool.data(), chunks);
  if (ok) {
    COHORT_FUZZ_CHECK(fits);  // a chain longer than the pool cannot be valid
    for (std::byte b : dst) COHORT_FUZZ_CHECK(b == std::byte{0x5a});
  }
  return 0;
}
