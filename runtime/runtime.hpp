// The process-wide runtime state behind cohort::Environment: the mapped job segment and this
// rank's identity. Internal; layers above transport reach the segment through it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cohort/communicator.hpp"
#include "cohort/environment.hpp"
#include "runtime/contract/contract.hpp"
#include "runtime/platform/shared_memory.hpp"
#include "runtime/transport/segment.hpp"
#include "runtime/transport/trace.hpp"
#include "runtime/transport/waiter.hpp"

namespace cohort::collectives {
class Engine;  // runtime/collectives/engine.hpp
}
namespace cohort::p2p {
class Engine;  // runtime/p2p/engine.hpp
}

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
  /// This rank's waiter (spin, yield, sleep on its doorbell).
  [[nodiscard]] transport::Waiter& waiter() noexcept { return waiter_; }
  /// This rank's side of the shared-memory collectives.
  [[nodiscard]] collectives::Engine& collectives() noexcept { return *collectives_; }
  /// This rank's point-to-point progress engine.
  [[nodiscard]] p2p::Engine& p2p() noexcept { return *p2p_; }

  /// This rank's trace block (cohortrun --trace/--stats); off (records nothing) otherwise.
  [[nodiscard]] const transport::RankTrace& trace() const noexcept { return trace_; }

  /// The active runtime, or nullptr.
  static Runtime* current() noexcept;
  /// True when every rank of the job maps the segment (always on the shared-memory backend; on
  /// the MPI backend only when all ranks are on one node). Shared objects need it.
  [[nodiscard]] bool segment_shared() const noexcept { return segment_shared_; }

 private:
  // The Waiters' background work: advances outstanding p2p and non-blocking collectives.
  static bool background(void* runtime);

  contract::LaunchInfo info_;
  platform::FileDescriptor owned_fd_;  // singleton only
  platform::Mapping mapping_;
  transport::Segment segment_;
  transport::Waiter waiter_;
  transport::RankTrace trace_;
  // Deleters set where the engines are made (the MPI backend has neither engine).
  std::unique_ptr<collectives::Engine, void (*)(collectives::Engine*)> collectives_{nullptr, nullptr};
  std::unique_ptr<p2p::Engine, void (*)(p2p::Engine*)> p2p_{nullptr, nullptr};
  std::unique_ptr<Communicator> world_;
  bool segment_shared_ = true;
};

/// Internal ways to create an Environment (cohort::spawn's children).
struct EnvironmentAccess {
  /// An Environment attached to the job described by `info`.
  static std::unique_ptr<Environment> attach(const contract::LaunchInfo& info);
  /// In a forked child: forgets the parent's Environment (without touching it), so that the child
  /// can attach to another job.
  static void forget_inherited() noexcept;
};

/// Implementation of a communicator: its members, its message space (context id) and the
/// per-layer state of point-to-point and collectives. Member i of the communicator is world rank
/// world_ranks()[i]; the world communicator has context 0.
class CommunicatorImpl {
 public:
  CommunicatorImpl(Runtime& runtime, std::uint32_t context, std::vector<int> world_ranks, int rank)
      : runtime_(runtime), context_(context), world_ranks_(std::move(world_ranks)), rank_(rank) {}
  [[nodiscard]] Runtime& runtime() const noexcept { return runtime_; }
  [[nodiscard]] std::uint32_t context() const noexcept { return context_; }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return static_cast<int>(world_ranks_.size()); }
  /// World rank of member `rank`.
  [[nodiscard]] int world_rank(int rank) const noexcept { return world_ranks_[static_cast<std::size_t>(rank)]; }
  [[nodiscard]] const std::vector<int>& world_ranks() const noexcept { return world_ranks_; }
  /// Collectives: the sequence number of the next collective call (every member counts alike).
  std::uint32_t next_collective_sequence() noexcept { return ++collective_sequence_; }
  /// Key of the next collectively created shared object (SharedArray, Lock, ...) on this
  /// communicator: every member creates them in the same order, so the keys agree.
  [[nodiscard]] std::uint64_t next_shared_object_key() noexcept {
    return (static_cast<std::uint64_t>(context_) << 32) | ++shared_objects_;
  }
  /// Backend state (the MPI backend's communicator handle); null on the shared-memory backend.
  [[nodiscard]] void* backend() const noexcept { return backend_.get(); }
  void set_backend(std::shared_ptr<void> state) noexcept { backend_ = std::move(state); }

 private:
  Runtime& runtime_;
  std::uint32_t context_;
  std::vector<int> world_ranks_;
  int rank_;
  std::uint32_t shared_objects_ = 0;
  std::uint32_t collective_sequence_ = 0;  // collectives
  std::shared_ptr<void> backend_;          // backend_mpi
};

}  // namespace cohort::detail
