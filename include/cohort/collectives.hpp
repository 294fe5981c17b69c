/// @file cohort/collectives.hpp
/// Collective operations on a Communicator, over shared memory: barrier, broadcast, reduce,
/// allreduce, scan/exscan, reduce_scatter, gather(v), scatter(v), allgather(v), alltoall(v),
/// split and dup. Included by cohort/communicator.hpp; see README.md, "Collectives and communicators".
///
/// Values are trivially copyable scalars/structs, or contiguous ranges of them (std::vector,
/// std::span, std::array) which are processed elementwise; std::vector and std::string can also
/// be broadcast with their size. Every rank of the communicator must make the same sequence of
/// collective calls with matching roots, counts and operations; a detected inconsistency throws
/// cohort::CollectiveMismatch naming both values, and a rank that died or exited before taking
/// part makes the others throw cohort::PeerLost.
///
/// Reductions combine in rank order: `((x0 op x1) op x2) ...` elementwise, so the operation only
/// has to be associative, and floating-point results are bit-identical on every rank and run.
///
/// Example:
/// @code
///   auto& world = env.world();
///   double sum = world.allreduce(local, std::plus<>{});
///   std::vector<double> v(1000, world.rank());
///   world.allreduce(v, cohort::max);                    // in place, elementwise
///   world.broadcast(v, 0);                              // resized to root's size elsewhere
///   std::vector<int> all = world.gather(world.rank(), 0);
///   auto half = world.split(world.rank() % 2, world.rank());   // std::optional<Communicator>
///   half->barrier();
/// @endcode
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include "cohort/communicator.hpp"
#include "cohort/detail/copy.hpp"
#include "cohort/errors.hpp"
#include "cohort/reduce_ops.hpp"
#include "cohort/serialization.hpp"

namespace cohort {

namespace collectives {
class PendingOp;  // runtime/collectives
}

/// A non-blocking collective in flight (ibarrier, ibroadcast, iallreduce). Buffers passed to the
/// call must stay alive (and inputs unchanged) until it completes. Any collective wait of this
/// rank (a blocking collective, another request's wait/test) also advances it. Move-only;
/// destroying an active request waits for it (errors are then dropped).
class CollectiveRequest {
 public:
  CollectiveRequest() noexcept = default;
  CollectiveRequest(CollectiveRequest&&) noexcept = default;
  CollectiveRequest& operator=(CollectiveRequest&& other) noexcept {
    if (this != &other) {
      if (op_) wait_quietly();
      op_ = std::move(other.op_);
      keep_ = std::move(other.keep_);
    }
    return *this;
  }
  CollectiveRequest(const CollectiveRequest&) = delete;
  CollectiveRequest& operator=(const CollectiveRequest&) = delete;
  ~CollectiveRequest();

  /// Blocks until the collective completes; throws what it failed with (PeerLost,
  /// CollectiveMismatch). Returns at once on an inactive request.
  void wait();
  /// Advances it; true (and the request becomes inactive) once it has completed.
  bool test();
  /// True until wait()/test() has seen the completion.
  [[nodiscard]] bool active() const noexcept { return op_ != nullptr; }

  /// Internal.
  CollectiveRequest(std::shared_ptr<collectives::PendingOp> op, std::shared_ptr<void> keep) noexcept
      : op_(std::move(op)), keep_(op_ ? std::move(keep) : nullptr) {}

