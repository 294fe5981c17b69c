/// @file cohort/errors.hpp
/// Typed exceptions thrown by Cohort. Every message names the rank, the peer, the operation and
/// what to do, e.g. `rank 0: recv from rank 5 (tag 7): message is 4096 bytes, buffer holds 1024`.
///
/// Example:
/// @code
///   try {
///     comm.recv(std::span(buf), 1, cohort::Tag{7});
///   } catch (const cohort::PeerLost& e) {
///     std::cerr << "rank " << e.peer() << " died: " << e.what() << '\n';
///   } catch (const cohort::Error& e) {   // any other Cohort failure
///     std::cerr << e.what() << '\n';
///   }
/// @endcode
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace cohort {

/// Base of every error Cohort throws (OS failures are std::system_error naming the object).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The launch contract (COHORT_* environment variables) is partial or malformed.
class ContractError : public Error {
 public:
  using Error::Error;
};

/// An argument is out of range: a rank, a tag, a count, a size.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// Ranks called the same collective inconsistently (different operation, root, count or
/// reduction): e.g. `rank 2: allreduce on communicator 0 (call #5): rank 0 passed 16 bytes, this
/// rank passed 8 bytes`. The communicator must not be used for collectives afterwards.
class CollectiveMismatch : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

/// A peer this call depends on has died or exited; the call can never complete.
class PeerLost : public Error {
 public:
  PeerLost(int peer, const std::string& what) : Error(what), peer_(peer) {}
  /// The rank that was lost.
  [[nodiscard]] int peer() const noexcept { return peer_; }

 private:
  int peer_;
};

/// The job is being torn down (another rank failed, or the launcher was interrupted).
class JobAborted : public Error {
 public:
  using Error::Error;
};

/// A message is larger than the receive buffer. Nothing was written past the buffer.
class TruncationError : public Error {
 public:
  TruncationError(std::size_t message_bytes, std::size_t buffer_bytes, const std::string& what)
      : Error(what), message_bytes_(message_bytes), buffer_bytes_(buffer_bytes) {}
  [[nodiscard]] std::size_t message_bytes() const noexcept { return message_bytes_; }
  [[nodiscard]] std::size_t buffer_bytes() const noexcept { return buffer_bytes_; }

 private:
  std::size_t message_bytes_;
  std::size_t buffer_bytes_;
};

/// A message does not fit the type it is received as (size not a multiple of the element size,
/// a raw message received as a serialized type, or the other way round).
class TypeMismatch : public Error {
 public:
  using Error::Error;
};

/// A serialized payload could not be decoded (corrupt, truncated, or of another type).
class DeserializeError : public Error {
 public:
  using Error::Error;
};

/// Shared memory for the job is exhausted or could not be reserved.
class ResourceError : public Error {
 public:
  using Error::Error;
};

/// A feature is not available in this build or job, e.g. shared objects on an MPI job that spans
/// nodes, or cohort::spawn on the MPI backend. The message names the feature and why.
class Unsupported : public Error {
 public:
  using Error::Error;
};

/// A timed operation ran out of time.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

}  // namespace cohort
