#include "runtime/transport/shared_heap.hpp"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "cohort/errors.hpp"

namespace cohort::transport {
namespace {

struct Heap {
  explicit Heap(std::size_t capacity) : memory(heap_area_bytes(capacity) + 64) {
    auto p = reinterpret_cast<std::uintptr_t>(memory.data());
    area = {reinterpret_cast<std::byte*>((p + 63) / 64 * 64), heap_area_bytes(capacity)};
    format_heap_area(area, capacity);
  }
  std::vector<std::byte> memory;
  std::span<std::byte> area;
};

TEST(SharedHeap, SameKeySameBlockDifferentKeysDisjoint) {
  Heap h(1 << 16);
  SharedHeap heap(h.area);
  auto a = heap.attach(1, 100, 8);
  auto b = heap.attach(2, 100, 64);
  EXPECT_EQ(heap.attach(1, 100, 8).data(), a.data());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 64, 0u);
  EXPECT_TRUE(b.data() >= a.data() + 100 || b.data() + 100 <= a.data());
}

TEST(SharedHeap, SizeMismatchIsAnError) {
  Heap h(1 << 16);
  SharedHeap heap(h.area);
  (void)heap.attach(7, 64, 8);
  EXPECT_THROW((void)heap.attach(7, 65, 8), InvalidArgument);
}

TEST(SharedHeap, ExhaustionNamesTheOption) {
  Heap h(1024);
  SharedHeap heap(h.area);
  (void)heap.attach(1, 1000, 8);
  try {
    (void)heap.attach(2, 100, 8);
    FAIL() << "expected ResourceError";
  } catch (const ResourceError& e) {
    EXPECT_NE(std::string(e.what()).find("--shared-heap"), std::string::npos) << e.what();
  }
}

TEST(SharedHeap, ConcurrentAttachersAgree) {
  Heap h(1 << 20);
  SharedHeap heap(h.area);
  constexpr int kThreads = 4, kKeys = 100;
  std::vector<std::vector<std::byte*>> seen(kThreads, std::vector<std::byte*>(kKeys));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        int key = t % 2 == 0 ? k : kKeys - 1 - k;  // opposite orders race for each entry
        seen[t][key] = heap.attach(static_cast<std::uint64_t>(key) + 1, 256, 64).data();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::byte*> distinct;
  for (int k = 0; k < kKeys; ++k) {
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t][k], seen[0][k]) << "key " << k;
    distinct.insert(seen[0][k]);
  }
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(heap.used(), kKeys * 256u);
}

}  // namespace
}  // namespace cohort::transport
