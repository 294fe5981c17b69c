// Point-to-point benchmarks over Cohort (OSU-style), np = 2:
//   cohortrun -n 2 p2p_cohort BENCH BYTES [ITERATIONS [WARMUP]]
// latency: ping-pong, one-way µs. bandwidth: windows of 64 isends then a 4-byte ack, GB/s.
// message_rate: the same with BYTES-sized messages, msg/s. latency_cereal_struct: ping-pong of a
// small cereal-serialized struct. latency_vector_double_1000: ping-pong of a std::vector<double>
// of 1000 elements received into a std::vector. cereal_struct_over_8b: the struct's latency over
// the 8 B latency, both measured in this one run in alternating blocks (p2p_common.hpp).
#include <cstring>
#include <vector>

#include <cohort/cohort.hpp>

#include "p2p_common.hpp"

using p2p_bench::Args;
using p2p_bench::kWindow;

namespace {

constexpr cohort::Tag kTag{1}, kAck{2};

double latency(cohort::Communicator& c, const Args& a) {
  std::vector<char> buf(a.bytes, 'a');
  std::span<char> s(buf);
  int peer = 1 - c.rank();
  double t0 = 0;
  for (int i = 0; i < a.warmup + a.iterations; ++i) {
    if (i == a.warmup) t0 = p2p_bench::now_us();
    if (c.rank() == 0) {
      c.send(s, peer, kTag);
      c.recv(s, peer, kTag);
    } else {
      c.recv(s, peer, kTag);
      c.send(s, peer, kTag);
    }
  }
  return (p2p_bench::now_us() - t0) / a.iterations / 2;
}

template <class T>
double latency_of(cohort::Communicator& c, const Args& a, T value) {
  int peer = 1 - c.rank();
  double t0 = 0;
  for (int i = 0; i < a.warmup + a.iterations; ++i) {
    if (i == a.warmup) t0 = p2p_bench::now_us();
    if (c.rank() == 0) {
      c.send(value, peer, kTag);
      c.recv(value, peer, kTag);
    } else {
      c.recv(value, peer, kTag);
      c.send(value, peer, kTag);
    }
  }
  return (p2p_bench::now_us() - t0) / a.iterations / 2;
}

double struct_over_8b(cohort::Communicator& c, const Args& a) {
  return p2p_bench::alternating_ratio(
      a, [&](const Args& b) { return latency_of(c, b, p2p_bench::sample_particle()); },
      [&](const Args& b) { return latency(c, b); });
}

// Returns seconds per window.
double windows(cohort::Communicator& c, const Args& a) {
  // One buffer for the whole window, as OSU's osu_bw and osu_mbw_mr do.
  std::vector<char> buf(a.bytes, 'b');
  std::vector<cohort::Request> reqs(kWindow);
  int peer = 1 - c.rank();
  int ack = 0;
  double t0 = 0;
  for (int i = 0; i < a.warmup + a.iterations; ++i) {
    if (i == a.warmup) t0 = p2p_bench::now_us();
    if (c.rank() == 0) {
      for (int w = 0; w < kWindow; ++w) reqs[static_cast<std::size_t>(w)] = c.isend(std::span<const char>(buf), peer, kTag);
      cohort::wait_all(reqs);
      c.recv(ack, peer, kAck);
    } else {
      for (int w = 0; w < kWindow; ++w) reqs[static_cast<std::size_t>(w)] = c.irecv(std::span<char>(buf), peer, kTag);
      cohort::wait_all(reqs);
      c.send(ack, peer, kAck);
    }
  }
  return (p2p_bench::now_us() - t0) / a.iterations * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = p2p_bench::parse(argc, argv);
  cohort::Environment env(argc, argv);
  auto& c = env.world();
  if (c.size() != 2) {
    std::fprintf(stderr, "p2p_cohort: run with exactly 2 ranks\n");
    return 2;
  }
  double value = 0;
  const char* unit = "us";
  if (a.bench == "latency") {
    value = latency(c, a);
  } else if (a.bench == "latency_cereal_struct") {
    value = latency_of(c, a, p2p_bench::sample_particle());
  } else if (a.bench == "latency_vector_double_1000") {
    a.bytes = 8000;
    value = latency_of(c, a, std::vector<double>(1000, 1.5));
  } else if (a.bench == "cereal_struct_over_8b") {
    value = struct_over_8b(c, a);
    unit = "ratio";
  } else if (a.bench == "bandwidth") {
    value = static_cast<double>(a.bytes) * kWindow / windows(c, a) * 1e-9;
    unit = "GB/s";
  } else if (a.bench == "message_rate") {
    value = kWindow / windows(c, a);
    unit = "msg/s";
  } else {
    std::fprintf(stderr, "p2p_cohort: unknown bench %s\n", a.bench.c_str());
    return 2;
  }
  if (c.rank() == 0) p2p_bench::report("cohort", a, value, unit);
}
