/// @file cohort/p2p.hpp
/// Point-to-point messaging: the send/recv family of cohort::Communicator (declared in
/// cohort/communicator.hpp, defined here). One send path for every type: raw bytes for
/// contiguous trivially-copyable data, cereal or Boost for serializable types
/// (cohort/serialization.hpp).
///
/// Example:
/// @code
///   auto& comm = env.world();
///   if (comm.rank() == 0) {
///     comm.send(3.14, 1, cohort::Tag{1});                       // a scalar
///     comm.send(std::vector<int>{1, 2, 3}, 1, cohort::Tag{2});  // raw, no serialization
///     comm.send(std::map<int, std::string>{{1, "a"}}, 1, cohort::Tag{3});  // cereal
///   } else if (comm.rank() == 1) {
///     double x = comm.recv<double>(0, cohort::Tag{1});
///     std::vector<int> v;
///     cohort::Status st = comm.recv(v, 0, cohort::Tag{2});    // v resized to 3
///     auto m = comm.recv<std::map<int, std::string>>(0, cohort::Tag{3});
///   }
///   // Non-blocking, and a ring shift that cannot deadlock:
///   int right = (comm.rank() + 1) % comm.size(), left = (comm.rank() + comm.size() - 1) % comm.size();
///   int got = 0;
///   comm.sendrecv(comm.rank(), right, cohort::Tag{0}, got, left, cohort::Tag{0});
/// @endcode
/// Semantics follow MPI: messages from one sender with one tag in one communicator arrive in
/// order; any_source receives serve every sender fairly; a message larger than the receive
/// buffer throws TruncationError (the message is consumed); a receive of the wrong format or an
/// element size that does not divide the payload throws TypeMismatch; a blocked call whose peer
/// is gone throws PeerLost.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/communicator.hpp"
#include "cohort/request.hpp"
#include "cohort/serialization.hpp"
#include "cohort/status.hpp"
#include "cohort/tag.hpp"

namespace cohort {
namespace detail {

class CommunicatorImpl;

/// Bytes to send and how they are encoded.
struct SendBuffer {
  const std::byte* data = nullptr;
  std::size_t bytes = 0;
  MessageFormat format = MessageFormat::raw;
  std::uint32_t fingerprint = 0;
};

/// Where a received payload goes. Either a fixed buffer (`prepare` null) or storage sized on
/// arrival by `prepare(ctx, bytes)`; serialized formats land in internal storage and are then
/// decoded by `finish(ctx, payload)`.
struct RecvTarget {
  MessageFormat format = MessageFormat::raw;
  std::uint32_t fingerprint = 0;
  std::size_t elem_size = 1;
  std::byte* buffer = nullptr;
  std::size_t capacity = 0;
  bool exact = false;  // a single object: the payload must fill it
  std::byte* (*prepare)(void* ctx, std::size_t bytes) = nullptr;
  void (*finish)(void* ctx, std::span<const std::byte> payload) = nullptr;
  void* ctx = nullptr;
};

void p2p_send(CommunicatorImpl& comm, int dest, Tag tag, const SendBuffer& buffer);
Request p2p_isend(CommunicatorImpl& comm, int dest, Tag tag, const SendBuffer& buffer,
                  std::shared_ptr<const void> keep_alive);
Status p2p_recv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target);
Request p2p_irecv(CommunicatorImpl& comm, int source, Tag tag, const RecvTarget& target);

template <class C>
std::byte* resize_container(void* ctx, std::size_t bytes) {
  auto& c = *static_cast<C*>(ctx);
  c.resize(bytes / sizeof(typename C::value_type));
  return reinterpret_cast<std::byte*>(c.data());
}

template <class T>
void decode_into(void* ctx, std::span<const std::byte> payload) {
  decode(payload, *static_cast<T*>(ctx));
}

/// Raw bytes of a raw value or container.
template <class T>
std::span<const std::byte> raw_bytes(const T& value) noexcept {
  if constexpr (RawContainer<T>) {
    return std::as_bytes(std::span(value.data(), value.size()));
  } else {
    return {reinterpret_cast<const std::byte*>(std::addressof(value)), sizeof(T)};
  }
}

template <class T>
SendBuffer send_buffer(const T& value, std::vector<std::byte>& scratch) {
  check_transmittable<T>();
  if constexpr (format_of<T> == MessageFormat::raw) {
    auto b = raw_bytes(value);
    return {b.data(), b.size(), MessageFormat::raw, 0};
  } else {
    encode(value, scratch);
    return {scratch.data(), scratch.size(), format_of<T>, type_fingerprint<T>()};
  }
}

inline std::vector<std::byte>& send_scratch() {
  thread_local std::vector<std::byte> scratch;
  return scratch;
}

/// The receive target for `out` (an lvalue, or a span by value).
template <class T>
RecvTarget recv_target(T& out) {
  using U = std::remove_cv_t<T>;
  check_transmittable<U>();
  RecvTarget t;
  t.format = format_of<U>;
  if constexpr (format_of<U> != MessageFormat::raw) {
    t.fingerprint = type_fingerprint<U>();
    t.finish = &decode_into<U>;
    t.ctx = &out;
  } else if constexpr (is_span<U>::value) {
    static_assert(!std::is_const_v<typename U::element_type>, "cohort: cannot receive into a span of const");
    t.elem_size = sizeof(typename U::element_type);
    t.buffer = reinterpret_cast<std::byte*>(out.data());
    t.capacity = out.size_bytes();
  } else if constexpr (RawContainer<U>) {
    t.elem_size = sizeof(typename U::value_type);
    t.prepare = &resize_container<U>;
    t.ctx = &out;
  } else {
    t.elem_size = sizeof(U);
    t.buffer = reinterpret_cast<std::byte*>(std::addressof(out));
    t.capacity = sizeof(U);
    t.exact = true;
  }
  return t;
}

}  // namespace detail

