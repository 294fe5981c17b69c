// A known traffic pattern for the trace and statistics tests (tests/trace/check_trace.py):
//   trace_traffic p2p   ring of 5 eager messages (k*100 bytes, tag k) to the next rank, one
//                       pipelined 200 KiB message to the next rank (irecv + wait), 64 bytes to self,
//                       16 bytes to rank 0 received by any-source receives, 32 bytes to the next
//                       rank received after a probe; then barrier, allreduce, broadcast.
//   trace_traffic pool  pool_map of 100 items (and the p2p traffic above first).
//   trace_traffic queue a Queue: every rank but 0 puts 3 items of 24 bytes, rank 0 gets them all.
//   trace_traffic die   the p2p traffic, then the last rank kills itself with SIGKILL while
//                       the others wait in a barrier.
// check_trace.py knows the same numbers: keep them in step.
#include <cohort/cohort.hpp>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace {

void p2p_traffic(cohort::Communicator& world) {
  const int n = world.size();
  const int me = world.rank();
  const int next = (me + 1) % n;
  const int prev = (me + n - 1) % n;
  // Eager ring.
  std::vector<cohort::Request> sends;
  std::vector<std::vector<std::byte>> out(5);
  for (int k = 1; k <= 5; ++k) {
    out[static_cast<std::size_t>(k - 1)].assign(static_cast<std::size_t>(k) * 100, std::byte{1});
    sends.push_back(world.isend(out[static_cast<std::size_t>(k - 1)], next, cohort::Tag{k}));
  }
  for (int k = 1; k <= 5; ++k) {
    std::vector<std::byte> in;
    world.recv(in, prev, cohort::Tag{k});
    if (in.size() != static_cast<std::size_t>(k) * 100) std::abort();
  }
  for (auto& r : sends) r.wait();
  // One large message (pipelined through the pair's stream).
  std::vector<std::byte> big(200 * 1024, std::byte{2});
  std::vector<std::byte> big_in(200 * 1024);
  auto r_in = world.irecv(std::span<std::byte>(big_in), prev, cohort::Tag{40});
  auto r_out = world.isend(big, next, cohort::Tag{40});
  r_out.wait();
  r_in.wait();
  // To self.
  std::vector<std::byte> self(64, std::byte{3});
  world.send(self, me, cohort::Tag{50});
  std::vector<std::byte> self_in;
  world.recv(self_in, me, cohort::Tag{50});
  // Any-source receives at rank 0.
  std::vector<std::byte> to_zero(16, std::byte{4});
  auto r0 = world.isend(to_zero, 0, cohort::Tag{60});
  if (me == 0) {
    for (int i = 0; i < n; ++i) {
      std::vector<std::byte> in;
      world.recv(in, cohort::any_source, cohort::Tag{60});
    }
  }
  r0.wait();
  // Probe, then receive.
  std::vector<std::byte> probed(32, std::byte{5});
  auto rp = world.isend(probed, next, cohort::Tag{70});
  cohort::Status st = world.probe(prev, cohort::Tag{70});
  std::vector<std::byte> probed_in(st.bytes);
  world.recv(std::span<std::byte>(probed_in), prev, cohort::Tag{70});
  rp.wait();
  // Collectives.
  world.barrier();
  double sum = world.allreduce(1.0, std::plus<>{});
  if (sum != n) std::abort();
  std::vector<char> block(1000, 'x');
  world.broadcast(block, 0);
}

}  // namespace

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& world = env.world();
  const std::string mode = argc > 1 ? argv[1] : "p2p";
  if (mode == "queue") {
    cohort::Queue<std::vector<std::byte>> q(world);
    world.barrier();
    if (world.rank() != 0) {
      for (int i = 0; i < 3; ++i) q.put(std::vector<std::byte>(24, std::byte{6}));
    } else {
      for (int i = 0; i < 3 * (world.size() - 1); ++i) (void)q.get();
    }
    world.barrier();
    return 0;
  }
  p2p_traffic(world);
  if (mode == "pool") {
    std::vector<int> items(100);
    for (int i = 0; i < 100; ++i) items[static_cast<std::size_t>(i)] = i;
    auto squares = cohort::pool_map(world, items, [](int x) { return x * x; });
    if (world.rank() == 0 && squares.size() != 100) std::abort();
  } else if (mode == "die") {
    // Every rank has finished the traffic's collectives once this barrier releases the last one
    // (otherwise a slower rank may be terminated inside one, which then has no span).
    world.barrier();
    if (world.rank() == world.size() - 1) std::raise(SIGKILL);
    world.barrier();
  }
  return 0;
}
