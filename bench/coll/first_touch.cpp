// What a process's first access to a page of shared memory costs on this machine, the cost a
// rank pays the first time it reads each page of a peer's staging slots (README, Collectives >
// Benchmarks: why a job's first large alltoalls are slow here). No messaging runtime involved:
//
//   first_touch [MIB]      (default 2)
//
// One process writes MIB MiB of a memfd (mapped shared, populated with MADV_POPULATE_WRITE);
// a forked child maps it and reads it three times; then maps it again, populates that mapping
// with MADV_POPULATE_READ and reads it twice more. Prints each pass in us and in us per 4 KiB
// page. On a machine where first access is cheap, pass 0 costs a few times pass 1 (minor
// faults); where it is not, pass 0 costs tens of times more, populated or not.
// Not a test: it asserts nothing.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace {

using Clock = std::chrono::steady_clock;

double copy_us(void* to, const void* from, std::size_t bytes) {
  const auto t = Clock::now();
  std::memcpy(to, from, bytes);
  asm volatile("" ::: "memory");
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

void report(const char* what, int pass, double us, std::size_t bytes) {
  std::printf("%-32s pass %d: %9.0f us  %6.2f us a page\n", what, pass, us,
              us / static_cast<double>(bytes / 4096));
}

char* map_shared(int fd, std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  return static_cast<char*>(p);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 2;
  const std::size_t bytes = mib << 20;
  const int fd = ::memfd_create("first_touch", 0);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    std::perror("memfd");
    return 1;
  }
  char* shared = map_shared(fd, bytes);
  if (::madvise(shared, bytes, MADV_POPULATE_WRITE) != 0) std::perror("madvise(POPULATE_WRITE)");
  std::vector<char> local(bytes, 1);
  for (int pass = 0; pass < 2; ++pass) {
    report("writer, populated mapping", pass, copy_us(shared, local.data(), bytes), bytes);
  }
  std::fflush(stdout);
  const pid_t child = ::fork();
  if (child == 0) {
    char* first = map_shared(fd, bytes);
    for (int pass = 0; pass < 3; ++pass) {
      report("reader, new mapping", pass, copy_us(local.data(), first, bytes), bytes);
    }
    char* second = map_shared(fd, bytes);
    if (::madvise(second, bytes, MADV_POPULATE_READ) != 0) std::perror("madvise(POPULATE_READ)");
    for (int pass = 0; pass < 2; ++pass) {
      report("reader, populated new mapping", pass, copy_us(local.data(), second, bytes), bytes);
    }
    std::fflush(stdout);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
