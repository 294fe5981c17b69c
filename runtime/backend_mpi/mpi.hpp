// MPI backend: what its files share. The public API's type-erased entry points (detail::p2p_*,
// detail::collective_*, Request, CollectiveRequest) are implemented over MPI in p2p.cpp and
// collectives.cpp; runtime.cpp holds the Runtime (MPI_Init_thread, the world communicator, and
// the job segment on an MPI-3 shared window when every rank is on one node).
//
// Every communicator is an MPI communicator of its own (MPI_Comm_dup/split) with
// MPI_ERRORS_RETURN, so MPI errors come back as codes and are thrown as Cohort's exceptions.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <string>

#include "runtime/runtime.hpp"

namespace cohort::backend_mpi {

/// A communicator's MPI handle (CommunicatorImpl::backend()). Freed with the CommunicatorImpl,
/// unless MPI is finalized by then.
struct CommHandle {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm internal = MPI_COMM_NULL;  // Cohort's own traffic (rank-order reductions); made on first use
  ~CommHandle();
};

/// The MPI communicator behind `c`.
inline MPI_Comm mpi_comm(const detail::CommunicatorImpl& c) noexcept {
  return static_cast<CommHandle*>(c.backend())->comm;
}

/// A duplicate of `comm` (same group, same order, a context of its own; error handler not copied)
/// made without a non-blocking collective: MPI_Comm_create_group. MPI_Comm_dup and
/// MPI_Comm_split agree on the new context with an MPI_Iallreduce on the parent, and in Open MPI
/// 4.1 that registers libnbc's progress function for as long as the parent lives: every later
/// MPI wait polls it too (~20 instructions more per poll, a sixth of the loop). Returns the MPI
/// error code.
int dup_quietly(MPI_Comm comm, MPI_Comm* out);

/// Wraps `comm` (owned) as the backend state of a CommunicatorImpl; sets MPI_ERRORS_RETURN.
std::shared_ptr<void> adopt(MPI_Comm comm);

/// The thread level the Environment asks MPI_Init_thread for: COHORT_MPI_THREAD_LEVEL
/// (multiple, serialized, funneled, single), MPI_THREAD_SINGLE when unset.
int thread_level();

/// MPI's text for an error code.
std::string error_text(int code);

/// Throws cohort::Error for a failed MPI call: "rank R: WHAT: MPI error: TEXT".
[[noreturn]] void throw_mpi(const detail::CommunicatorImpl& c, const std::string& what, int code);

/// Checks an MPI return code.
inline void check(int rc, const detail::CommunicatorImpl& c, const char* what) {
  if (rc != MPI_SUCCESS) throw_mpi(c, what, rc);
}

/// A new context id for a communicator created collectively over `parent` (split/dup), the same
/// on every member of `comm` (the new MPI communicator): unique in the job when the segment is
/// shared (its counter), unique in each member process otherwise (shared objects need the former).
std::uint32_t new_context(detail::Runtime& rt, MPI_Comm comm);

/// An int count for MPI, or InvalidArgument naming the operation (MPI counts are int).
int to_count(const detail::CommunicatorImpl& c, std::size_t n, const char* what);

}  // namespace cohort::backend_mpi
