/// @file cohort/environment.hpp
/// The runtime's entry point: attaches this process to its job (or makes it a job of one).
///
/// Example:
/// @code
///   #include <cohort/cohort.hpp>
///   int main(int argc, char** argv) {
///     cohort::Environment env(argc, argv);          // one per process, first thing in main
///     auto& world = env.world();
///     std::printf("rank %d of %d\n", world.rank(), world.size());
///   }                                               // ~Environment: this rank is finished
/// @endcode
/// Run it with `cohortrun -n 4 ./program`; started without cohortrun it is a job of size 1.
#pragma once

#include <memory>

#include "cohort/communicator.hpp"

namespace cohort {

namespace detail {
class Runtime;
struct EnvironmentAccess;
}

/// Attaches to the job described by the COHORT_* variables (cohort/launch_contract.hpp), or
/// creates a private job of one rank when they are absent. Throws cohort::ContractError when the
/// variables are partial or malformed. Installs a terminate handler that prints the uncaught
/// exception with the rank before the process aborts (the launcher then ends the job).
/// Exactly one Environment may exist per process at a time.
class Environment {
 public:
  Environment();
  Environment(int& argc, char**& argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  /// Every rank of the job.
  [[nodiscard]] Communicator& world() noexcept;
  /// True when the job has more ranks than cores (waits then yield the core early).
  [[nodiscard]] bool oversubscribed() const noexcept;
  /// True while an Environment exists in this process.
  [[nodiscard]] static bool active() noexcept;

 private:
  friend struct detail::EnvironmentAccess;
  explicit Environment(std::unique_ptr<detail::Runtime> runtime);
  std::unique_ptr<detail::Runtime> runtime_;
};

/// The world communicator of the active Environment; throws cohort::Error if there is none.
Communicator& world();

}  // namespace cohort
