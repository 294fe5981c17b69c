#include "runtime/platform/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

FileDescriptor open_process_fd(int pid, int fd, std::string_view what) {
  std::string path = fmt::format("/proc/{}/fd/{}", pid, fd);
  int opened = retry_on_eintr([&] { return ::open(path.c_str(), O_RDWR | O_CLOEXEC); },
                              [&] { return fmt::format("open({}) for {}", path, what); });
  return FileDescriptor(opened);
}

FileDescriptor create_shared_memory(std::string_view debug_name, std::size_t bytes,
                                    std::size_t reserve_bytes) {
  reserve_bytes = std::min(reserve_bytes, bytes);
  std::string name(debug_name);
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) throw_errno(fmt::format("memfd_create({})", name));
  FileDescriptor owned(fd);
  // A memfd is created with mode 0777; only /proc's ptrace-style check keeps other users out.
  // Make it 0600 as well, so that the mode says what the policy is.
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) throw_errno(fmt::format("fchmod(memfd {}, 0600)", name));
  retry_on_eintr([&] { return ::ftruncate(fd, static_cast<off_t>(bytes)); },
                 [&] { return fmt::format("ftruncate(memfd {}, {} bytes)", name, bytes); });
  // posix_fallocate returns the error number instead of setting errno.
  int rc = 0;
  do {
    rc = reserve_bytes == 0 ? 0 : ::posix_fallocate(fd, 0, static_cast<off_t>(reserve_bytes));
  } while (rc == EINTR);
  if (rc != 0) {
    throw std::system_error(rc, std::generic_category(),
                            fmt::format("cannot reserve {} bytes of shared memory for {} "
                                        "(is memory or the shmem limit exhausted?)",
                                        reserve_bytes, name));
  }
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

}  // namespace cohort::platform
