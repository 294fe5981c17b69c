// pipeline: three processing stages connected by queues, each stage a group of ranks.
//
//   stage 0 (rank 0)            generates the numbers 1..N                 -> queue `raw`
//   stage 1 (about half)        squares them                                -> queue `squared`
//   stage 2 (the rest)          keeps the squares that are odd and adds them up
//
// Each stage has its own communicator (split by stage). When every rank of a stage is done, the
// stage closes its output queue: the next stage drains it and stops. With one rank, that rank
// runs the three stages one after the other.
//
//   cohortrun -n 5 build/bin/pipeline [N]
#include <cohort/cohort.hpp>
#include <cohort/queue.hpp>
#include <cohort/shared.hpp>
#include <fmt/format.h>

#include <cstdlib>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  const long n = argc > 1 ? std::atol(argv[1]) : 100000;
  const int size = world.size();

  // Which stage this rank works in: rank 0 generates; then stage 1 and stage 2 share the rest.
  auto stage_of = [&](int r) {
    if (size < 3) return r;  // 1 rank: all stages on rank 0; 2 ranks: stage 2 runs on rank 0 too
    if (r == 0) return 0;
    return r <= (size - 1) / 2 ? 1 : 2;
  };
  const int stage = stage_of(world.rank());

  // Bounded queues between concurrent stages; with 1 or 2 ranks a rank runs two stages one after
  // the other, so its queues must hold everything.
  const std::size_t capacity = size <= 2 ? static_cast<std::size_t>(n) : 256;
  cohort::Queue<long> raw(world, capacity);
  cohort::Queue<long> squared(world, capacity);
  cohort::SharedValue<long> sum(world);
  cohort::SharedValue<int> stage1_left(world, 0);
  // The stage's own communicator (collective): used to know when the whole stage is done.
  std::optional<cohort::Communicator> group = world.split(stage);
  if (group->rank() == 0 && stage == 1) stage1_left.store(group->size());
  world.barrier();

  auto generate = [&] {
    for (long i = 1; i <= n; ++i) raw.put(i);
    raw.close();
  };
  auto square = [&] {
    while (auto x = raw.next()) squared.put(*x * *x);
    // The last stage-1 rank to finish closes the next queue.
    if (stage1_left.fetch_sub(1) == 1) squared.close();
  };
  auto reduce = [&] {
    long local = 0;
    while (auto y = squared.next()) {
      if (*y % 2 == 1) local += *y;
    }
    sum.fetch_add(local);
  };

  if (size == 1) {
    generate();
    stage1_left.store(1);
    square();
    reduce();
  } else if (size == 2) {
    // Rank 0 generates then reduces; rank 1 squares.
    if (world.rank() == 0) {
      generate();
      reduce();
    } else {
      square();
    }
  } else {
    if (stage == 0) generate();
    if (stage == 1) square();
    if (stage == 2) reduce();
  }
  world.barrier();
  if (world.rank() == 0) {
    long expected = 0;
    for (long i = 1; i <= n; i += 2) expected += i * i;  // odd squares come from odd numbers
    fmt::print("pipeline of 3 stages on {} ranks: sum of odd squares of 1..{} = {} ({})\n", size, n,
               sum.load(), sum.load() == expected ? "exact" : "WRONG");
    return sum.load() == expected ? 0 : 1;
  }
  return 0;
}
