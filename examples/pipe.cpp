// pipe: the multiprocessing.Pipe tutorial between two processes.
//
// Rank 0 ("parent") and rank 1 ("child") hold the two ends of a duplex pipe. The parent sends a
// few objects (a string, a vector, a serialized struct), the child answers each; then a one-way
// pipe streams numbers from the child to the parent until the child closes its end (the parent's
// recv then throws cohort::PipeClosed, Python's EOFError). Other ranks, if any, are not ends.
//
//   cohortrun -n 2 build/bin/pipe
#include <cohort/cohort.hpp>
#include <cohort/pipe.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

struct Greeting {  // serialized with cereal
  std::string who;
  std::vector<int> lucky;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(who, lucky);
  }
};

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  if (world.size() < 2) {
    fmt::print("pipe: run with at least 2 ranks (cohortrun -n 2)\n");
    return 1;
  }
  cohort::Pipe conn(world, 0, 1);                                   // duplex
  cohort::Pipe stream(world, 1, 0, cohort::PipeMode::one_way);      // rank 1 writes, rank 0 reads
  if (world.rank() == 0) {
    conn.send(std::string("hello child"));
    fmt::print("parent got: {}\n", conn.recv<std::string>());
    conn.send(std::vector<int>{1, 2, 3});
    fmt::print("parent got: {}\n", conn.recv<std::vector<int>>());
    conn.send(Greeting{"parent", {7, 42}});
    Greeting g = conn.recv<Greeting>();
    fmt::print("parent got: greeting from {} with {}\n", g.who, g.lucky);
    long sum = 0;
    int count = 0;
    try {
      for (;;) {
        sum += stream.recv<long>();
        ++count;
      }
    } catch (const cohort::PipeClosed&) {
      fmt::print("parent: stream closed after {} numbers, sum {}\n", count, sum);
    }
    fmt::print("{}\n", sum == 5050 && count == 100 ? "pipe: OK" : "pipe: WRONG");
  } else if (world.rank() == 1) {
    conn.send("child got: " + conn.recv<std::string>());
    auto v = conn.recv<std::vector<int>>();
    for (int& x : v) x *= 10;
    conn.send(v);
    Greeting g = conn.recv<Greeting>();
    g.who = "child (answering " + g.who + ")";
    g.lucky.push_back(g.lucky.back() + 1);
    conn.send(g);
    for (long i = 1; i <= 100; ++i) stream.send(i);
    stream.close();
  }
  return 0;
}
