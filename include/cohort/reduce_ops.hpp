/// @file cohort/reduce_ops.hpp
/// Reduction operations and the buffer concepts the collectives accept.
///
/// A reduction takes any associative callable `T op(const T&, const T&)`: a lambda, std::plus<>,
/// std::multiplies<>, cohort::min, cohort::max, or a user type's operator. Cohort always combines
/// in rank order, `((x0 op x1) op x2) op ...`, so non-commutative operations are fine and floating
/// point results are bit-identical on every rank and every run.
///
/// Example:
/// @code
///   double hi = world.allreduce(local, cohort::max);
///   world.allreduce(std::span(values), std::plus<>{});          // in place, elementwise
///   auto m = world.reduce(mat, [](const M2& a, const M2& b) { return a * b; }, 0);
/// @endcode
#pragma once

#include <cstdint>
#include <ranges>
#include <string>
#include <type_traits>

namespace cohort {

/// Elementwise minimum (`b < a ? b : a`: the first of equal values). Vectorises on arithmetic types.
struct Min {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return b < a ? b : a;
  }
};
/// Elementwise maximum (`a < b ? b : a`). Vectorises on arithmetic types.
struct Max {
  template <class T>
  constexpr T operator()(const T& a, const T& b) const {
    return a < b ? b : a;
  }
};
inline constexpr Min min{};
inline constexpr Max max{};

/// Color for Communicator::split that puts the calling rank in no new communicator.
inline constexpr int undefined = -32766;

namespace detail {

template <class R>
using range_element_t = std::remove_cvref_t<std::ranges::range_reference_t<R>>;

/// A value that travels as its bytes: trivially copyable and not a range.
template <class T>
concept CollectiveValue = std::is_trivially_copyable_v<T> && !std::ranges::range<T>;

/// A value that travels serialized (see cohort/serialization.hpp): not trivially copyable and
/// not a buffer of trivially copyable elements, e.g. std::string in gather, std::vector of
/// strings, a cereal or Boost.Serialization type.
template <class T>
concept TriviallyCopyableRange =
    std::ranges::contiguous_range<T> && std::is_trivially_copyable_v<range_element_t<T>>;
template <class T>
struct is_basic_string : std::false_type {};
template <class C, class Tr, class A>
struct is_basic_string<std::basic_string<C, Tr, A>> : std::true_type {};
template <class T>
concept SerializedCollectiveValue =
    !std::is_trivially_copyable_v<T> && (!TriviallyCopyableRange<T> || is_basic_string<T>::value);

/// A contiguous, sized range of trivially copyable elements (std::vector, std::span, std::array).
template <class R>
concept CollectiveBuffer = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                           std::is_trivially_copyable_v<range_element_t<R>>;

/// A CollectiveBuffer whose elements can be written.
template <class R>
concept MutableCollectiveBuffer =
    CollectiveBuffer<R> &&
    !std::is_const_v<std::remove_reference_t<std::ranges::range_reference_t<R>>>;

}  // namespace detail
}  // namespace cohort
