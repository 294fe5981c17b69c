// Ping-pong between rank 0 and rank 1: a typed round trip, then a timed loop.
//   cohortrun -n 2 ./ping_pong [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cohort/cohort.hpp>

struct Greeting {  // travels through cereal (it has a serialize and is not trivially copyable)
  std::string text;
  int hops = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(text, hops);
  }
};

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& comm = env.world();
  if (comm.size() < 2) {
    std::printf("ping_pong needs 2 ranks: cohortrun -n 2 %s\n", argv[0]);
    return 0;
  }
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 10000;
  constexpr cohort::Tag kGreeting{1}, kPing{2};
  if (comm.rank() == 0) {
    comm.send(Greeting{"hello", 0}, 1, kGreeting);
    auto back = comm.recv<Greeting>(1, kGreeting);
    std::printf("rank 0 got \"%s\" after %d hops\n", back.text.c_str(), back.hops);
  } else if (comm.rank() == 1) {
    auto g = comm.recv<Greeting>(0, kGreeting);
    g.text += ", world";
    ++g.hops;
    comm.send(g, 0, kGreeting);
  }
  if (comm.rank() > 1) return 0;
  std::vector<double> payload(8, 1.0);
  int peer = 1 - comm.rank();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    if (comm.rank() == 0) {
      comm.send(payload, peer, kPing);
      comm.recv(std::span(payload), peer, kPing);
    } else {
      comm.recv(std::span(payload), peer, kPing);
      comm.send(payload, peer, kPing);
    }
  }
  auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  if (comm.rank() == 0) {
    std::printf("ping-pong of %zu bytes: %.3f us one-way (%d round trips)\n",
                payload.size() * sizeof(double), us / iterations / 2, iterations);
  }
}
