/// @file cohort/pipe.hpp
/// `Pipe`: a channel between two ranks, like Python's `multiprocessing.Pipe()`: duplex (both ends
/// send and receive) or one-way (the first rank writes, the second reads).
///
/// Example:
/// @code
///   cohort::Environment env(argc, argv);
///   auto& world = env.world();
///   cohort::Pipe pipe(world, 0, 1);                  // collective over world; duplex
///   if (world.rank() == 0) {
///     pipe.send(std::string("ping"));
///     auto reply = pipe.recv<std::string>();         // "pong"
///     pipe.close();                                  // the other end's recv then throws PipeClosed
///   } else if (world.rank() == 1) {
///     auto msg = pipe.recv<std::string>();
///     pipe.send(std::string("pong"));
///     if (pipe.poll(std::chrono::seconds(1))) { ... }  // something (or the close) is waiting
///   }                                                // other ranks: pipe.active() is false
///
///   cohort::Pipe feed(world, 2, 3, cohort::PipeMode::one_way);  // rank 2 writes, rank 3 reads
/// @endcode
///
/// Values: anything Cohort can send (cohort/serialization.hpp): raw values and containers of them,
/// strings, cereal and Boost types; recv<T>() must name the type that was sent (raw containers
/// are resized; a size that does not fit is a cohort::TypeMismatch).
/// A pipe is point-to-point messaging over a private communicator of its two ranks (made with
/// Communicator::split), so it never matches any other traffic; messages arrive in order.
/// Errors: sending on the read end of a one-way pipe, or using the pipe on a rank that is not one
/// of its ends, throws cohort::InvalidArgument; send after close(), and recv once the other end
/// has closed and everything it sent was received, throw cohort::PipeClosed (Python's EOFError);
/// a recv whose peer died or exited throws cohort::PeerLost.
/// Who may call: the two end ranks, one thread at a time each.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "cohort/communicator.hpp"
#include "cohort/errors.hpp"

namespace cohort {

/// The other end of the pipe has closed it (and everything it sent was received), or this end
/// sends after its own close().
class PipeClosed : public Error {
 public:
  using Error::Error;
};

enum class PipeMode { duplex, one_way };

/// One end of a pipe between two ranks (see the file comment).
class Pipe {
 public:
  /// Collective over `comm`: every member calls it (in the same order as its other collective
  /// calls). `rank_a` and `rank_b` are distinct ranks of `comm`; in one-way mode `rank_a` writes
  /// and `rank_b` reads.
  Pipe(Communicator& comm, int rank_a, int rank_b, PipeMode mode = PipeMode::duplex);

  /// True on the two end ranks.
  [[nodiscard]] bool active() const noexcept { return link_.has_value(); }
  explicit operator bool() const noexcept { return active(); }
  /// The other end's rank in the communicator the pipe was made from (-1 on other ranks).
  [[nodiscard]] int peer() const noexcept { return peer_; }
  [[nodiscard]] bool can_send() const noexcept { return active() && writable_; }
  [[nodiscard]] bool can_recv() const noexcept { return active() && readable_; }

  /// Sends `value` to the other end (returns when `value` may be reused).
  template <class T>
  void send(const T& value) {
    check_send();
    SendLabel label(*this);  // a blocked send shows as Pipe.send in cohortrun's reports
    link_->send(value, 1 - link_->rank(), kData);
  }

  /// Receives the next value, of type T. Blocks until it arrives.
  template <class T>
  T recv() {
    T out{};
    recv(out);
    return out;
  }
  /// Receives the next value into `out` (containers are resized).
  template <class T>
  void recv(T& out) {
    check_recv();
    link_->recv(out, 1 - link_->rank(), kData);
  }

  /// True when a value (or the other end's close) is waiting; waits at most `timeout`
  /// (zero: just look; negative: until something comes).
  template <class Rep = long, class Period = std::ratio<1>>
  [[nodiscard]] bool poll(const std::chrono::duration<Rep, Period>& timeout = std::chrono::seconds(0)) {
    return poll_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }

  /// Closes this end: the other end's pending and future recv() see PipeClosed once it has
  /// received what was sent before. Idempotent.
  void close();
  [[nodiscard]] bool closed() const noexcept { return closed_; }

 private:
  static constexpr Tag kData{0};
  static constexpr Tag kClose{1};
  void check_send();
  void check_recv();  // throws PipeClosed when the next message is the other end's close
  bool poll_ns(std::chrono::nanoseconds timeout);
  [[noreturn]] void inactive(const char* op) const;
  struct SendLabel {
    explicit SendLabel(const Pipe& pipe) noexcept;
    ~SendLabel();
    SendLabel(const SendLabel&) = delete;
    SendLabel& operator=(const SendLabel&) = delete;
    const Pipe& pipe;
  };

  std::optional<Communicator> link_;  // ranks 0 (rank_a) and 1 (rank_b)
  int self_ = -1;                     // world rank, for messages
  int peer_ = -1;
  bool writable_ = false;
  bool readable_ = false;
  bool closed_ = false;       // this end closed
  bool peer_closed_ = false;  // the close message was received
};

}  // namespace cohort
