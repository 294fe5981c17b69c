// What this machine allows a shared-memory large-message path to reach, without any messaging
// runtime: two threads pinned to two different cpus move BYTES from the first thread's buffer to
// the second thread's buffer (chunk size: 64 KiB, or COPY_CEILING_CHUNK bytes), the way a point-to-point bandwidth test does (the same source and
// destination buffers every time, as in OSU's bandwidth test).
//
//   copy_ceiling [BYTES...]        (default: 65536 1048576 4194304)
//
// Prints one line per size and method, in GB/s (best of 5 rounds):
//   memcpy_one_core   one thread copies its own source to its own destination (no crossing);
//   pipelined_chunks  the sender copies chunks of 64 KiB into a 256 KiB ring, the receiver copies
//                     each chunk out as soon as it is published (Cohort's stream protocol;
//                     COPY_CEILING_RING_CHUNKS sets the number of chunks in the ring);
//   pipelined_chunks_nt  the same with non-temporal stores into the ring (COHORT_P2P_STREAM_NT);
//   single_copy       the receiver copies straight out of the sender's buffer, after the sender
//                     rewrote it (what CMA / process_vm_readv or XPMEM do, minus the system call);
//   single_copy_unchanged  the same when the sender never writes its buffer (OSU's bandwidth test
//                     sends one buffer again and again: after the first copy its lines are
//                     shared, so a single-copy path may copy from its own cache).
// Used by README "Point-to-point > Benchmarks" to say how far from the machine's limit the p2p
// bandwidth rows are. Not a test: it asserts nothing.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "../common/cpus.hpp"
#include "runtime/transport/ring.hpp"

namespace {

std::size_t kChunk = 64 * 1024;  // COPY_CEILING_CHUNK overrides
std::size_t kRingChunks = 4;  // COPY_CEILING_RING_CHUNKS overrides
constexpr int kRounds = 5;

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int iterations_for(std::size_t bytes) { return static_cast<int>(std::max<std::size_t>(20, (1ULL << 31) / bytes)); }

double memcpy_one_core(std::size_t bytes) {
  std::vector<char> src(bytes, 'a'), dst(bytes, 'b');
  int iters = iterations_for(bytes);
  double best = 1e30;
  for (int r = 0; r < kRounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) {
      std::memcpy(dst.data(), src.data(), bytes);
      asm volatile("" : : "r"(dst.data()) : "memory");
    }
    best = std::min(best, seconds_since(t0) / iters);
  }
  return static_cast<double>(bytes) / best / 1e9;
}

struct alignas(64) Flag {
  std::atomic<std::uint64_t> value{0};
};

// Non-temporal copy: the stream's own (COHORT_P2P_STREAM_NT=1), so this measures what it does.
void copy_nt(char* dst, const char* src, std::size_t n) {
  cohort::transport::ring_detail::copy_nt(reinterpret_cast<std::byte*>(dst),
                                          reinterpret_cast<const std::byte*>(src), n);
}
bool g_nt = false;  // pipelined_chunks: the sender's copies into the ring use non-temporal stores

