/// @file cohort/shared.hpp
/// Memory every rank maps: `SharedArray<T>` and `SharedValue<T>`, like Python's
/// `multiprocessing.Array` and `multiprocessing.Value`.
///
/// Example:
/// @code
///   cohort::Environment env(argc, argv);
///   auto& world = env.world();
///   cohort::SharedArray<double> hist(world, 100);      // collective: every rank, same order
///   cohort::SharedValue<long> counter(world, 0);
///   hist.atomic(world.rank() % 100).fetch_add(1.0);    // atomic update, no lock
///   counter.fetch_add(1);
///   world.barrier();                                   // (collectives) then everyone sees all
/// @endcode
///
/// Creation is collective over a communicator and does not block: every member creates its shared
/// objects in the same order, and the first to arrive allocates (zero-filled, or filled with the
/// initial value) in the job's shared heap; the others map the same block. A size that differs
/// between ranks is a cohort::InvalidArgument. Objects live until the job ends; the heap's size is
/// set by `cohortrun --shared-heap BYTES` (default 64 MiB, committed only as it is used).
/// Plain element access is not synchronised: use atomic(), a cohort::Lock, or a barrier.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>

#include "cohort/communicator.hpp"

namespace cohort {

namespace detail {
/// The shared block for the communicator's next shared object (see cohort/shared.hpp).
std::span<std::byte> attach_shared(Communicator& comm, std::size_t bytes, std::size_t align,
                                   void (*init)(std::span<std::byte>, const void*),
                                   const void* init_context);

template <class T>
void fill_with(std::span<std::byte> block, const void* value) {
  const T& v = *static_cast<const T*>(value);
  for (std::size_t off = 0; off + sizeof(T) <= block.size(); off += sizeof(T)) {
    std::memcpy(block.data() + off, &v, sizeof(T));
  }
}
}  // namespace detail

/// A trivially copyable type that can live in shared memory.
template <class T>
concept SharedStorable = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>;

/// A fixed-size array mapped by every rank of a communicator (size chosen at run time).
template <SharedStorable T>
class SharedArray {
 public:
  /// Collective: `n` elements, zero-filled.
  SharedArray(Communicator& comm, std::size_t n)
      : data_(cast(detail::attach_shared(comm, bytes_for(n), alignof(T) < 64 ? 64 : alignof(T),
                                         nullptr, nullptr))),
        size_(n) {}
  /// Collective: `n` copies of `value`.
  SharedArray(Communicator& comm, std::size_t n, const T& value)
      : data_(cast(detail::attach_shared(comm, bytes_for(n), alignof(T) < 64 ? 64 : alignof(T),
                                         &detail::fill_with<T>, &value))),
        size_(n) {}

  [[nodiscard]] T* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return data_[i]; }
  [[nodiscard]] T* begin() const noexcept { return data_; }
  [[nodiscard]] T* end() const noexcept { return data_ + size_; }
  [[nodiscard]] std::span<T> span() const noexcept { return {data_, size_}; }
  operator std::span<T>() const noexcept { return span(); }  // NOLINT: a view, like std::vector

  /// Atomic access to element `i` (fetch_add, compare_exchange, ...). T must be lock-free
  /// (a lock inside libatomic would not be shared between processes).
  [[nodiscard]] std::atomic_ref<T> atomic(std::size_t i) const noexcept
    requires std::atomic_ref<T>::is_always_lock_free
  {
    return std::atomic_ref<T>(data_[i]);
  }

 private:
  static std::size_t bytes_for(std::size_t n) { return n == 0 ? 1 : n * sizeof(T); }
  static T* cast(std::span<std::byte> block) noexcept { return reinterpret_cast<T*>(block.data()); }
  T* data_;
  std::size_t size_;
};

/// One value mapped by every rank, with atomic operations (like multiprocessing.Value).
/// T must be lock-free as a std::atomic_ref (integers, floating point, small trivially copyable
/// structs); for bigger types use a SharedArray<T> of 1 under a cohort::Lock.
template <SharedStorable T>
  requires std::atomic_ref<T>::is_always_lock_free
class SharedValue {
 public:
  /// Collective: the value starts as `initial` (or zero).
  explicit SharedValue(Communicator& comm, const T& initial = T{})
      : value_(reinterpret_cast<T*>(detail::attach_shared(comm, sizeof(T), 64,
                                                           &detail::fill_with<T>, &initial)
                                        .data())) {}

  [[nodiscard]] T load(std::memory_order order = std::memory_order_seq_cst) const noexcept {
    return ref().load(order);
  }
  void store(T v, std::memory_order order = std::memory_order_seq_cst) noexcept {
    ref().store(v, order);
  }
  operator T() const noexcept { return load(); }  // NOLINT: reads like the value
  SharedValue& operator=(T v) noexcept {
    store(v);
    return *this;
  }
  T exchange(T v) noexcept { return ref().exchange(v); }
  bool compare_exchange(T& expected, T desired) noexcept {
    return ref().compare_exchange_strong(expected, desired);
  }
  /// Atomic add; returns the previous value (integers and floating point).
  T fetch_add(T v) noexcept
    requires std::is_arithmetic_v<T>
  {
    return ref().fetch_add(v);
  }
  T fetch_sub(T v) noexcept
    requires std::is_arithmetic_v<T>
  {
    return ref().fetch_sub(v);
  }
  /// The raw storage, for non-atomic use under a lock.
  [[nodiscard]] T* get() const noexcept { return value_; }

 private:
  [[nodiscard]] std::atomic_ref<T> ref() const noexcept { return std::atomic_ref<T>(*value_); }
  T* value_;
};

}  // namespace cohort
