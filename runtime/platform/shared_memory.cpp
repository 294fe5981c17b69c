#include "runtime/platform/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <cerrno>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "runtime/platform/system_error.hpp"

namespace cohort::platform {

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

FileDescriptor::~FileDescriptor() { reset(); }

void FileDescriptor::reset() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);  // never retried: Linux releases the descriptor even on EINTR
    fd_ = -1;
  }
}

namespace {

/// The whole of a small text file (/proc, /sys), or "" when it cannot be read.
std::string read_small_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return {};
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) out.append(buffer, n);
  std::fclose(f);
  return out;
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end == text.data()) return std::nullopt;
  return v;
}

}  // namespace

MemoryBudget available_memory() {
  MemoryBudget budget;
  std::string meminfo = read_small_file("/proc/meminfo");
  if (auto at = meminfo.find("MemAvailable:"); at != std::string::npos) {
    std::size_t digits = meminfo.find_first_of("0123456789", at);
    if (digits != std::string::npos) {
      if (auto kib = parse_u64(std::string_view(meminfo).substr(digits))) {
        budget.bytes = *kib * 1024;
        budget.limited_by = "MemAvailable in /proc/meminfo";
      }
    }
  }
  // cgroup v2: this process's group and each ancestor may cap memory (memory.max - memory.current).
  std::string group = read_small_file("/proc/self/cgroup");
  if (group.rfind("0::", 0) == 0) {
    std::string path = group.substr(3);
    while (!path.empty() && (path.back() == '\n' || path.back() == '/')) path.pop_back();
    for (;;) {
      std::string dir = "/sys/fs/cgroup" + path;
      auto max = parse_u64(read_small_file(dir + "/memory.max"));  // "max": no limit
      auto current = parse_u64(read_small_file(dir + "/memory.current"));
      if (max && current) {
        std::uint64_t room = *max > *current ? *max - *current : 0;
        if (room < budget.bytes) {
          budget.bytes = room;
          budget.limited_by = fmt::format("the memory limit of cgroup {}", path.empty() ? "/" : path);
        }
      }
      if (path.empty()) break;
      path.resize(path.rfind('/'));
    }
  }
  return budget;
}

FileDescriptor open_process_fd(int pid, int fd, std::string_view what) {
  std::string path = fmt::format("/proc/{}/fd/{}", pid, fd);
  int opened = retry_on_eintr([&] { return ::open(path.c_str(), O_RDWR | O_CLOEXEC); },
                              [&] { return fmt::format("open({}) for {}", path, what); });
  return FileDescriptor(opened);
}

FileDescriptor create_shared_memory(std::string_view debug_name, std::size_t bytes,
                                    std::size_t needed_bytes) {
  needed_bytes = std::min(needed_bytes, bytes);
  std::string name(debug_name);
  // Checked, not reserved: fallocate() of the needed part cost 3-4 ms at 32 ranks (it zeroes
  // every page up front) for pages the ranks fault in anyway. A memfd lives on the kernel's
  // internal, unlimited tmpfs mount, so a later page fault never raises SIGBUS; what can run out
  // is memory, which this check reads before anything is created.
  if (needed_bytes > 0) {
    MemoryBudget budget = available_memory();
    if (needed_bytes > budget.bytes) {
      throw std::system_error(ENOMEM, std::generic_category(),
                              fmt::format("{} needs {} bytes of shared memory but only {} are "
                                          "available ({})", name, needed_bytes, budget.bytes,
                                          budget.limited_by));
    }
  }
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) throw_errno(fmt::format("memfd_create({})", name));
  FileDescriptor owned(fd);
  // A memfd is created with mode 0777; only /proc's ptrace-style check keeps other users out.
  // Make it 0600 as well, so that the mode says what the policy is.
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) throw_errno(fmt::format("fchmod(memfd {}, 0600)", name));
  retry_on_eintr([&] { return ::ftruncate(fd, static_cast<off_t>(bytes)); },
                 [&] { return fmt::format("ftruncate(memfd {}, {} bytes)", name, bytes); });
  return owned;
}

std::size_t file_size(int fd, std::string_view what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(fmt::format("fstat({})", what));
  return static_cast<std::size_t>(st.st_size);
}

bool keep_across_exec(int fd) noexcept {
  int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == 0;
}

Mapping::Mapping(int fd, std::size_t bytes, std::string_view what) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno(fmt::format("mmap({}, {} bytes)", what, bytes));
  data_ = static_cast<std::byte*>(p);
  size_ = bytes;
}

Mapping::Mapping(Mapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

Reservation::Reservation(std::size_t bytes, std::string_view what) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (p == MAP_FAILED) throw_errno(fmt::format("mmap({}, {} bytes, reserved only)", what, bytes));
  region_ = Mapping(static_cast<std::byte*>(p), bytes);
}

void Reservation::release(std::size_t offset, std::size_t bytes) noexcept {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t size = region_.size();
  std::size_t begin = (std::min(offset, size) + page - 1) / page * page;
  std::size_t end = std::min(size, offset + bytes) / page * page;
  // Cannot fail for a range inside our own private mapping; the pages would merely stay.
  if (begin < end) (void)::madvise(region_.data() + begin, end - begin, MADV_DONTNEED);
}

}  // namespace cohort::platform