 private:
  void wait_quietly() noexcept {
    try {
      wait();
    } catch (...) {
    }
  }
  std::shared_ptr<collectives::PendingOp> op_;
  std::shared_ptr<void> keep_;  // what the operation uses (the reduction's function object)
};

namespace detail {

/// A type-erased elementwise combination `acc[i] = op(acc[i], in[i])` for i < count, and the
/// same into a third buffer, `out[i] = op(a[i], b[i])` (`out` overlapping neither a nor b).
struct Combiner {
  void (*fn)(const void* op, void* acc, const void* in, std::size_t count);
  const void* op;
  std::size_t elem_bytes;
  std::uint32_t op_id;  // same operation and element type => same id (mismatch detection)
  void (*fn_into)(const void* op, void* out, const void* a, const void* b, std::size_t count) = nullptr;
};

// The elementwise loop, written so that g++ vectorises it at -O2 as well as -O3 for arithmetic
// types with std::plus<>, cohort::min, ...: `__restrict` parameters (acc and in never overlap:
// no aliasing check), and blocks of a fixed 64 bytes (-O2's very cheap cost model vectorises a
// loop only when no scalar remainder is needed; the tail is done separately).
template <class T, class Op>
inline void combine_loop(T* __restrict a, const T* __restrict b, std::size_t count, const Op& f) {
  constexpr std::size_t kBlock = sizeof(T) < 64 ? 64 / sizeof(T) : 1;
  std::size_t i = 0;
  for (; i + kBlock <= count; i += kBlock) {
    for (std::size_t j = 0; j < kBlock; ++j) a[i + j] = f(a[i + j], b[i + j]);
  }
  for (; i < count; ++i) a[i] = f(a[i], b[i]);
}

template <class T, class Op>
void combine_elements(const void* op, void* acc, const void* in, std::size_t count) {
  combine_loop(static_cast<T*>(acc), static_cast<const T*>(in), count, *static_cast<const Op*>(op));
}

/// out[i] = f(a[i], b[i]): one pass instead of a copy and a combine (out overlaps neither).
template <class T, class Op>
inline void combine_loop_into(T* __restrict out, const T* __restrict a, const T* __restrict b,
                              std::size_t count, const Op& f) {
  constexpr std::size_t kBlock = sizeof(T) < 64 ? 64 / sizeof(T) : 1;
  std::size_t i = 0;
  for (; i + kBlock <= count; i += kBlock) {
    for (std::size_t j = 0; j < kBlock; ++j) out[i + j] = f(a[i + j], b[i + j]);
  }
  for (; i < count; ++i) out[i] = f(a[i], b[i]);
}

template <class T, class Op>
void combine_elements_into(const void* op, void* out, const void* a, const void* b,
                           std::size_t count) {
  combine_loop_into(static_cast<T*>(out), static_cast<const T*>(a), static_cast<const T*>(b),
                    count, *static_cast<const Op*>(op));
}

inline std::uint32_t type_id_hash(const char* s) noexcept {
  std::uint32_t h = 2166136261u;
  for (; *s != 0; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 16777619u;
  return h;
}

template <class T, class Op>
Combiner make_combiner(const Op& op) {
  // Hashing the type names took ~100 instructions per call: once per instantiation instead.
  static const std::uint32_t id = type_id_hash(typeid(Op).name()) * 31u + type_id_hash(typeid(T).name());
  return Combiner{&combine_elements<T, Op>, &op, sizeof(T), id, &combine_elements_into<T, Op>};
}

// Type-erased entry points (runtime/collectives). Byte counts; `counts` arrays have size()
// entries; nullptr counts mean "every block is `bytes`".
void collective_barrier(CommunicatorImpl& c);
void collective_broadcast(CommunicatorImpl& c, void* data, std::size_t bytes, int root);
void collective_reduce(CommunicatorImpl& c, const void* in, void* out, std::size_t bytes,
                       const Combiner& op, int root);
void collective_allreduce(CommunicatorImpl& c, const void* in, void* out, std::size_t bytes,
                          const Combiner& op);
void collective_scan(CommunicatorImpl& c, const void* in, void* out, std::size_t bytes,
                     const Combiner& op, bool exclusive);
void collective_reduce_scatter(CommunicatorImpl& c, const void* in, void* out,
                               std::size_t block_bytes, const Combiner& op);
void collective_gather(CommunicatorImpl& c, const void* in, std::size_t bytes, void* out,
                       const std::size_t* counts, int root);
void collective_scatter(CommunicatorImpl& c, const void* in, const std::size_t* counts, void* out,
                        std::size_t bytes, int root, bool variant);
void collective_allgather(CommunicatorImpl& c, const void* in, std::size_t bytes, void* out,
                          const std::size_t* counts);
void collective_alltoall(CommunicatorImpl& c, const void* in, const std::size_t* send_counts,
                         void* out, const std::size_t* recv_counts, std::size_t block_bytes);
std::shared_ptr<CommunicatorImpl> collective_split(CommunicatorImpl& c, int color, int key);
std::shared_ptr<CommunicatorImpl> collective_dup(CommunicatorImpl& c);
std::shared_ptr<collectives::PendingOp> collective_ibarrier(CommunicatorImpl& c);
std::shared_ptr<collectives::PendingOp> collective_ibroadcast(CommunicatorImpl& c, void* data,
                                                              std::size_t bytes, int root);
std::shared_ptr<collectives::PendingOp> collective_iallreduce(CommunicatorImpl& c, const void* in,
                                                              void* out, std::size_t bytes,
                                                              const Combiner& op);
[[noreturn]] void collective_bad_argument(CommunicatorImpl& c, const char* op,
                                          const std::string& what);

template <class R>
std::size_t bytes_of(const R& r) {
  return std::ranges::size(r) * sizeof(range_element_t<R>);
}
template <class T>
std::vector<std::size_t> counts_in_bytes(std::span<const std::size_t> counts) {
  std::vector<std::size_t> b(counts.begin(), counts.end());
  for (auto& x : b) x *= sizeof(T);
  return b;
}

}  // namespace detail

inline void Communicator::barrier() { detail::collective_barrier(impl()); }

template <detail::CollectiveValue T>
void Communicator::broadcast(T& value, int root) {
  detail::collective_broadcast(impl(), &value, sizeof(T), root);
}

template <detail::MutableCollectiveBuffer R>
void Communicator::broadcast(R&& data, int root) {
  detail::collective_broadcast(impl(), std::ranges::data(data), detail::bytes_of(data), root);
}

template <class T>
  requires std::is_trivially_copyable_v<T>
void Communicator::broadcast(std::vector<T>& data, int root) {
  std::uint64_t n = data.size();
  broadcast(n, root);
  if (rank() != root) data.resize(static_cast<std::size_t>(n));
  detail::collective_broadcast(impl(), data.data(), data.size() * sizeof(T), root);
}

inline void Communicator::broadcast(std::string& data, int root) {
  std::uint64_t n = data.size();
  broadcast(n, root);
  if (rank() != root) data.resize(static_cast<std::size_t>(n));
  detail::collective_broadcast(impl(), data.data(), data.size(), root);
}

namespace detail {

/// The bytes a serialized collective value travels as (raw containers: their elements).
template <class T>
std::vector<std::byte> collective_encode(const T& value) {
  check_transmittable<T>();
  std::vector<std::byte> out;
  if constexpr (format_of<T> == MessageFormat::raw) {
    auto bytes = std::as_bytes(std::span(std::ranges::data(value), std::ranges::size(value)));
    out.assign(bytes.begin(), bytes.end());
  } else {
    encode(value, out);
  }
  return out;
}

template <class T>
void collective_decode(CommunicatorImpl& c, const char* op, std::span<const std::byte> bytes, T& value) {
  if constexpr (format_of<T> == MessageFormat::raw) {
    using E = std::ranges::range_value_t<T>;
    if (bytes.size() % sizeof(E) != 0) {
      collective_bad_argument(c, op, "received a payload that is not a whole number of elements");
    }
    value.resize(bytes.size() / sizeof(E));
    copy_bytes(value.data(), bytes.data(), bytes.size());
  } else {
    try {
      decode(bytes, value);
    } catch (const std::exception& e) {
      throw DeserializeError(std::string("cohort: ") + op + ": could not decode a " +
                             std::to_string(bytes.size()) + "-byte payload: " + e.what());
    }
  }
}

}  // namespace detail

template <detail::SerializedCollectiveValue T>
void Communicator::broadcast(T& value, int root) {
  std::vector<std::byte> bytes;
  if (rank() == root) bytes = detail::collective_encode(value);
  broadcast(bytes, root);
  if (rank() != root) detail::collective_decode(impl(), "broadcast", bytes, value);
}

template <detail::SerializedCollectiveValue T>
std::vector<T> Communicator::gather(const T& value, int root) {
  std::vector<std::byte> mine = detail::collective_encode(value);
  std::vector<std::uint64_t> sizes = gather(static_cast<std::uint64_t>(mine.size()), root);
  std::vector<std::size_t> counts(sizes.begin(), sizes.end());
  std::size_t total = 0;
  for (std::size_t c : counts) total += c;
  std::vector<std::byte> all(total);
  gatherv(mine, all, counts, root);
  std::vector<T> out;
  if (rank() == root) {
    out.resize(counts.size());
    std::size_t offset = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      detail::collective_decode(impl(), "gather", std::span<const std::byte>(all).subspan(offset, counts[r]), out[r]);
      offset += counts[r];
    }
  }
  return out;
}

template <detail::SerializedCollectiveValue T>
std::vector<T> Communicator::allgather(const T& value) {
  std::vector<std::byte> mine = detail::collective_encode(value);
  std::vector<std::uint64_t> sizes = allgather(static_cast<std::uint64_t>(mine.size()));
  std::vector<std::size_t> counts(sizes.begin(), sizes.end());
  std::size_t total = 0;
  for (std::size_t c : counts) total += c;
  std::vector<std::byte> all(total);
  allgatherv(mine, all, counts);
  std::vector<T> out(counts.size());
  std::size_t offset = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    detail::collective_decode(impl(), "allgather", std::span<const std::byte>(all).subspan(offset, counts[r]), out[r]);
    offset += counts[r];
  }
  return out;
}

