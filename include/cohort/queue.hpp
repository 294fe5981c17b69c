/// @file cohort/queue.hpp
/// `Queue<T>`: a bounded multi-producer multi-consumer queue between ranks, like Python's
/// `multiprocessing.Queue` / `JoinableQueue`, living in the job's shared memory.
///
/// Example:
/// @code
///   cohort::Environment env(argc, argv);
///   auto& world = env.world();
///   cohort::Queue<std::string> q(world, /*maxsize=*/1024);  // collective: every rank, same order
///   if (world.rank() == 0) {
///     for (int i = 0; i < 100; ++i) q.put("job " + std::to_string(i));  // blocks while full
///     q.close();                                  // no more puts; consumers drain, then see the end
///   } else {
///     while (std::optional<std::string> job = q.next()) {   // nullopt: closed and drained
///       std::puts(job->c_str());
///       q.task_done();
///     }
///   }
///   // Timeouts and non-blocking forms:
///   //   q.try_put(v) -> bool          q.try_get() -> std::optional<T>
///   //   q.put(v, 10ms) throws cohort::QueueFull     q.get(10ms) throws cohort::QueueEmpty
///   //   q.get() throws cohort::QueueClosed once the queue is closed and drained
///   //   q.join(1s) waits until every item put has been matched by a task_done()
/// @endcode
///
/// Items may be any type Cohort can send (cohort/serialization.hpp): trivially copyable values,
/// std::string, std::vector of trivially copyable values (copied as bytes), and cereal or
/// Boost.Serialization types (encoded once by the producer, decoded by the consumer). Items up to
/// 48 bytes travel inline in the ring's cache-line slots; larger ones in chunks of a byte pool
/// (QueueOptions::pool_bytes, default 1 MiB per queue).
///
/// Guarantees: every item put is got exactly once (unless a consumer dies while getting it: that
/// item is lost, counted by lost(), and the queue goes on working for the others); items of one
/// producer are got in the order it put them; a put blocks while `maxsize` items are queued.
/// The fast path takes no lock and makes no system call: a put or get is a compare-and-swap on
/// the queue's position and a copy into/out of one slot; a futex wake is issued only when some
/// rank is asleep on the queue. Waits spin briefly, then sleep.
///
/// Blocking forever: when every other rank of the communicator has died or exited, a put() that
/// waits for space, a get()/next() that waits for an item, and a join(), all without a timeout,
/// throw cohort::PeerLost instead of hanging (checked every 50 ms while asleep; a rank alone on
/// its communicator simply blocks, like Python). With a timeout they just time out.
///
/// Who may call: any member of the communicator (and any thread of it), concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cohort/communicator.hpp"
#include "cohort/errors.hpp"
#include "cohort/serialization.hpp"

namespace cohort {

/// put() on a closed queue, or get() on a queue that is closed and drained.
class QueueClosed : public Error {
 public:
  using Error::Error;
};

/// put(value, timeout) ran out of time while the queue stayed full (Python's queue.Full).
class QueueFull : public TimeoutError {
 public:
  using TimeoutError::TimeoutError;
};

/// get(timeout) ran out of time while the queue stayed empty (Python's queue.Empty).
class QueueEmpty : public TimeoutError {
 public:
  using TimeoutError::TimeoutError;
};

/// Sizes of a queue; every rank must pass the same.
struct QueueOptions {
  /// Items the queue holds before put() blocks (>= 1).
  std::size_t maxsize = 1024;
  /// Bytes of the pool for items larger than 48 bytes (rounded up to 1 KiB chunks). An item must
  /// fit in it: a bigger one is a cohort::InvalidArgument.
  std::size_t pool_bytes = std::size_t{1} << 20;
};

namespace detail {

struct QueueShared;

/// Where get() copies a payload: `prepare(ctx, bytes)` returns a buffer of `bytes` bytes, or
/// nullptr when the payload cannot be received as the queue's type (the item is then dropped).
/// For 0 bytes it returns any non-null pointer, which is not written.
struct QueueSink {
  std::byte* (*prepare)(void* ctx, std::size_t bytes);
  void* ctx;
};

enum class QueueResult : std::uint8_t { ok, timeout, closed, type_mismatch };

/// The untyped queue over bytes (runtime/patterns/queue.cpp). Timeouts: negative = no limit,
/// zero = do not wait.
class QueueCore {
 public:
  QueueCore(Communicator& comm, const QueueOptions& options);

