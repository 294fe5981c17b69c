// Queue throughput: producers put small items (8-byte ints), consumers get them.
//   cohortrun -n 2 queue_cohort throughput ITEMS       1 producer (rank 0) -> 1 consumer (rank 1)
//   cohortrun -n 4 queue_cohort throughput_2x2 ITEMS   ranks 0,1 produce; 2,3 consume
// Prints one JSON line: {"bench":..., "value": msg/s, "unit":"msg/s"} (from rank 0).
#include <cohort/cohort.hpp>
#include <cohort/queue.hpp>
#include <cohort/shared.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& w = env.world();
  const std::string bench = argc > 1 ? argv[1] : "throughput";
  const long items = argc > 2 ? std::atol(argv[2]) : 2000000;
  const int n = w.size();
  if (n == 1) {  // the fixed cost of a put + get on one core (diagnostic)
    cohort::Queue<long> q(w, 1024);
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < items; ++i) {
      q.put(i);
      if (q.get() != i) return 1;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("{{\"bench\":\"queue_put_get_local\",\"np\":1,\"value\":{:.1f},\"unit\":\"msg/s\"}}\n",
               static_cast<double>(items) / s);
    return 0;
  }
  const int producers = n / 2, consumers = n - producers;
  cohort::Queue<long> q(w, 1024);
  cohort::SharedValue<int> left(w, producers);
  const long per_producer = items / producers;
  const long total = per_producer * producers;
  // Warm-up: one round trip through the queue for everyone.
  if (w.rank() < producers) q.put(-1);
  w.barrier();
  if (w.rank() >= producers) (void)q.try_get();
  while (q.try_get()) {
  }
  w.barrier();
  auto t0 = std::chrono::steady_clock::now();
  long got = 0;
  if (w.rank() < producers) {
    for (long i = 0; i < per_producer; ++i) q.put(i);
    if (left.fetch_sub(1) == 1) {
      for (int c = 0; c < consumers; ++c) q.put(-1);  // the last producer: one pill per consumer
    }
  } else {
    for (;;) {
      long v = q.get();
      if (v < 0) break;
      ++got;
    }
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double slowest = w.allreduce(elapsed, cohort::max);
  long received = w.allreduce(got, std::plus<>());
  if (w.rank() == 0) {
    if (received != total) {
      fmt::print(stderr, "queue_cohort: received {} of {} items\n", received, total);
      return 1;
    }
    fmt::print("{{\"bench\":\"queue_{}\",\"np\":{},\"value\":{:.1f},\"unit\":\"msg/s\"}}\n", bench, n,
               static_cast<double>(total) / slowest);
  }
  return 0;
}
