#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>

#include <fmt/format.h>

#include "cohort/environment.hpp"
#include "cohort/errors.hpp"
#include "runtime/collectives/engine.hpp"
#include "runtime/p2p/engine.hpp"
#include "runtime/runtime.hpp"

namespace cohort {
namespace detail {
namespace {

std::atomic<Runtime*> g_runtime{nullptr};
std::terminate_handler g_previous_terminate = nullptr;

// Prints the uncaught exception with the rank, then aborts: the launcher sees the signal and
// ends the job (mpi4py's behaviour: never hang on an exception).
[[noreturn]] void terminate_with_rank() {
  Runtime* rt = g_runtime.load();
  int rank = rt != nullptr ? rt->rank() : 0;
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "cohort: rank %d: uncaught exception: %s\n", rank, ex.what());
    } catch (...) {
      std::fprintf(stderr, "cohort: rank %d: uncaught exception of unknown type\n", rank);
    }
  } else {
    std::fprintf(stderr, "cohort: rank %d: std::terminate called\n", rank);
  }
  std::fflush(stderr);
  std::abort();
}

[[maybe_unused]] std::vector<int> identity_ranks(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

[[maybe_unused]] std::uint64_t random_job_id() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

#ifndef COHORT_BACKEND_MPI  // the MPI backend's Runtime: runtime/backend_mpi/runtime.cpp
Runtime::Runtime(const std::optional<contract::LaunchInfo>& info) {
  int fd = -1;
  if (info) {
    info_ = *info;
    fd = info_.segment_fd;
    if (::fcntl(fd, F_GETFD) < 0) {
      throw ContractError(fmt::format(
          "cohort: rank {}: COHORT_SEGMENT_FD={} is not an open descriptor (was the program "
          "started by something other than cohortrun, or did it close its descriptors?)",
          info_.rank, fd));
    }
    // Programs this rank runs must not inherit the job.
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    std::size_t bytes = platform::file_size(fd, "job segment");
    mapping_ = platform::Mapping(fd, bytes, "job segment");
    segment_ = transport::Segment(mapping_.bytes());
    segment_.validate(info_.job, info_.size);
  } else {
    info_ = contract::LaunchInfo{};
    info_.job = random_job_id();
    auto layout = transport::segment_layout(1);
    owned_fd_ = platform::create_shared_memory("cohort-singleton", layout.total_bytes,
                                               layout.reserved_bytes());
    mapping_ = platform::Mapping(owned_fd_.get(), layout.total_bytes, "singleton segment");
    segment_ = transport::Segment::format(mapping_.bytes(), 1, info_.job, false);
  }
  waiter_ = transport::Waiter(segment_, info_.rank, info_.oversubscribed);
  if (!segment_.trace_area().empty()) {
    trace_ = transport::RankTrace(segment_.trace_area(), info_.rank);
    trace_.prefault();
  }
  collectives_ = {new collectives::Engine(segment_, info_.rank, info_.oversubscribed),
                  [](collectives::Engine* e) { delete e; }};
  p2p_ = {new p2p::Engine(segment_, waiter_, info_.rank, info_.size), [](p2p::Engine* e) { delete e; }};
  // Whatever a rank blocks in, its outstanding non-blocking operations keep moving.
  waiter_.set_background(&Runtime::background, this);
  collectives_->waiter().set_background(&Runtime::background, this);
  transport::RankSlot& slot = segment_.slot(info_.rank);
  slot.pid.store(static_cast<std::int32_t>(::getpid()), std::memory_order_relaxed);
  slot.state.store(static_cast<std::uint32_t>(transport::RankState::attached),
                   std::memory_order_release);
  world_ = std::make_unique<Communicator>(
      std::make_shared<CommunicatorImpl>(*this, 0u, identity_ranks(info_.size), info_.rank));
}

bool Runtime::background(void* runtime) {
  auto& self = *static_cast<Runtime*>(runtime);
  bool outstanding = self.p2p_->background_progress();
  self.collectives_->progress_pending();
  return outstanding || !self.collectives_->pending.empty();
}

Runtime::~Runtime() {
  // The reads this rank released, for publishers that wait on it after it is gone (before the
  // state store: its release orders them).
  collectives_->publish_released();
  segment_.slot(info_.rank).state.store(static_cast<std::uint32_t>(transport::RankState::finished),
                                        std::memory_order_release);
  segment_.wake_all();  // peers waiting on this rank re-check and see it finished
}
#endif

Runtime* Runtime::current() noexcept { return g_runtime.load(); }

}  // namespace detail

Environment::Environment()
    : Environment(std::make_unique<detail::Runtime>(contract::parse_environment())) {}

Environment::Environment(std::unique_ptr<detail::Runtime> runtime) {
  detail::Runtime* expected = nullptr;
  if (!detail::g_runtime.compare_exchange_strong(expected, runtime.get())) {
    throw Error("cohort: an Environment already exists in this process; create exactly one");
  }
  runtime_ = std::move(runtime);
  detail::g_previous_terminate = std::set_terminate(detail::terminate_with_rank);
}

namespace detail {
std::unique_ptr<Environment> EnvironmentAccess::attach(const contract::LaunchInfo& info) {
  return std::unique_ptr<Environment>(new Environment(std::make_unique<Runtime>(info)));
}

void EnvironmentAccess::forget_inherited() noexcept { g_runtime.store(nullptr); }
}  // namespace detail

Environment::Environment(int& /*argc*/, char**& /*argv*/) : Environment() {}

Environment::~Environment() {
  std::set_terminate(detail::g_previous_terminate);
  detail::g_runtime.store(nullptr);
}

Communicator& Environment::world() noexcept { return runtime_->world(); }
bool Environment::oversubscribed() const noexcept { return runtime_->oversubscribed(); }
bool Environment::active() noexcept { return detail::g_runtime.load() != nullptr; }

Communicator& world() {
  detail::Runtime* rt = detail::g_runtime.load();
  if (rt == nullptr) throw Error("cohort::world(): no cohort::Environment is active in this process");
  return rt->world();
}

int Communicator::rank() const noexcept { return impl_->rank(); }
int Communicator::size() const noexcept { return impl_->size(); }

}  // namespace cohort