  /// ok, timeout (still full) or closed.
  QueueResult put(std::span<const std::byte> payload, std::chrono::nanoseconds timeout);
  /// ok, timeout (still empty), closed (closed and drained) or type_mismatch.
  QueueResult get(const QueueSink& sink, std::chrono::nanoseconds timeout);
  void close();
  [[nodiscard]] bool closed() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] std::size_t maxsize() const noexcept { return maxsize_; }
  [[nodiscard]] std::uint64_t lost() const noexcept;
  void task_done();
  bool join(std::chrono::nanoseconds timeout);
  [[nodiscard]] int self() const noexcept { return self_; }

 private:
  QueueShared* shared_;
  Communicator comm_;
  std::size_t maxsize_;
  int rank_;  // in comm_
  int self_;  // world rank
};

template <class T>
std::byte* queue_prepare_value(void* ctx, std::size_t bytes) {
  return bytes == sizeof(T) ? reinterpret_cast<std::byte*>(ctx) : nullptr;
}

template <class C>
std::byte* queue_prepare_container(void* ctx, std::size_t bytes) {
  using V = typename C::value_type;
  if (bytes % sizeof(V) != 0) return nullptr;
  auto& c = *static_cast<C*>(ctx);
  c.resize(bytes / sizeof(V));
  // An empty container may have no storage: any non-null pointer says "accepted".
  return bytes == 0 ? static_cast<std::byte*>(ctx) : reinterpret_cast<std::byte*>(c.data());
}

inline std::byte* queue_prepare_bytes(void* ctx, std::size_t bytes) {
  auto& v = *static_cast<std::vector<std::byte>*>(ctx);
  v.resize(bytes);
  return bytes == 0 ? static_cast<std::byte*>(ctx) : v.data();
}

inline std::vector<std::byte>& queue_scratch() {
  thread_local std::vector<std::byte> scratch;
  return scratch;
}

}  // namespace detail

/// A bounded MPMC queue of `T` between the ranks of a communicator (see the file comment).
template <class T>
class Queue {
  static_assert(Transmittable<T>,
                "cohort::Queue<T>: T must be trivially copyable, a contiguous container of "
                "trivially copyable values, or have a cereal/Boost serialize()");
  static_assert(std::is_default_constructible_v<T>, "cohort::Queue<T>: T must be default-constructible");

 public:
  /// Collective over `comm`: every member creates its queues in the same order.
  explicit Queue(Communicator& comm, std::size_t maxsize = 1024)
      : Queue(comm, QueueOptions{maxsize, QueueOptions{}.pool_bytes}) {}
  Queue(Communicator& comm, const QueueOptions& options) : core_(comm, options) {}

  /// Blocks while the queue is full. Throws QueueClosed after close().
  void put(const T& value) { (void)put_for(value, std::chrono::nanoseconds(-1)); }
  /// Blocks at most `timeout`; throws QueueFull if the queue stayed full, QueueClosed after close().
  template <class Rep, class Period>
  void put(const T& value, const std::chrono::duration<Rep, Period>& timeout) {
    if (!put_for(value, to_ns(timeout))) {
      throw QueueFull(message("put", "the queue stayed full (maxsize " +
                                         std::to_string(core_.maxsize()) + ")"));
    }
  }
  /// Puts if there is room now (or within `timeout`); false if the queue is full.
  /// Throws QueueClosed after close().
  template <class Rep = long, class Period = std::ratio<1>>
  [[nodiscard]] bool try_put(const T& value,
                             const std::chrono::duration<Rep, Period>& timeout = std::chrono::seconds(0)) {
    return put_for(value, to_ns(timeout));
  }

  /// Blocks until an item arrives. Throws QueueClosed when the queue is closed and drained.
  T get() {
    T out{};
    finish(get_into(out, std::chrono::nanoseconds(-1)), "get");
    return out;
  }
  /// Blocks at most `timeout`; throws QueueEmpty if nothing came, QueueClosed when closed and
  /// drained.
  template <class Rep, class Period>
  T get(const std::chrono::duration<Rep, Period>& timeout) {
    T out{};
    finish(get_into(out, to_ns(timeout)), "get");
    return out;
  }
  /// An item if one is there now (or arrives within `timeout`), else std::nullopt (empty, or
  /// closed and drained: see drained()).
  template <class Rep = long, class Period = std::ratio<1>>
  std::optional<T> try_get(const std::chrono::duration<Rep, Period>& timeout = std::chrono::seconds(0)) {
    T out{};
    auto r = get_into(out, to_ns(timeout));
    if (r == detail::QueueResult::ok) return out;
    if (r == detail::QueueResult::type_mismatch) finish(r, "try_get");
    return std::nullopt;
  }
  /// The consumer loop: blocks until an item arrives (returned) or the queue is closed and
  /// drained (std::nullopt). `while (auto item = q.next()) { ... }`
  std::optional<T> next() {
    T out{};
    auto r = get_into(out, std::chrono::nanoseconds(-1));
    if (r == detail::QueueResult::closed) return std::nullopt;
    finish(r, "next");
    return out;
  }