double pipelined_chunks(std::size_t bytes, int cpu_a, int cpu_b) {
  std::vector<char> src(bytes, 'a'), dst(bytes, 'b');
  std::vector<char> ring(kChunk * kRingChunks);
  Flag published, consumed;  // chunks published by the sender / freed by the receiver, ever
  int iters = iterations_for(bytes);
  std::size_t per_message = (bytes + kChunk - 1) / kChunk;
  std::uint64_t total = per_message * static_cast<std::size_t>(iters) * kRounds;
  double best = 1e30;
  std::thread receiver([&] {
    pin(cpu_b);
    std::uint64_t n = 0;
    for (int r = 0; r < kRounds; ++r) {
      for (int i = 0; i < iters; ++i) {
        for (std::size_t c = 0; c < per_message; ++c, ++n) {
          while (published.value.load(std::memory_order_acquire) <= n) {
          }
          std::size_t len = std::min(kChunk, bytes - c * kChunk);
          std::memcpy(dst.data() + c * kChunk, ring.data() + (n % kRingChunks) * kChunk, len);
          consumed.value.store(n + 1, std::memory_order_release);
        }
      }
    }
  });
  pin(cpu_a);
  std::uint64_t n = 0;
  for (int r = 0; r < kRounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) {
      for (std::size_t c = 0; c < per_message; ++c, ++n) {
        while (n - consumed.value.load(std::memory_order_acquire) >= kRingChunks) {
        }
        std::size_t len = std::min(kChunk, bytes - c * kChunk);
        if (g_nt) copy_nt(ring.data() + (n % kRingChunks) * kChunk, src.data() + c * kChunk, len);
        else std::memcpy(ring.data() + (n % kRingChunks) * kChunk, src.data() + c * kChunk, len);
        published.value.store(n + 1, std::memory_order_release);
      }
    }
    while (consumed.value.load(std::memory_order_acquire) < n) {
    }
    best = std::min(best, seconds_since(t0) / iters);
  }
  receiver.join();
  (void)total;
  return static_cast<double>(bytes) / best / 1e9;
}

double single_copy(std::size_t bytes, int cpu_a, int cpu_b, bool rewrite) {
  std::vector<char> src(bytes, 'a'), dst(bytes, 'b');
  Flag ready, done;
  int iters = iterations_for(bytes);
  double best = 1e30;
  std::thread receiver([&] {
    pin(cpu_b);
    for (std::uint64_t n = 1; n <= static_cast<std::uint64_t>(iters) * kRounds; ++n) {
      while (ready.value.load(std::memory_order_acquire) < n) {
      }
      std::memcpy(dst.data(), src.data(), bytes);
      done.value.store(n, std::memory_order_release);
    }
  });
  pin(cpu_a);
  std::uint64_t n = 0;
  for (int r = 0; r < kRounds; ++r) {
    double copy_time = 0;
    for (int i = 0; i < iters; ++i) {
      // The sender produces its message (its lines become modified in its cache), then the
      // receiver copies: only the receiver's copy is timed.
      if (rewrite) std::memset(src.data(), static_cast<int>('a' + (n & 7)), bytes);
      auto t0 = std::chrono::steady_clock::now();
      ready.value.store(++n, std::memory_order_release);
      while (done.value.load(std::memory_order_acquire) < n) {
      }
      copy_time += seconds_since(t0);
    }
    best = std::min(best, copy_time / iters);
  }
  receiver.join();
  return static_cast<double>(bytes) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* c = std::getenv("COPY_CEILING_CHUNK")) kChunk = std::strtoull(c, nullptr, 10);
  if (const char* c = std::getenv("COPY_CEILING_RING_CHUNKS")) kRingChunks = std::strtoull(c, nullptr, 10);
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  if (sizes.empty()) sizes = {65536, 1048576, 4194304};
  const std::vector<int> cpus = bench_common::allowed_cpus(2);
  if (cpus.size() < 2) {
    std::fprintf(stderr, "copy_ceiling: needs two cpus\n");
    return 2;
  }
  for (std::size_t bytes : sizes) {
    std::printf("%zu memcpy_one_core %.1f GB/s\n", bytes, memcpy_one_core(bytes));
    std::printf("%zu pipelined_chunks %.1f GB/s\n", bytes, pipelined_chunks(bytes, cpus[0], cpus[1]));
    g_nt = true;
    std::printf("%zu pipelined_chunks_nt %.1f GB/s\n", bytes, pipelined_chunks(bytes, cpus[0], cpus[1]));
    g_nt = false;
    std::printf("%zu single_copy %.1f GB/s\n", bytes, single_copy(bytes, cpus[0], cpus[1], true));
    std::printf("%zu single_copy_unchanged %.1f GB/s\n", bytes, single_copy(bytes, cpus[0], cpus[1], false));
  }
  return 0;
}
