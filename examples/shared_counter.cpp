// shared_counter: several processes increment one shared counter.
//
// The classic multiprocessing lesson: `counter.value += 1` from several processes loses updates,
// because it is a read, an add and a write, and another process can write in between. Holding a
// Lock around the read-modify-write (or using an atomic add) makes it exact.
//
//   cohortrun -n 4 build/bin/shared_counter [increments-per-rank]
#include <cohort/cohort.hpp>
#include <cohort/shared.hpp>
#include <cohort/sync.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <mutex>
#include <thread>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  const long n = argc > 1 ? std::atol(argv[1]) : 20000;

  cohort::SharedValue<long> unlocked(world);  // every rank creates the same objects, in order
  cohort::SharedValue<long> locked(world);
  cohort::SharedValue<long> atomic(world);
  cohort::Lock lock(world);
  cohort::Barrier barrier(world);

  for (long i = 0; i < n; ++i) {
    // Wrong: load, add, store. Another rank's store in between is lost.
    long v = unlocked.load(std::memory_order_relaxed);
    if (i % 256 == 0) std::this_thread::yield();  // on 2 cores, make the race visible
    unlocked.store(v + 1, std::memory_order_relaxed);

    {  // Right: the same read-modify-write under the lock.
      std::scoped_lock guard(lock);
      locked.store(locked.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    atomic.fetch_add(1);  // Also right, and cheaper: one atomic instruction.
  }
  barrier.wait();
  if (world.rank() == 0) {
    const long expected = n * world.size();
    fmt::print("{} ranks x {} increments = {}\n", world.size(), n, expected);
    fmt::print("  without a lock: {} ({} updates lost)\n", unlocked.load(), expected - unlocked.load());
    fmt::print("  with a lock:    {} ({})\n", locked.load(), locked.load() == expected ? "exact" : "WRONG");
    fmt::print("  atomic add:     {} ({})\n", atomic.load(), atomic.load() == expected ? "exact" : "WRONG");
    return locked.load() == expected && atomic.load() == expected ? 0 : 1;
  }
  return 0;
}