  /// No more puts (they throw QueueClosed); consumers get what is left, then see the end.
  /// Any rank may close; closing twice is harmless.
  void close() { core_.close(); }
  [[nodiscard]] bool closed() const noexcept { return core_.closed(); }
  /// Closed and empty: no item will ever come.
  [[nodiscard]] bool drained() const noexcept { return core_.closed() && core_.size() == 0; }

  /// Marks one got item as processed (JoinableQueue). Throws cohort::Error if called more times
  /// than items were put.
  void task_done() { core_.task_done(); }
  /// Blocks until every item put has been marked task_done().
  void join() { (void)core_.join(std::chrono::nanoseconds(-1)); }
  /// As join(), at most `timeout`; false if items are still unfinished.
  template <class Rep, class Period>
  [[nodiscard]] bool join(const std::chrono::duration<Rep, Period>& timeout) {
    return core_.join(to_ns(timeout));
  }

  /// Items queued now (approximate while others put and get), like qsize().
  [[nodiscard]] std::size_t size() const noexcept { return core_.size(); }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] bool full() const noexcept { return size() >= maxsize(); }
  [[nodiscard]] std::size_t maxsize() const noexcept { return core_.maxsize(); }
  /// Items dropped because the consumer getting them (or the producer putting them) died.
  [[nodiscard]] std::uint64_t lost() const noexcept { return core_.lost(); }

 private:
  template <class Rep, class Period>
  static std::chrono::nanoseconds to_ns(const std::chrono::duration<Rep, Period>& d) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d);
    return ns.count() < 0 ? std::chrono::nanoseconds(0) : ns;
  }

  std::string message(const char* op, const std::string& what) const {
    return "rank " + std::to_string(core_.self()) + ": Queue::" + op + ": " + what;
  }

  bool put_for(const T& value, std::chrono::nanoseconds timeout) {
    std::span<const std::byte> bytes;
    if constexpr (format_of<T> == MessageFormat::raw) {
      if constexpr (detail::RawContainer<T>) {
        bytes = std::as_bytes(std::span(value.data(), value.size()));
      } else {
        bytes = {reinterpret_cast<const std::byte*>(std::addressof(value)), sizeof(T)};
      }
    } else {
      auto& scratch = detail::queue_scratch();
      detail::encode(value, scratch);
      bytes = scratch;
    }
    auto r = core_.put(bytes, timeout);
    if (r == detail::QueueResult::closed) {
      throw QueueClosed(message("put", "the queue is closed; nothing can be put after close()"));
    }
    return r == detail::QueueResult::ok;
  }

  detail::QueueResult get_into(T& out, std::chrono::nanoseconds timeout) {
    if constexpr (format_of<T> == MessageFormat::raw) {
      if constexpr (detail::RawContainer<T>) {
        return core_.get({&detail::queue_prepare_container<T>, &out}, timeout);
      } else {
        return core_.get({&detail::queue_prepare_value<T>, &out}, timeout);
      }
    } else {
      auto& scratch = detail::queue_scratch();
      auto r = core_.get({&detail::queue_prepare_bytes, &scratch}, timeout);
      if (r == detail::QueueResult::ok) {
        try {
          detail::decode(std::span<const std::byte>(scratch), out);
        } catch (const std::exception& e) {
          throw DeserializeError(message("get", std::string("cannot decode the item: ") + e.what() +
                                                    " (do all ranks use the same Queue<T>?)"));
        }
      }
      return r;
    }
  }

  void finish(detail::QueueResult r, const char* op) const {
    switch (r) {
      case detail::QueueResult::ok: return;
      case detail::QueueResult::timeout:
        throw QueueEmpty(message(op, "the queue stayed empty"));
      case detail::QueueResult::closed:
        throw QueueClosed(message(op, "the queue is closed and drained; no item will come"));
      case detail::QueueResult::type_mismatch:
        throw TypeMismatch(message(op, "an item's size does not fit the queue's type (the item "
                                       "was dropped; do all ranks use the same Queue<T>?)"));
    }
  }

  detail::QueueCore core_;
};

}  // namespace cohort
