/// @file cohort/communicator.hpp
/// A group of ranks that exchange messages. `world()` holds every rank of the job.
///
/// Example:
/// @code
///   cohort::Environment env(argc, argv);
///   cohort::Communicator& world = env.world();
///   std::printf("rank %d of %d\n", world.rank(), world.size());
/// @endcode
#pragma once

#include <memory>

namespace cohort {

namespace detail {
class CommunicatorImpl;
}

/// A communicator: a set of ranks with its own message space. Cheap to copy (shared handle).
/// Thread safety: one thread per rank calls into a communicator at a time.
class Communicator {
 public:
  /// This process's rank in the communicator, 0 .. size()-1.
  [[nodiscard]] int rank() const noexcept;
  /// Number of ranks in the communicator.
  [[nodiscard]] int size() const noexcept;

  /// Internal: wraps an implementation object.
  explicit Communicator(std::shared_ptr<detail::CommunicatorImpl> impl) noexcept
      : impl_(std::move(impl)) {}
  [[nodiscard]] detail::CommunicatorImpl& impl() const noexcept { return *impl_; }

 private:
  std::shared_ptr<detail::CommunicatorImpl> impl_;
};

}  // namespace cohort
