// producer_consumer: the classic multiprocessing.Queue tutorial, twice.
//
// Rank 0 produces work items; the other ranks consume them. First round: one poison pill (a
// value that means "stop") per consumer, as the Python tutorials do. Second round: no pills, the
// producer calls close() and each consumer's loop ends once the queue is drained.
// Consumers add up what they got; rank 0 checks the totals and prints them.
//
//   cohortrun -n 4 build/bin/producer_consumer [items]
#include <cohort/cohort.hpp>
#include <cohort/queue.hpp>
#include <cohort/shared.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <string>

struct Task {  // a plain struct travels as its bytes
  int id;
  double weight;
};

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  const int items = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int consumers = world.size() > 1 ? world.size() - 1 : 1;
  const bool single = world.size() == 1;  // one rank: it produces everything, then consumes

  // Every rank creates the same queues, in the same order (collective).
  cohort::Queue<Task> tasks(world, single ? static_cast<std::size_t>(items + consumers) : 64);
  cohort::Queue<std::string> names(world, single ? static_cast<std::size_t>(items) : 64);
  cohort::SharedValue<long> ids_sum(world);
  cohort::SharedValue<long> chars(world);

  // Round 1: poison pills.
  if (world.rank() == 0) {
    for (int i = 1; i <= items; ++i) tasks.put(Task{i, 1.0});
    for (int c = 0; c < consumers; ++c) tasks.put(Task{-1, 0.0});  // one pill per consumer
  }
  if (single || world.rank() != 0) {
    for (;;) {
      Task t = tasks.get();
      if (t.id < 0) break;  // the pill
      ids_sum.fetch_add(t.id);
    }
  }

  // Round 2: close() instead of pills.
  if (world.rank() == 0) {
    for (int i = 1; i <= items; ++i) names.put("item-" + std::to_string(i));
    names.close();  // consumers drain what is left, then their loop ends
  }
  if (single || world.rank() != 0) {
    while (std::optional<std::string> name = names.next()) {
      chars.fetch_add(static_cast<long>(name->size()));
    }
  }

  world.barrier();
  if (world.rank() == 0) {
    long expected_chars = 0;
    for (int i = 1; i <= items; ++i) expected_chars += 5 + static_cast<long>(std::to_string(i).size());
    const long expected_ids = static_cast<long>(items) * (items + 1) / 2;
    const bool ok = ids_sum.load() == expected_ids && chars.load() == expected_chars;
    fmt::print("{} consumers; with poison pills: sum of ids {} (expected {})\n", consumers,
               ids_sum.load(), expected_ids);
    fmt::print("with close(): {} characters (expected {})\n", chars.load(), expected_chars);
    fmt::print("{}\n", ok ? "producer/consumer: OK" : "producer/consumer: WRONG");
    return ok ? 0 : 1;
  }
  return 0;
}