template <detail::CollectiveValue T, class Op>
T Communicator::reduce(const T& value, Op op, int root) {
  T out = value;
  detail::collective_reduce(impl(), &value, &out, sizeof(T), detail::make_combiner<T>(op), root);
  return out;
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
void Communicator::reduce(const In& in, Out&& out, Op op, int root) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "reduce: in and out element types differ");
  if (rank() == root && std::ranges::size(out) != std::ranges::size(in)) {
    detail::collective_bad_argument(impl(), "reduce", "out.size() must equal in.size() at the root");
  }
  detail::collective_reduce(impl(), std::ranges::data(in), rank() == root ? std::ranges::data(out) : nullptr,
                            detail::bytes_of(in), detail::make_combiner<T>(op), root);
}

template <detail::MutableCollectiveBuffer R, class Op>
void Communicator::reduce(R&& inout, Op op, int root) {
  using T = detail::range_element_t<R>;
  detail::collective_reduce(impl(), std::ranges::data(inout), std::ranges::data(inout),
                            detail::bytes_of(inout), detail::make_combiner<T>(op), root);
}

template <detail::CollectiveValue T, class Op>
T Communicator::allreduce(const T& value, Op op) {
  T out = value;
  detail::collective_allreduce(impl(), &value, &out, sizeof(T), detail::make_combiner<T>(op));
  return out;
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
void Communicator::allreduce(const In& in, Out&& out, Op op) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "allreduce: in and out element types differ");
  if (std::ranges::size(out) != std::ranges::size(in)) {
    detail::collective_bad_argument(impl(), "allreduce", "out.size() must equal in.size()");
  }
  detail::collective_allreduce(impl(), std::ranges::data(in), std::ranges::data(out),
                               detail::bytes_of(in), detail::make_combiner<T>(op));
}

