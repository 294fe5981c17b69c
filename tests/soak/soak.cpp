// soak: randomized traffic with every message checked (README.md, "When things go wrong: soak").
//
//   cohortrun -n 8 build/tests/cohort_soak [ROUNDS [SEED [MAX_BYTES]]]
//   (or COHORT_SOAK_ROUNDS / COHORT_SOAK_SEED / COHORT_SOAK_MAX_BYTES in the environment)
//
// Every rank derives the same plan for each round from the seed: for each (source, dest) pair
// (self included) a list of messages, each with a tag (8 tags), a communicator (world or a dup)
// and a size (0 B .. MAX_BYTES, across the eager and pipelined thresholds). A message's bytes are
// a function of (source, dest, tag, communicator, sequence number, size). Senders mix isend and
// blocking send; receivers mix any-source/any-tag, any-source with a tag, specific source and
// irecv. Each received message must be the next one of its (source, tag, communicator) stream
// with exactly the planned size and bytes: a lost, duplicated, corrupted or reordered message
// fails the run, naming the seed. Each round then runs barrier, broadcast, allreduce, gather,
// alltoall, a pool_map and a Queue put/get round, each checked. Rank 0 prints the seed first and
// the totals (messages, bytes, seconds) at the end.
#include <chrono>
#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <cohort/cohort.hpp>

namespace {

using Bytes = std::vector<std::uint8_t>;

std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t mix(std::initializer_list<std::uint64_t> parts) {
  std::uint64_t h = 0x243f6a8885a308d3ULL;
  for (std::uint64_t p : parts) {
    h ^= p;
    (void)splitmix(h);
    h = splitmix(h);
  }
  return h;
}

/// The bytes of one message: a function of its identity, so the receiver can check every byte.
void fill(Bytes& out, std::size_t size, std::uint64_t key) {
  out.resize(size);
  std::uint64_t x = key;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t v = splitmix(x);
    std::memcpy(out.data() + i, &v, 8);
  }
  if (i < size) {
    std::uint64_t v = splitmix(x);
    std::memcpy(out.data() + i, &v, size - i);
  }
}

struct Planned {
  int dest;
  int tag;
  int comm;  // 0: world, 1: the dup
  std::size_t size;
  std::uint64_t seq;  // within (source, dest, tag, comm)
};

/// Sizes across the thresholds: empty, inline, one line, eager (4 KiB), pipelined, large.
std::size_t pick_size(std::mt19937_64& rng, std::size_t max_bytes) {
  std::size_t cap = std::max<std::size_t>(max_bytes, 1);
  switch (rng() % 10) {
    case 0: return 0;
    case 1: case 2: return rng() % 64;
    case 3: case 4: return rng() % 4097;
    case 5: return 4090 + rng() % 12;  // around the eager maximum
    case 6: case 7: return std::min(cap, std::size_t{4097} + rng() % (256 * 1024));
    case 8: return std::min(cap, std::size_t{64} * 1024 + rng() % (1024 * 1024));
    default: return rng() % 3 == 0 ? std::min(cap, std::size_t{1} + rng() % cap) : rng() % 1024;
  }
}

/// The plan of one round: for each source, its messages in sending order.
std::vector<std::vector<Planned>> plan_round(std::uint64_t seed, int round, int n, std::size_t max_bytes,
                                             int max_per_pair) {
  std::mt19937_64 rng(mix({seed, static_cast<std::uint64_t>(round), 1}));
  std::vector<std::vector<Planned>> plan(static_cast<std::size_t>(n));
  std::map<std::tuple<int, int, int, int>, std::uint64_t> seqs;
  for (int s = 0; s < n; ++s) {
    auto& out = plan[static_cast<std::size_t>(s)];
    for (int d = 0; d < n; ++d) {
      int k = static_cast<int>(rng() % static_cast<std::uint64_t>(max_per_pair + 1));
      for (int i = 0; i < k; ++i) {
        Planned p{d, static_cast<int>(rng() % 8), static_cast<int>(rng() % 2), pick_size(rng, max_bytes), 0};
        out.push_back(p);
      }
    }
    std::shuffle(out.begin(), out.end(), rng);
    for (Planned& p : out) p.seq = seqs[{s, p.dest, p.tag, p.comm}]++;
  }
  return plan;
}