template <class T>
void Communicator::send(const T& data, int dest, Tag tag) {
  detail::check_transmittable<T>();
  if constexpr (format_of<T> == MessageFormat::raw) {
    auto bytes = detail::raw_bytes(data);
    detail::p2p_send(impl(), dest, tag, {bytes.data(), bytes.size(), MessageFormat::raw, 0});
  } else {
    detail::p2p_send(impl(), dest, tag, detail::send_buffer(data, detail::send_scratch()));
  }
}

template <class T>
  requires detail::RecvArgument<T>
Status Communicator::recv(T&& out, int source, Tag tag) {
  return detail::p2p_recv(impl(), source, tag, detail::recv_target(out));
}

template <class T>
T Communicator::recv(int source, Tag tag, Status* status) {
  static_assert(std::is_default_constructible_v<T>,
                "cohort: recv<T>() needs a default-constructible T; use recv(T&, ...) instead");
  T value{};
  Status st = detail::p2p_recv(impl(), source, tag, detail::recv_target(value));
  if (status != nullptr) *status = st;
  return value;
}

template <class T>
Request Communicator::isend(const T& data, int dest, Tag tag) {
  if constexpr (format_of<T> == MessageFormat::raw) {
    return detail::p2p_isend(impl(), dest, tag, detail::send_buffer(data, detail::send_scratch()), nullptr);
  } else {
    auto owned = std::make_shared<std::vector<std::byte>>();
    detail::SendBuffer b = detail::send_buffer(data, *owned);
    return detail::p2p_isend(impl(), dest, tag, b, std::move(owned));
  }
}

template <class T>
  requires(!std::is_lvalue_reference_v<T>)
Request Communicator::isend(T&& data, int dest, Tag tag) {
  using U = std::remove_cvref_t<T>;
  if constexpr (format_of<U> == MessageFormat::raw && !detail::is_span<U>::value) {
    auto owned = std::make_shared<U>(std::move(data));
    detail::SendBuffer b = detail::send_buffer(*owned, detail::send_scratch());
    return detail::p2p_isend(impl(), dest, tag, b, std::move(owned));
  } else {
    return isend(static_cast<const U&>(data), dest, tag);
  }
}

template <class T>
  requires detail::RecvArgument<T>
Request Communicator::irecv(T&& out, int source, Tag tag) {
  return detail::p2p_irecv(impl(), source, tag, detail::recv_target(out));
}

template <class S, class R>
  requires detail::RecvArgument<R>
Status Communicator::sendrecv(const S& send_data, int dest, Tag send_tag, R&& recv_out,
                              int source, Tag recv_tag) {
  Request r = isend(send_data, dest, send_tag);
  Status st = recv(std::forward<R>(recv_out), source, recv_tag);
  r.wait();
  return st;
}

}  // namespace cohort
