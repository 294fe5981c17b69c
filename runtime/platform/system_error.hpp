// Platform layer: errno -> std::system_error with the object's name; EINTR retry.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace cohort::platform {

/// Throws std::system_error for the current errno with `what` as context.
[[noreturn]] inline void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

/// Calls `fn` until it does not fail with EINTR; throws with `describe()` on any other error.
/// `fn` returns a value < 0 (and sets errno) on failure.
template <class Fn, class Describe>
auto retry_on_eintr(Fn&& fn, Describe&& describe) {
  for (;;) {
    auto rc = fn();
    if (rc >= 0) return rc;
    if (errno != EINTR) throw_errno(describe());
  }
}

}  // namespace cohort::platform