template <detail::MutableCollectiveBuffer R, class Op>
void Communicator::allreduce(R&& inout, Op op) {
  using T = detail::range_element_t<R>;
  detail::collective_allreduce(impl(), std::ranges::data(inout), std::ranges::data(inout),
                               detail::bytes_of(inout), detail::make_combiner<T>(op));
}

template <detail::CollectiveValue T, class Op>
T Communicator::scan(const T& value, Op op) {
  T out = value;
  detail::collective_scan(impl(), &value, &out, sizeof(T), detail::make_combiner<T>(op), false);
  return out;
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
void Communicator::scan(const In& in, Out&& out, Op op) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "scan: in and out element types differ");
  if (std::ranges::size(out) != std::ranges::size(in)) {
    detail::collective_bad_argument(impl(), "scan", "out.size() must equal in.size()");
  }
  detail::collective_scan(impl(), std::ranges::data(in), std::ranges::data(out), detail::bytes_of(in),
                          detail::make_combiner<T>(op), false);
}

template <detail::CollectiveValue T, class Op>
T Communicator::exscan(const T& value, Op op) {
  T out = value;
  detail::collective_scan(impl(), &value, &out, sizeof(T), detail::make_combiner<T>(op), true);
  return out;
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
void Communicator::exscan(const In& in, Out&& out, Op op) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "exscan: in and out element types differ");
  if (std::ranges::size(out) != std::ranges::size(in)) {
    detail::collective_bad_argument(impl(), "exscan", "out.size() must equal in.size()");
  }
  detail::collective_scan(impl(), std::ranges::data(in), std::ranges::data(out), detail::bytes_of(in),
                          detail::make_combiner<T>(op), true);
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
void Communicator::reduce_scatter(const In& in, Out&& out, Op op) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "reduce_scatter: in and out element types differ");
  if (std::ranges::size(in) != std::ranges::size(out) * static_cast<std::size_t>(size())) {
    detail::collective_bad_argument(impl(), "reduce_scatter", "in.size() must equal size() * out.size()");
  }
  detail::collective_reduce_scatter(impl(), std::ranges::data(in), std::ranges::data(out),
                                    detail::bytes_of(out), detail::make_combiner<T>(op));
}

