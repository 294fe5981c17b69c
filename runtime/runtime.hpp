// The process-wide runtime state behind cohort::Environment: the mapped job segment and this
// rank's identity. Internal; layers above transport reach the segment through it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "cohort/communicator.hpp"
#include "runtime/contract/contract.hpp"
#include "runtime/platform/shared_memory.hpp"
#include "runtime/transport/segment.hpp"

namespace cohort::detail {

class Runtime {
 public:
  /// Attaches according to `info`, or creates a singleton job when `info` is empty.
  explicit Runtime(const std::optional<contract::LaunchInfo>& info);
  ~Runtime();

  [[nodiscard]] int rank() const noexcept { return info_.rank; }
  [[nodiscard]] int size() const noexcept { return info_.size; }
  [[nodiscard]] bool oversubscribed() const noexcept { return info_.oversubscribed; }
  [[nodiscard]] const transport::Segment& segment() const noexcept { return segment_; }
  [[nodiscard]] Communicator& world() noexcept { return *world_; }

  /// The active runtime, or nullptr.
  static Runtime* current() noexcept;

 private:
  contract::LaunchInfo info_;
  platform::FileDescriptor owned_fd_;  // singleton only
  platform::Mapping mapping_;
  transport::Segment segment_;
  std::unique_ptr<Communicator> world_;
};

/// Implementation of a communicator: its members and its place in the job.
class CommunicatorImpl {
 public:
  CommunicatorImpl(Runtime& runtime, int rank, int size) noexcept
      : runtime_(runtime), rank_(rank), size_(size) {}
  [[nodiscard]] Runtime& runtime() const noexcept { return runtime_; }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

 private:
  Runtime& runtime_;
  int rank_;
  int size_;
};

}  // namespace cohort::detail
