// runtime/platform/cross_memory: copies to and from a forked child (a sibling's view of another
// rank), every outcome: done (odd sizes, unaligned ends, several pages), bad_address, peer_gone.
#include "runtime/platform/cross_memory.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace cohort::platform {
namespace {

/// A child that keeps `bytes` of known contents at a known address until told to leave.
struct Child {
  struct Shared {
    std::atomic<std::uint64_t> address{0};
    std::atomic<int> leave{0};
  };
  Shared* shared;
  pid_t pid = -1;

  explicit Child(std::size_t bytes) {
    void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared = new (p) Shared;
    pid = ::fork();
    if (pid == 0) {
      std::vector<std::uint8_t> data(bytes);
      for (std::size_t i = 0; i < bytes; ++i) data[i] = static_cast<std::uint8_t>(i * 7 + 1);
      shared->address.store(reinterpret_cast<std::uint64_t>(data.data()));
      while (shared->leave.load() == 0) ::usleep(1000);
      // Reports through its exit code whether a write from the parent arrived.
      _exit(data[0] == 0xAB && data[bytes - 1] == 0xCD ? 0 : 1);
    }
    while (shared->address.load() == 0) ::usleep(100);
  }
  std::uint8_t* remote() const { return reinterpret_cast<std::uint8_t*>(shared->address.load()); }
  int finish() {
    shared->leave.store(1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  }
  ~Child() { ::munmap(shared, sizeof(Shared)); }
};

TEST(CrossMemory, ReadsAndWritesAnotherProcess) {
  constexpr std::size_t kBytes = 3 * 4096 + 123;
  Child child(kBytes);
  for (std::size_t offset : {0ul, 1ul, 4095ul}) {
    std::vector<std::uint8_t> got(kBytes, 0);
    const std::size_t n = kBytes - offset;
    ASSERT_EQ(read_from(child.pid, child.remote() + offset, got.data(), n), CrossMemory::done);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], static_cast<std::uint8_t>((i + offset) * 7 + 1)) << offset << " " << i;
    }
  }
  const std::uint8_t first = 0xAB, last = 0xCD;
  EXPECT_EQ(write_to(child.pid, child.remote(), &first, 1), CrossMemory::done);
  EXPECT_EQ(write_to(child.pid, child.remote() + kBytes - 1, &last, 1), CrossMemory::done);
  EXPECT_EQ(child.finish(), 0) << "the child did not see both writes";
}

TEST(CrossMemory, AnUnmappedRangeIsABadAddress) {
  Child child(4096);
  std::vector<std::uint8_t> got(8192);
  // Address 4096 is never mapped (mmap_min_addr); the second case runs off the child's buffer
  // far into unmapped space.
  EXPECT_EQ(read_from(child.pid, reinterpret_cast<void*>(4096), got.data(), 16), CrossMemory::bad_address);
  EXPECT_EQ(write_to(child.pid, reinterpret_cast<void*>(4096), got.data(), 16), CrossMemory::bad_address);
  child.finish();
}

TEST(CrossMemory, AProcessThatIsGoneIsPeerGone) {
  Child child(4096);
  std::uint8_t* remote = child.remote();
  const pid_t pid = child.pid;
  child.finish();  // exited and reaped: the pid names nobody (pids are not reused this soon)
  std::uint8_t b = 0;
  EXPECT_EQ(read_from(pid, remote, &b, 1), CrossMemory::peer_gone);
  EXPECT_EQ(write_to(pid, remote, &b, 1), CrossMemory::peer_gone);
}

TEST(CrossMemory, DescribesEveryOutcome) {
  for (CrossMemory r : {CrossMemory::done, CrossMemory::not_permitted, CrossMemory::peer_gone,
                        CrossMemory::bad_address}) {
    EXPECT_STRNE(describe(r), "?");
  }
}

}  // namespace
}  // namespace cohort::platform