template <detail::CollectiveValue T>
std::vector<T> Communicator::gather(const T& value, int root) {
  std::vector<T> out(rank() == root ? static_cast<std::size_t>(size()) : 0);
  detail::collective_gather(impl(), &value, sizeof(T), out.data(), nullptr, root);
  return out;
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
void Communicator::gather(const In& in, Out&& out, int root) {
  static_assert(std::is_same_v<detail::range_element_t<In>, detail::range_element_t<Out>>,
                "gather: in and out element types differ");
  if (rank() == root && std::ranges::size(out) != std::ranges::size(in) * static_cast<std::size_t>(size())) {
    detail::collective_bad_argument(impl(), "gather", "out.size() must equal size() * in.size() at the root");
  }
  detail::collective_gather(impl(), std::ranges::data(in), detail::bytes_of(in),
                            rank() == root ? std::ranges::data(out) : nullptr, nullptr, root);
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
void Communicator::gatherv(const In& in, Out&& out, std::span<const std::size_t> counts, int root) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "gatherv: in and out element types differ");
  std::vector<std::size_t> bytes;
  if (rank() == root) {
    std::size_t total = 0;
    for (std::size_t c : counts) total += c;
    if (counts.size() != static_cast<std::size_t>(size()) || std::ranges::size(out) != total) {
      detail::collective_bad_argument(impl(), "gatherv",
                                      "the root needs size() counts and out.size() == their sum");
    }
    bytes = detail::counts_in_bytes<T>(counts);
  }
  detail::collective_gather(impl(), std::ranges::data(in), detail::bytes_of(in),
                            rank() == root ? std::ranges::data(out) : nullptr,
                            rank() == root ? bytes.data() : nullptr, root);
}

template <detail::CollectiveBuffer In>
detail::range_element_t<In> Communicator::scatter(const In& in, int root) {
  using T = detail::range_element_t<In>;
  if (rank() == root && std::ranges::size(in) != static_cast<std::size_t>(size())) {
    detail::collective_bad_argument(impl(), "scatter", "in.size() must equal size() at the root");
  }
  T out{};
  detail::collective_scatter(impl(), rank() == root ? std::ranges::data(in) : nullptr, nullptr, &out,
                             sizeof(T), root, false);
  return out;
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
void Communicator::scatter(const In& in, Out&& out, int root) {
  static_assert(std::is_same_v<detail::range_element_t<In>, detail::range_element_t<Out>>,
                "scatter: in and out element types differ");
  if (rank() == root && std::ranges::size(in) != std::ranges::size(out) * static_cast<std::size_t>(size())) {
    detail::collective_bad_argument(impl(), "scatter", "in.size() must equal size() * out.size() at the root");
  }
  detail::collective_scatter(impl(), rank() == root ? std::ranges::data(in) : nullptr, nullptr,
                             std::ranges::data(out), detail::bytes_of(out), root, false);
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
void Communicator::scatterv(const In& in, std::span<const std::size_t> counts, Out&& out, int root) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "scatterv: in and out element types differ");
  std::vector<std::size_t> bytes;
  if (rank() == root) {
    std::size_t total = 0;
    for (std::size_t c : counts) total += c;
    if (counts.size() != static_cast<std::size_t>(size()) || std::ranges::size(in) != total) {
      detail::collective_bad_argument(impl(), "scatterv",
                                      "the root needs size() counts and in.size() == their sum");
    }
    bytes = detail::counts_in_bytes<T>(counts);
  }
  detail::collective_scatter(impl(), rank() == root ? std::ranges::data(in) : nullptr,
                             rank() == root ? bytes.data() : nullptr, std::ranges::data(out),
                             detail::bytes_of(out), root, true);
}

