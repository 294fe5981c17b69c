/// @file cohort/tag.hpp
/// Message tags and the wildcards of point-to-point receives.
///
/// Example:
/// @code
///   constexpr cohort::Tag kHalo{7};
///   comm.send(data, /*dest=*/1, kHalo);          // comm.send(data, kHalo, 1) does not compile
///   auto st = comm.recv(buf, cohort::any_source, cohort::any_tag);
/// @endcode
#pragma once

namespace cohort {

/// A message tag: a number in 0 .. Tag::kMax chosen by the program. A strong type (the
/// constructor is explicit) so that a tag and a rank cannot be swapped by accident. Negative
/// values are reserved (any_tag is -1); using one, or one above kMax, throws InvalidArgument.
class Tag {
 public:
  /// Largest tag a program may use.
  static constexpr int kMax = (1 << 30) - 1;

  constexpr explicit Tag(int value) noexcept : value_(value) {}
  [[nodiscard]] constexpr int value() const noexcept { return value_; }
  friend constexpr bool operator==(Tag, Tag) noexcept = default;

 private:
  int value_;
};

/// Receive or probe from any rank of the communicator.
inline constexpr int any_source = -1;
/// Receive or probe a message with any tag.
inline constexpr Tag any_tag{-1};

}  // namespace cohort
