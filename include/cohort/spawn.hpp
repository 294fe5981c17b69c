/// @file cohort/spawn.hpp
/// Ranks without the launcher: run a callable in N forked processes from an ordinary program,
/// the way Python's `multiprocessing.Process` does, each rank with a full communicator.
///
/// Example:
/// @code
///   #include <cohort/spawn.hpp>
///   // N ranks that talk to each other: results come back in rank order.
///   cohort::Job job = cohort::spawn(4, [](cohort::Communicator& world) {
///     return world.rank() * world.rank();
///   });
///   std::vector<int> squares = job.results<int>();      // joins; {0, 1, 4, 9}
///
///   // One process, started and joined like multiprocessing.Process.
///   cohort::Process p([] { std::puts("hello from a child"); });
///   p.start();
///   p.join(std::chrono::seconds(5));
///   std::optional<int> code = p.exit_code();            // 0; -9 if it was SIGKILLed
/// @endcode
///
/// The children are forked (no exec): they start with a copy of the parent's memory, so the
/// callable and everything it captures are simply there. They share a fresh job segment (memfd):
/// point-to-point, collectives, shared arrays and locks work among them exactly as under
/// cohortrun. They are pinned one per core as cohortrun pins ranks while they fit
/// (SpawnOptions::bind), die with the parent (PR_SET_PDEATHSIG), and when one dies the others'
/// blocked calls raise cohort::PeerLost.
/// A callable may take `cohort::Communicator&` or nothing, and return void or any value Cohort can
/// send (raw bytes, cereal or Boost.Serialization: cohort/serialization.hpp).
/// An exception escaping the callable ends that rank with exit code 1; results() then throws
/// cohort::SpawnError naming each failed rank and its message.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "cohort/communicator.hpp"
#include "cohort/detail/copy.hpp"
#include "cohort/errors.hpp"
#include "cohort/serialization.hpp"

namespace cohort {

/// How spawn() starts its ranks.
struct SpawnOptions {
  /// Pin ranks one per core while they fit the cores this process may use, exactly as cohortrun
  /// places them (a single process is never pinned).
  bool bind = true;
  /// Bytes of the job's shared heap (SharedArray, locks, ...); committed only as used.
  std::size_t shared_heap_bytes = std::size_t{64} << 20;
};

/// One or more spawned ranks failed: exit code != 0, a signal, or an uncaught exception.
class SpawnError : public Error {
 public:
  using Error::Error;
};

namespace detail {
class JobState;

/// Where a child writes its result bytes (raw) or its error message.
class ResultSink {
 public:
  explicit ResultSink(int fd) noexcept : fd_(fd) {}
  void write_result(const void* data, std::size_t bytes);
  void write_error(const std::string& message);

 private:
  int fd_;
};

using RankBody = std::function<void(Communicator&, ResultSink&)>;

/// A value that can travel back to the parent: raw bytes or cereal/Boost (cohort/serialization.hpp).
template <class R>
concept SpawnResult = Transmittable<R> && !is_span<R>::value;

template <class R>
void put_result(ResultSink& sink, const R& r) {
  if constexpr (RawValue<R>) {
    sink.write_result(&r, sizeof(R));
  } else if constexpr (RawContainer<R>) {
    sink.write_result(r.data(), r.size() * sizeof(typename R::value_type));
  } else {
    std::vector<std::byte> bytes;
    encode(r, bytes);
    sink.write_result(bytes.data(), bytes.size());
  }
}

template <class R>
R get_result(const std::vector<std::byte>& bytes, int rank) {
  if constexpr (RawValue<R>) {
    if (bytes.size() != sizeof(R)) {
      throw TypeMismatch("spawn: rank " + std::to_string(rank) + " returned " +
                         std::to_string(bytes.size()) + " bytes, the requested result type has " +
                         std::to_string(sizeof(R)));
    }
    R r;
    std::memcpy(&r, bytes.data(), sizeof(R));
    return r;
  } else if constexpr (RawContainer<R>) {
    using V = typename R::value_type;
    if (bytes.size() % sizeof(V) != 0) {
      throw TypeMismatch("spawn: rank " + std::to_string(rank) + " returned " +
                         std::to_string(bytes.size()) + " bytes, not a whole number of elements");
    }
    R r(bytes.size() / sizeof(V), V{});
    detail::copy_bytes(r.data(), bytes.data(), bytes.size());
    return r;
  } else {
    R r{};
    try {
      decode(std::span<const std::byte>(bytes), r);
    } catch (const std::exception& e) {
      throw DeserializeError("spawn: the result of rank " + std::to_string(rank) +
                             " could not be decoded as the requested type: " + e.what());
    }
    return r;
  }
}

/// Adapts a user callable (with or without a Communicator&, returning void or a SpawnResult).
template <class Fn>
RankBody make_body(Fn fn) {
  return [fn = std::move(fn)](Communicator& comm, ResultSink& sink) mutable {
    if constexpr (std::is_invocable_v<Fn&, Communicator&>) {
      using R = std::invoke_result_t<Fn&, Communicator&>;
      if constexpr (std::is_void_v<R>) {
        fn(comm);
      } else {
        static_assert(SpawnResult<R>,
                      "cohort::spawn: the callable's result must be something Cohort can send "
                      "(trivially copyable, a contiguous container of such, or cereal/Boost "
                      "serializable)");
        put_result(sink, fn(comm));
      }
    } else {
      static_assert(std::is_invocable_v<Fn&>,
                    "cohort::spawn: the callable must take (cohort::Communicator&) or nothing");
      using R = std::invoke_result_t<Fn&>;
      if constexpr (std::is_void_v<R>) {
        fn();
      } else {
        static_assert(SpawnResult<R>,
                      "cohort::spawn: the callable's result must be something Cohort can send "
                      "(trivially copyable, a contiguous container of such, or cereal/Boost "
                      "serializable)");
        put_result(sink, fn());
      }
    }
  };
}
}  // namespace detail

/// A handle on one spawned rank (like multiprocessing.Process after start()).
class ProcessHandle {
 public:
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] pid_t pid() const noexcept;
  [[nodiscard]] bool is_alive() const;
  /// nullopt while running; the exit code; -N if killed by signal N (Python's convention).
  [[nodiscard]] std::optional<int> exit_code() const;
  /// Waits for this rank to end, at most `timeout` (negative: no limit); true if it ended.
  bool join(std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) const;
  /// SIGTERM / SIGKILL (no effect once it has ended).
  void terminate() const;
  void kill() const;

