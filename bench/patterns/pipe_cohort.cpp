// Pipe ping-pong latency between ranks 0 and 1 (one-way, microseconds), small items (an int).
//   cohortrun -n 2 pipe_cohort ITERATIONS
// Prints one JSON line from rank 0: {"bench":"pipe_latency","value": us,"unit":"us"}.
#include <cohort/cohort.hpp>
#include <cohort/pipe.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& w = env.world();
  const long iterations = argc > 1 ? std::atol(argv[1]) : 100000;
  // "p2p" as the second argument: the same ping-pong with plain send/recv (for comparison).
  const bool p2p = argc > 2 && std::string(argv[2]) == "p2p";
  cohort::Pipe pipe(w, 0, 1);
  if (!pipe) return 0;
  const int other = 1 - w.rank();
  auto round = [&](long n) {
    for (long i = 0; i < n; ++i) {
      if (p2p) {
        if (w.rank() == 0) {
          w.send(i, other, cohort::Tag{0});
          if (w.recv<long>(other, cohort::Tag{0}) != i) std::abort();
        } else {
          w.send(w.recv<long>(other, cohort::Tag{0}), other, cohort::Tag{0});
        }
      } else if (w.rank() == 0) {
        pipe.send(i);
        if (pipe.recv<long>() != i) std::abort();
      } else {
        pipe.send(pipe.recv<long>());
      }
    }
  };
  round(iterations / 10 + 1);  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  round(iterations);
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  if (w.rank() == 0) {
    fmt::print("{{\"bench\":\"{}\",\"np\":2,\"value\":{:.4f},\"unit\":\"us\"}}\n",
               p2p ? "p2p_latency" : "pipe_latency", us / (2.0 * static_cast<double>(iterations)));
  }
  return 0;
}
