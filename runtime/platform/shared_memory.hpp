// Platform layer: shared memory. Every syscall for segments lives here; each failure throws
// std::system_error naming the object and the operation, and EINTR is retried.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace cohort::platform {

/// An owned file descriptor, closed on destruction.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

/// Memory this process may still use: the smaller of MemAvailable and the room left under the
/// cgroup v2 memory limits of its group and the group's ancestors.
struct MemoryBudget {
  std::uint64_t bytes = UINT64_MAX;
  std::string limited_by = "no limit found";
};
MemoryBudget available_memory();

/// Creates an anonymous shared-memory file (memfd) of `bytes`, close-on-exec, mode 0600. Only
/// processes that inherit the descriptor (or its owner, via /proc) can open it: there is no name
/// in /dev/shm to collide with or to leave behind. Pages are not reserved (a memfd grows on its
/// unlimited internal mount and never raises SIGBUS); instead the first `needed_bytes` (default:
/// all) are checked against available_memory(), so that a job that cannot fit fails here with a
/// clear message (std::system_error, ENOMEM) before anything starts.
FileDescriptor create_shared_memory(std::string_view debug_name, std::size_t bytes,
                                    std::size_t needed_bytes = SIZE_MAX);

/// Opens, read-write and close-on-exec, the file behind descriptor `fd` of process `pid` through
/// /proc (the same user's memfd: how the MPI backend's ranks share one node's segment).
FileDescriptor open_process_fd(int pid, int fd, std::string_view what);

/// Size in bytes of the file behind `fd` (fstat).
std::size_t file_size(int fd, std::string_view what);

/// Clears close-on-exec on `fd` so that an exec'd child keeps it (called after fork).
/// Async-signal-safe; returns false on failure instead of throwing.
bool keep_across_exec(int fd) noexcept;

/// A MAP_SHARED read-write mapping, unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(int fd, std::size_t bytes, std::string_view what);
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  friend class Reservation;
  Mapping(std::byte* data, std::size_t bytes) noexcept : data_(data), size_(bytes) {}  // adopts

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A private anonymous read-write mapping of `bytes` that reserves address space only
/// (MAP_NORESERVE): a page takes memory when it is first written, and release() hands pages back.
/// Unmapped on destruction. (The MPI backend receives small messages into one, see p2p.cpp.)
class Reservation {
 public:
  Reservation() = default;
  Reservation(std::size_t bytes, std::string_view what);

  [[nodiscard]] std::byte* data() const noexcept { return region_.data(); }
  [[nodiscard]] std::size_t size() const noexcept { return region_.size(); }

  /// Gives the whole pages inside [offset, offset + bytes) back to the system (MADV_DONTNEED:
  /// they read as zero afterwards and take no memory until written again).
  void release(std::size_t offset, std::size_t bytes) noexcept;

 private:
  Mapping region_;  // owns the address range (moves, unmaps)
};

}  // namespace cohort::platform
