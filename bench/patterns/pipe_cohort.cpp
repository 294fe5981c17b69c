// Pipe ping-pong latency between ranks 0 and 1 (one-way, microseconds), small items (an int).
//   cohortrun -n 2 pipe_cohort ITERATIONS
// Prints one JSON line from rank 0: {"bench":"pipe_latency","value": us,"unit":"us"}.
#include <cohort/cohort.hpp>
#include <cohort/pipe.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& w = env.world();
  const long iterations = argc > 1 ? std::atol(argv[1]) : 100000;
  cohort::Pipe pipe(w, 0, 1);
  if (!pipe) return 0;
  auto round = [&](long n) {
    for (long i = 0; i < n; ++i) {
      if (w.rank() == 0) {
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
    fmt::print("{{\"bench\":\"pipe_latency\",\"np\":2,\"value\":{:.4f},\"unit\":\"us\"}}\n",
               us / (2.0 * static_cast<double>(iterations)));
  }
  return 0;
}
