/// @file cohort/request.hpp
/// Handles of non-blocking sends and receives.
///
/// Example:
/// @code
///   std::vector<double> left(n), right(n);
///   std::vector<cohort::Request> reqs;
///   reqs.push_back(comm.irecv(std::span(left), prev, cohort::Tag{0}));
///   reqs.push_back(comm.irecv(std::span(right), next, cohort::Tag{0}));
///   reqs.push_back(comm.isend(mine, prev, cohort::Tag{0}));
///   reqs.push_back(comm.isend(mine, next, cohort::Tag{0}));
///   cohort::wait_all(reqs);                        // progresses every pending transfer
/// @endcode
/// Buffers passed to isend/irecv must stay alive and untouched until the request completes
/// (an rvalue passed to isend is moved into the request instead). A Request is move-only;
/// destroying an active one cancels a receive that has not matched yet and otherwise waits
/// for it to complete (errors are then dropped). Complete every request before the
/// Environment ends: one still pending then fails, and waiting on it throws cohort::Error
/// saying so (shared-memory backend).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "cohort/status.hpp"

namespace cohort {

namespace detail {
struct Operation;
/// Returns a finished operation to its engine's pool.
struct OperationDeleter {
  void operator()(Operation* op) const noexcept;
};
}  // namespace detail

/// A pending non-blocking operation. Any call that waits (wait, test, a blocking send or
/// receive) also advances every other pending operation of this rank.
class Request {
 public:
  /// An inactive request (already complete, nothing to wait for).
  Request() noexcept = default;
  Request(Request&& other) noexcept;
  Request& operator=(Request&& other) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request();

  /// Blocks until the operation completes and returns its status; the request becomes inactive.
  /// Throws what the operation failed with (TruncationError, TypeMismatch, DeserializeError,
  /// PeerLost, ...). On an inactive request returns the last status (or an empty one).
  Status wait();
  /// Returns the status if the operation has completed (the request becomes inactive), or
  /// std::nullopt. Throws like wait().
  std::optional<Status> test();
  /// True until wait()/test() has returned the completion.
  [[nodiscard]] bool active() const noexcept { return op_ != nullptr; }

  /// Internal: takes ownership of a pending operation.
  explicit Request(detail::Operation* op) noexcept : op_(op) {}
  /// Internal: an operation that completed at once.
  static Request completed(const Status& status) noexcept {
    Request r;
    r.status_ = status;
    return r;
  }
  [[nodiscard]] detail::Operation* operation() const noexcept { return op_.get(); }

 private:
  std::unique_ptr<detail::Operation, detail::OperationDeleter> op_;
  Status status_;
};

/// Waits for every active request; returns their statuses in order. Throws the first error
/// after all have completed or failed.
std::vector<Status> wait_all(std::span<Request> requests);

/// The index and status of the request that wait_any() completed.
struct Completion {
  std::size_t index;
  Status status;
};

/// Waits until one active request completes, makes it inactive and returns it. Throws
/// InvalidArgument when no request is active, and the completed request's error if it failed.
Completion wait_any(std::span<Request> requests);

/// True when every request has completed (they all become inactive); false otherwise (then none
/// changes). Throws the first error once all have completed.
bool test_all(std::span<Request> requests);

}  // namespace cohort