template <detail::CollectiveValue T>
std::vector<T> Communicator::allgather(const T& value) {
  std::vector<T> out(static_cast<std::size_t>(size()));
  detail::collective_allgather(impl(), &value, sizeof(T), out.data(), nullptr);
  return out;
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
void Communicator::allgather(const In& in, Out&& out) {
  static_assert(std::is_same_v<detail::range_element_t<In>, detail::range_element_t<Out>>,
                "allgather: in and out element types differ");
  if (std::ranges::size(out) != std::ranges::size(in) * static_cast<std::size_t>(size())) {
    detail::collective_bad_argument(impl(), "allgather", "out.size() must equal size() * in.size()");
  }
  detail::collective_allgather(impl(), std::ranges::data(in), detail::bytes_of(in), std::ranges::data(out),
                               nullptr);
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
void Communicator::allgatherv(const In& in, Out&& out, std::span<const std::size_t> counts) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "allgatherv: in and out element types differ");
  std::size_t total = 0;
  for (std::size_t c : counts) total += c;
  if (counts.size() != static_cast<std::size_t>(size()) || std::ranges::size(out) != total) {
    detail::collective_bad_argument(impl(), "allgatherv", "needs size() counts and out.size() == their sum");
  }
  auto bytes = detail::counts_in_bytes<T>(counts);
  detail::collective_allgather(impl(), std::ranges::data(in), detail::bytes_of(in), std::ranges::data(out),
                               bytes.data());
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
void Communicator::alltoall(const In& in, Out&& out) {
  static_assert(std::is_same_v<detail::range_element_t<In>, detail::range_element_t<Out>>,
                "alltoall: in and out element types differ");
  auto n = static_cast<std::size_t>(size());
  if (std::ranges::size(in) != std::ranges::size(out) || std::ranges::size(in) % n != 0) {
    detail::collective_bad_argument(impl(), "alltoall",
                                    "in.size() must equal out.size() and be a multiple of size()");
  }
  detail::collective_alltoall(impl(), std::ranges::data(in), nullptr, std::ranges::data(out), nullptr,
                              detail::bytes_of(in) / n);
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
void Communicator::alltoallv(const In& in, std::span<const std::size_t> send_counts, Out&& out,
                             std::span<const std::size_t> recv_counts) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "alltoallv: in and out element types differ");
  std::size_t sent = 0, received = 0;
  for (std::size_t c : send_counts) sent += c;
  for (std::size_t c : recv_counts) received += c;
  auto n = static_cast<std::size_t>(size());
  if (send_counts.size() != n || recv_counts.size() != n || std::ranges::size(in) != sent ||
      std::ranges::size(out) != received) {
    detail::collective_bad_argument(impl(), "alltoallv",
                                    "needs size() send and receive counts summing to in.size() and out.size()");
  }
  auto sb = detail::counts_in_bytes<T>(send_counts);
  auto rb = detail::counts_in_bytes<T>(recv_counts);
  detail::collective_alltoall(impl(), std::ranges::data(in), sb.data(), std::ranges::data(out), rb.data(), 0);
}

inline CollectiveRequest Communicator::ibarrier() {
  return CollectiveRequest(detail::collective_ibarrier(impl()), nullptr);
}

template <detail::CollectiveValue T>
CollectiveRequest Communicator::ibroadcast(T& value, int root) {
  return CollectiveRequest(detail::collective_ibroadcast(impl(), &value, sizeof(T), root), nullptr);
}

template <detail::MutableCollectiveBuffer R>
CollectiveRequest Communicator::ibroadcast(R&& data, int root) {
  return CollectiveRequest(
      detail::collective_ibroadcast(impl(), std::ranges::data(data), detail::bytes_of(data), root),
      nullptr);
}

template <detail::CollectiveValue T, class Op>
CollectiveRequest Communicator::iallreduce(const T& value, T& result, Op op) {
  auto keep = std::make_shared<Op>(std::move(op));
  return CollectiveRequest(detail::collective_iallreduce(impl(), &value, &result, sizeof(T),
                                                         detail::make_combiner<T>(*keep)),
                           keep);
}

template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
CollectiveRequest Communicator::iallreduce(const In& in, Out&& out, Op op) {
  using T = detail::range_element_t<In>;
  static_assert(std::is_same_v<T, detail::range_element_t<Out>>, "iallreduce: in and out element types differ");
  if (std::ranges::size(out) != std::ranges::size(in)) {
    detail::collective_bad_argument(impl(), "iallreduce", "out.size() must equal in.size()");
  }
  auto keep = std::make_shared<Op>(std::move(op));
  return CollectiveRequest(detail::collective_iallreduce(impl(), std::ranges::data(in), std::ranges::data(out),
                                                         detail::bytes_of(in), detail::make_combiner<T>(*keep)),
                           keep);
}

inline std::optional<Communicator> Communicator::split(int color, int key) {
  auto impl_ptr = detail::collective_split(impl(), color, key);
  if (!impl_ptr) return std::nullopt;
  return Communicator(std::move(impl_ptr));
}

inline Communicator Communicator::dup() { return Communicator(detail::collective_dup(impl())); }

}  // namespace cohort
