// Both backends: completes every request of a set (wait_all, test_all), whatever the backend's
// way of making them progress was.
#pragma once

#include <exception>
#include <span>
#include <vector>

#include "cohort/request.hpp"
#include "cohort/status.hpp"

namespace cohort::detail {

/// Waits for each request in order (they have usually completed already), making every one
/// inactive; returns their statuses and rethrows the first error after all are done.
inline std::vector<Status> complete_requests(std::span<Request> requests) {
  std::vector<Status> out;
  out.reserve(requests.size());
  std::exception_ptr first;
  for (Request& r : requests) {
    try {
      out.push_back(r.wait());
    } catch (...) {
      if (!first) first = std::current_exception();
      out.push_back(Status{});
    }
  }
  if (first) std::rethrow_exception(first);
  return out;
}

}  // namespace cohort::detail