  ProcessHandle(std::shared_ptr<detail::JobState> job, int rank) noexcept
      : job_(std::move(job)), rank_(rank) {}

 private:
  std::shared_ptr<detail::JobState> job_;
  int rank_;
};

/// N ranks started by spawn(). Destroying a Job waits for its ranks (join()).
class Job {
 public:
  Job(int ranks, detail::RankBody body, const SpawnOptions& options);
  Job(Job&&) noexcept = default;
  Job& operator=(Job&&) noexcept = default;
  ~Job();

  [[nodiscard]] int size() const noexcept;
  [[nodiscard]] ProcessHandle process(int rank) const { return ProcessHandle(state_, rank); }
  /// Waits for every rank, at most `timeout` (negative: no limit); true if all ended.
  bool join(std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1));
  /// Exit codes in rank order (nullopt for a rank still running; -N for signal N).
  [[nodiscard]] std::vector<std::optional<int>> exit_codes() const;
  /// SIGTERM to every rank still running.
  void terminate();
  /// Joins, then returns each rank's result in rank order; throws cohort::SpawnError when a rank
  /// failed (naming each failed rank, its exit code or signal, and its exception message).
  template <class R>
  std::vector<R> results() {
    join();
    check();
    std::vector<R> out;
    out.reserve(static_cast<std::size_t>(size()));
    for (int r = 0; r < size(); ++r) {
      if (!has_result(r)) {
        throw SpawnError("cohort::spawn: rank " + std::to_string(r) +
                         " exited without returning a result (did it call exit()?)");
      }
      out.push_back(detail::get_result<R>(result_bytes(r), r));
    }
    return out;
  }
  /// Waits for `rank`, then returns its result, whatever the other ranks did; throws
  /// cohort::SpawnError if that rank returned none (it failed, or called exit()).
  template <class R>
  R result(int rank) {
    (void)process(rank).join();
    if (!has_result(rank)) {
      throw SpawnError("cohort::spawn: rank " + std::to_string(rank) +
                       " ended without returning a result");
    }
    return detail::get_result<R>(result_bytes(rank), rank);
  }
  /// Joins, then throws cohort::SpawnError if any rank failed.
  void check();

 private:
  [[nodiscard]] const std::vector<std::byte>& result_bytes(int rank) const;
  [[nodiscard]] bool has_result(int rank) const;
  std::shared_ptr<detail::JobState> state_;
};

/// Starts `ranks` forked ranks running `fn` (see the file comment); returns at once.
template <class Fn>
Job spawn(int ranks, Fn fn, const SpawnOptions& options = {}) {
  return Job(ranks, detail::make_body(std::move(fn)), options);
}

/// One child process running `fn`, started by start() (like multiprocessing.Process).
class Process {
 public:
  template <class Fn>
  explicit Process(Fn fn, const SpawnOptions& options = {})
      : body_(detail::make_body(std::move(fn))), options_(options) {}

  /// Forks the child. Throws cohort::Error if already started.
  void start();
  bool join(std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1));
  [[nodiscard]] bool is_alive() const;
  [[nodiscard]] pid_t pid() const;
  [[nodiscard]] std::optional<int> exit_code() const;
  void terminate();
  void kill();

 private:
  [[nodiscard]] ProcessHandle handle() const;
  detail::RankBody body_;
  SpawnOptions options_;
  std::optional<Job> job_;
};

}  // namespace cohort