[[noreturn]] void fail(int rank, std::uint64_t seed, const std::string& what) {
  std::fprintf(stderr, "soak: rank %d: FAILED (seed %" PRIu64 "): %s\n", rank, seed, what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  cohort::Communicator& world = env.world();
  const int n = world.size();
  const int me = world.rank();
  const int rounds = static_cast<int>(argc > 1 ? std::strtoull(argv[1], nullptr, 0) : env_or("COHORT_SOAK_ROUNDS", 20));
  std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 0) : env_or("COHORT_SOAK_SEED", 0);
  const std::size_t max_bytes = static_cast<std::size_t>(
      argc > 3 ? std::strtoull(argv[3], nullptr, 0) : env_or("COHORT_SOAK_MAX_BYTES", 1 << 20));
  if (seed == 0 && me == 0) {
    seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) | 1;
  }
  world.broadcast(seed, 0);
  if (me == 0) {
    std::printf("soak: seed %" PRIu64 " (rerun: cohortrun -n %d %s %d %" PRIu64 " %zu)\n", seed, n,
                argv[0], rounds, seed, max_bytes);
    std::fflush(stdout);
  }
  cohort::Communicator dup = world.dup();
  cohort::Communicator* comms[2] = {&world, &dup};
  cohort::Queue<std::vector<std::uint64_t>> queue(world, 256);
  const int max_per_pair = 3;

  std::uint64_t messages = 0, bytes = 0, checked_collectives = 0;
  std::mt19937_64 local(mix({seed, static_cast<std::uint64_t>(me), 2}));
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < rounds; ++round) {
    const auto plan = plan_round(seed, round, n, max_bytes, max_per_pair);
    auto key = [&](int s, const Planned& p) {
      return mix({seed, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(s),
                  static_cast<std::uint64_t>(p.dest), static_cast<std::uint64_t>(p.tag),
                  static_cast<std::uint64_t>(p.comm), p.seq, p.size});
    };
    // What this rank must receive: per (source, tag, comm), the messages in order.
    std::map<std::tuple<int, int, int>, std::vector<Planned>> expect;
    std::map<std::tuple<int, int, int>, std::size_t> next;
    std::size_t to_receive = 0;
    for (int s = 0; s < n; ++s) {
      for (const Planned& p : plan[static_cast<std::size_t>(s)]) {
        if (p.dest != me) continue;
        expect[{s, p.tag, p.comm}].push_back(p);
        ++to_receive;
      }
    }
    auto check = [&](int source, int tag, int c, const Bytes& got) {
      auto it = expect.find({source, tag, c});
      if (it == expect.end()) {
        fail(me, seed, "round " + std::to_string(round) + ": a message from rank " + std::to_string(source) +
                           " tag " + std::to_string(tag) + " comm " + std::to_string(c) + " that was never sent");
      }
      std::size_t& i = next[{source, tag, c}];
      if (i >= it->second.size()) {
        fail(me, seed, "round " + std::to_string(round) + ": one message too many (duplicate) from rank " +
                           std::to_string(source) + " tag " + std::to_string(tag));
      }
      const Planned& p = it->second[i];
      Bytes want;
      fill(want, p.size, key(source, p));
      if (got != want) {
        fail(me, seed, "round " + std::to_string(round) + ": message #" + std::to_string(p.seq) + " from rank " +
                           std::to_string(source) + " tag " + std::to_string(tag) + " comm " + std::to_string(c) +
                           ": got " + std::to_string(got.size()) + " bytes, expected " + std::to_string(p.size) +
                           (got.size() == p.size ? " (corrupted or reordered)" : " (lost or reordered)"));
      }
      ++i;
      ++messages;
      bytes += got.size();
    };

    // Send: isend (buffers kept until wait_all) or blocking send, at random.
    std::vector<Bytes> keep;
    keep.reserve(plan[static_cast<std::size_t>(me)].size());
    std::vector<cohort::Request> sends;
    for (const Planned& p : plan[static_cast<std::size_t>(me)]) {
      keep.emplace_back();
      fill(keep.back(), p.size, key(me, p));
      cohort::Communicator& c = *comms[p.comm];
      if (local() % 2 == 0) {
        sends.push_back(c.isend(keep.back(), p.dest, cohort::Tag{p.tag}));
      } else {
        c.send(keep.back(), p.dest, cohort::Tag{p.tag});
      }
    }
    // Receive, mixing the ways of asking.
    Bytes got;
    while (to_receive > 0) {
      // A stream with messages left, at random.
      std::vector<std::tuple<int, int, int>> open;
      for (const auto& [k, list] : expect) {
        if (next[k] < list.size()) open.push_back(k);
      }
      auto [s, t, c] = open[local() % open.size()];
      cohort::Communicator& comm = *comms[c];
      cohort::Status st;
      switch (local() % 4) {
        case 0: st = comm.recv(got, cohort::any_source, cohort::any_tag); break;
        case 1: st = comm.recv(got, cohort::any_source, cohort::Tag{t}); break;
        case 2: st = comm.recv(got, s, cohort::Tag{t}); break;
        default: {
          cohort::Request r = comm.irecv(got, s, cohort::Tag{t});
          st = r.wait();
          break;
        }
      }
      check(st.source, st.tag.value(), c, got);
      --to_receive;
    }
    cohort::wait_all(sends);
    for (const auto& [k, list] : expect) {
      if (next[k] != list.size()) fail(me, seed, "round " + std::to_string(round) + ": messages lost");
    }

    // Collectives, each checked.
    std::mt19937_64 shared(mix({seed, static_cast<std::uint64_t>(round), 3}));  // same on every rank
    const int root = static_cast<int>(shared() % static_cast<std::uint64_t>(n));
    world.barrier();
    Bytes b;
    const std::size_t bsize = pick_size(shared, max_bytes);
    if (me == root) fill(b, bsize, mix({seed, static_cast<std::uint64_t>(round), 4}));
    world.broadcast(b, root);
    Bytes want;
    fill(want, bsize, mix({seed, static_cast<std::uint64_t>(round), 4}));
    if (b != want) fail(me, seed, "round " + std::to_string(round) + ": broadcast from rank " + std::to_string(root));
    std::vector<std::uint64_t> v(1 + shared() % 3000);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = mix({seed, static_cast<std::uint64_t>(me), i}) % 1000003;
    std::vector<std::uint64_t> sum(v.size());
    dup.allreduce(v, sum, std::plus<>());
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::uint64_t w = 0;
      for (int r = 0; r < n; ++r) w += mix({seed, static_cast<std::uint64_t>(r), i}) % 1000003;
      if (sum[i] != w) fail(me, seed, "round " + std::to_string(round) + ": allreduce element " + std::to_string(i));
    }
    std::vector<std::uint64_t> g = world.gather(mix({seed, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(me)}), root);
    if (me == root) {
      for (int r = 0; r < n; ++r) {
        if (g.size() != static_cast<std::size_t>(n) ||
            g[static_cast<std::size_t>(r)] != mix({seed, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(r)})) {
          fail(me, seed, "round " + std::to_string(round) + ": gather slot " + std::to_string(r));
        }
      }
    }
    std::vector<std::uint64_t> out(static_cast<std::size_t>(n)), in(static_cast<std::size_t>(n));
    for (int d = 0; d < n; ++d) out[static_cast<std::size_t>(d)] = mix({seed, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(me), static_cast<std::uint64_t>(d)});
    world.alltoall(out, in);
    for (int s = 0; s < n; ++s) {
      if (in[static_cast<std::size_t>(s)] != mix({seed, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(s), static_cast<std::uint64_t>(me)})) {
        fail(me, seed, "round " + std::to_string(round) + ": alltoall from rank " + std::to_string(s));
      }
    }
    checked_collectives += 5;

    // Patterns: pool_map (results at the root, in input order) and a Queue round.
    std::vector<std::uint64_t> items(20 + shared() % 200);
    for (std::size_t i = 0; i < items.size(); ++i) items[i] = mix({seed, static_cast<std::uint64_t>(round), 5, i});
    auto results = cohort::pool_map(world, items, [](std::uint64_t x) { return x * 3 + 1; });
    if (me == 0) {
      if (results.size() != items.size()) fail(me, seed, "pool_map: " + std::to_string(results.size()) + " results");
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (results[i] != items[i] * 3 + 1) fail(me, seed, "pool_map result " + std::to_string(i));
      }
    }
    const int puts = 1 + static_cast<int>(shared() % 20);
    std::uint64_t put_sum = 0, got_sum = 0;
    for (int j = 0; j < puts; ++j) {
      std::uint64_t id = static_cast<std::uint64_t>(round) << 32 | static_cast<std::uint64_t>(me) << 16 | static_cast<std::uint64_t>(j);
      std::vector<std::uint64_t> item(1 + local() % 40, 0);
      item[0] = id;
      for (std::size_t i = 1; i < item.size(); ++i) item[i] = mix({id, i});
      queue.put(item);
      put_sum += id;
    }
    for (int j = 0; j < puts; ++j) {
      std::vector<std::uint64_t> item = queue.get();
      if (item.empty()) fail(me, seed, "Queue: an empty item");
      for (std::size_t i = 1; i < item.size(); ++i) {
        if (item[i] != mix({item[0], i})) fail(me, seed, "Queue: a corrupted item");
      }
      got_sum += item[0];
    }
    if (world.allreduce(put_sum, std::plus<>()) != world.allreduce(got_sum, std::plus<>())) {
      fail(me, seed, "round " + std::to_string(round) + ": Queue items lost or duplicated");
    }
    checked_collectives += 2;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::uint64_t all_messages = world.allreduce(messages, std::plus<>());
  std::uint64_t all_bytes = world.allreduce(bytes, std::plus<>());
  if (me == 0) {
    std::printf("soak: OK: seed %" PRIu64 ", %d ranks, %d rounds, %" PRIu64 " messages, %.1f MiB, %" PRIu64
                " collective/pattern checks per rank, %.2f s\n",
                seed, n, rounds, all_messages, static_cast<double>(all_bytes) / (1 << 20), checked_collectives, seconds);
  }
  return 0;
}
