/// @file cohort/status.hpp
/// What a completed receive (or a probe) learned about its message.
///
/// Example:
/// @code
///   std::vector<double> v;
///   cohort::Status st = comm.recv(v, cohort::any_source, cohort::any_tag);
///   std::printf("%zu doubles from rank %d, tag %d\n", st.count<double>(), st.source,
///               st.tag.value());
/// @endcode
#pragma once

#include <cstddef>

#include "cohort/tag.hpp"

namespace cohort {

/// The envelope of a received or probed message. For a send request, `source` is the
/// destination and `bytes` the bytes sent.
struct Status {
  /// Rank of the sender in the communicator.
  int source = -1;
  /// The message's tag.
  Tag tag{-1};
  /// Size of the payload in bytes (for a serialized type: the size of its encoding).
  std::size_t bytes = 0;

  /// Number of whole elements of type T in the payload (raw messages).
  template <class T>
  [[nodiscard]] std::size_t count() const noexcept {
    return bytes / sizeof(T);
  }
};

}  // namespace cohort
