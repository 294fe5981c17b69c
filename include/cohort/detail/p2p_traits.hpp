/// @file cohort/detail/p2p_traits.hpp
/// Internal type traits shared by the point-to-point headers.
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>

namespace cohort::detail {

template <class T>
struct is_span : std::false_type {};
template <class T, std::size_t N>
struct is_span<std::span<T, N>> : std::true_type {};

/// What a receive writes into: an lvalue (resized or overwritten), or a std::span by value.
template <class T>
concept RecvArgument = std::is_lvalue_reference_v<T> || is_span<std::remove_cvref_t<T>>::value;

}  // namespace cohort::detail
