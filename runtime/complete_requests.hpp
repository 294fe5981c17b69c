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
/// inactive; hands each status (an empty one for a failed request) to `sink` and rethrows the
/// first error after all are done.
template <class Sink>
void complete_each(std::span<Request> requests, Sink&& sink) {
  std::exception_ptr first;
  for (Request& r : requests) {
    if (!r.active()) {  // completed at once (an eager isend) or earlier: nothing to wait for
      sink(r.wait());
      continue;
    }
    try {
      sink(r.wait());
    } catch (...) {
      if (!first) first = std::current_exception();
      sink(Status{});
    }
  }
  if (first) std::rethrow_exception(first);
}

/// complete_each, returning the statuses in order (wait_all).
inline std::vector<Status> complete_requests(std::span<Request> requests) {
  std::vector<Status> out;
  out.reserve(requests.size());
  complete_each(requests, [&](const Status& s) { out.push_back(s); });
  return out;
}

/// complete_each without the statuses (test_all): no allocation.
inline void finish_requests(std::span<Request> requests) {
  complete_each(requests, [](const Status&) {});
}

}  // namespace cohort::detail
