// cohort::Queue used by several threads of one process (a singleton job): the same shared-memory
// protocol, but visible to ThreadSanitizer (which cannot see between processes), so the memory
// ordering of claims, publications, releases and wake-ups is checked under TSan in CI.
#include <gtest/gtest.h>

#include <cohort/cohort.hpp>
#include <cohort/queue.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

TEST(QueueThreads, ProducersAndConsumersExchangeEveryItemOnce) {
  cohort::Environment env;  // no launcher: a singleton job
  auto& w = env.world();
  // Small queues: producers and consumers block and wake often. (Threads of one rank spin with
  // the budget of a rank that has a core to itself, so keep the item counts modest.)
  cohort::Queue<long> small(w, 8);
  cohort::Queue<std::string> strings(w, cohort::QueueOptions{4, 8 << 10});
  constexpr int kProducers = 2, kConsumers = 2;
  constexpr long kItems = 1000;
  std::vector<std::atomic<int>> seen(kProducers * kItems);
  std::atomic<int> producers_left{kProducers};
  std::atomic<int> strings_left{kProducers};
  std::atomic<long> chars{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (long i = 0; i < kItems; ++i) small.put(p * kItems + i);
      if (producers_left.fetch_sub(1) == 1) small.close();
      for (int i = 0; i < 60; ++i) strings.put(std::string(static_cast<std::size_t>(i * 17), 'x'));
      if (strings_left.fetch_sub(1) == 1) strings.close();
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      std::vector<long> last(kProducers, -1);
      while (auto v = small.next()) {
        long p = *v / kItems;
        ASSERT_GT(*v, last[static_cast<std::size_t>(p)]);  // per-producer order
        last[static_cast<std::size_t>(p)] = *v;
        seen[static_cast<std::size_t>(*v)].fetch_add(1);
        small.task_done();
      }
      while (auto s = strings.next()) chars.fetch_add(static_cast<long>(s->size()));
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << "item " << i;
  EXPECT_TRUE(small.join(std::chrono::seconds(1)));
  EXPECT_EQ(chars.load(), kProducers * 17L * (59 * 60 / 2));
}

}  // namespace
