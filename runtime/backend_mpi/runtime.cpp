// MPI backend: the Runtime (MPI_Init_thread .. MPI_Finalize), the world communicator, and the job
// segment that the multiprocessing layer (SharedArray, locks, Queue, Pipe, pool_map) works in.
//
// The segment: when every rank of MPI_COMM_WORLD is on one node (MPI_Comm_split_type
// MPI_COMM_TYPE_SHARED), world rank 0 creates and formats it exactly as cohortrun would and the
// other ranks map the same memfd (through /proc); futexes, the shared heap and the rank slots
// work unchanged. Across nodes there is no
// memory to share: each rank gets a private segment (so waits and liveness checks still work) and
// shared objects throw cohort::Unsupported naming the feature (runtime/patterns/shared.cpp).
//
// MPI initialisation: if MPI is not initialised yet, the Environment calls MPI_Init_thread
// (MPI_THREAD_SINGLE by default: with Open MPI 4.1.4 any higher level slows every call down,
// measured here: 8-byte broadcast 0.34 us at FUNNELED or SERIALIZED against 0.20 us at SINGLE;
// COHORT_MPI_THREAD_LEVEL=funneled|serialized|multiple for programs whose threads call Cohort)
// and its destructor calls MPI_Finalize. If the program initialised MPI itself, Cohort uses it and leaves
// finalisation to the program.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "cohort/errors.hpp"
#include "runtime/backend_mpi/mpi.hpp"
#include "runtime/transport/collective_area.hpp"

namespace cohort::backend_mpi {
namespace {

bool g_initialized_here = false;
std::uint32_t g_local_context = 0;  // last context id this process used (private segments)

std::vector<int> identity(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

[[noreturn]] void fail(int rank, const char* what, int code) {
  throw Error(fmt::format("cohort: rank {}: {}: MPI error: {}", rank, what, error_text(code)));
}

}  // namespace

int thread_level() {
  const char* v = std::getenv("COHORT_MPI_THREAD_LEVEL");
  if (v == nullptr || std::strcmp(v, "single") == 0) return MPI_THREAD_SINGLE;
  if (std::strcmp(v, "serialized") == 0) return MPI_THREAD_SERIALIZED;
  if (std::strcmp(v, "multiple") == 0) return MPI_THREAD_MULTIPLE;
  if (std::strcmp(v, "funneled") == 0) return MPI_THREAD_FUNNELED;
  throw ContractError(fmt::format("cohort: COHORT_MPI_THREAD_LEVEL={} is not one of multiple, "
                                  "serialized, funneled, single", v));
}

CommHandle::~CommHandle() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized != 0) return;
  if (internal != MPI_COMM_NULL) MPI_Comm_free(&internal);
  if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
}

int dup_quietly(MPI_Comm comm, MPI_Comm* out) {
  MPI_Group group = MPI_GROUP_NULL;
  int rc = MPI_Comm_group(comm, &group);
  if (rc != MPI_SUCCESS) return rc;
  rc = MPI_Comm_create_group(comm, group, 0, out);
  MPI_Group_free(&group);
  return rc;
}

std::shared_ptr<void> adopt(MPI_Comm comm) {
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  auto h = std::make_shared<CommHandle>();
  h->comm = comm;
  return h;
}

std::string error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return fmt::format("code {}", code);
  return std::string(text, static_cast<std::size_t>(len));
}

void throw_mpi(const detail::CommunicatorImpl& c, const std::string& what, int code) {
  throw Error(fmt::format("rank {}: {}: MPI error: {}", c.rank(), what, error_text(code)));
}

int to_count(const detail::CommunicatorImpl& c, std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(INT32_MAX)) {
    throw InvalidArgument(fmt::format("rank {}: {}: {} bytes is more than the MPI backend sends "
                                      "in one call ({}); split the data",
                                      c.rank(), what, n, INT32_MAX));
  }
  return static_cast<int>(n);
}

std::uint32_t new_context(detail::Runtime& rt, MPI_Comm comm) {
  std::uint32_t id = 0;
  if (rt.segment_shared()) {
    int r = 0;
    MPI_Comm_rank(comm, &r);
    if (r == 0) {
      transport::CollectiveArea area(rt.segment().collective_area(), rt.size());
      id = area.header().next_context.fetch_add(1, std::memory_order_relaxed) + 1;
    }
    MPI_Bcast(&id, 1, MPI_UINT32_T, 0, comm);
  } else {
    std::uint32_t mine = g_local_context + 1;
    MPI_Allreduce(&mine, &id, 1, MPI_UINT32_T, MPI_MAX, comm);
  }
  g_local_context = std::max(g_local_context, id);
  return id;
}

}  // namespace cohort::backend_mpi

namespace cohort::detail {

Runtime::Runtime(const std::optional<contract::LaunchInfo>& info) {
  using backend_mpi::fail;
  if (info) {
    throw ContractError(fmt::format(
        "cohort: rank {}: this program was built with the MPI backend (COHORT_BACKEND=mpi) but "
        "started by cohortrun; start it with mpirun or srun, or rebuild it with "
        "-DCOHORT_BACKEND=shm",
        info->rank));
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized == 0) {
    int provided = 0;
    int rc = MPI_Init_thread(nullptr, nullptr, backend_mpi::thread_level(), &provided);
    if (rc != MPI_SUCCESS) fail(0, "MPI_Init_thread", rc);
    backend_mpi::g_initialized_here = true;
  }
  MPI_Comm world = MPI_COMM_NULL;
  int rc = backend_mpi::dup_quietly(MPI_COMM_WORLD, &world);
  if (rc != MPI_SUCCESS) fail(0, "MPI_Comm_create_group(MPI_COMM_WORLD)", rc);
  MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN);
  info_ = contract::LaunchInfo{};
  MPI_Comm_rank(world, &info_.rank);
  MPI_Comm_size(world, &info_.size);

  // One node? (And ranks per node against its cpus: the wait policy.)
  // Split a throwaway duplicate, so that the split's MPI_Iallreduce leaves no progress function
  // registered on `world` (see dup_quietly).
  MPI_Comm parent = MPI_COMM_NULL, node = MPI_COMM_NULL;
  rc = backend_mpi::dup_quietly(world, &parent);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_split_type(parent, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &node);
  if (rc != MPI_SUCCESS) fail(info_.rank, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)", rc);
  int node_size = 0;
  MPI_Comm_size(node, &node_size);
  MPI_Comm_free(&node);
  MPI_Comm_free(&parent);
  int local = node_size == info_.size && std::getenv("COHORT_MPI_PRIVATE_SEGMENT") == nullptr ? 1 : 0;
  int all_local = 0;
  MPI_Allreduce(&local, &all_local, 1, MPI_INT, MPI_MIN, world);
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  info_.oversubscribed = cpus > 0 && node_size > cpus;
  if (info_.rank == 0) info_.job = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  MPI_Bcast(&info_.job, 1, MPI_UINT64_T, 0, world);

  auto layout = transport::segment_layout(info_.size);
  if (all_local != 0) {
    // World rank 0 creates the segment as cohortrun would (a memfd, pages but the heap's reserved)
    // and the others open it through /proc/<pid>/fd/<fd> (same node, same user). Not an MPI
    // shared window: Open MPI's window components slow every later MPI call down (measured:
    // 8-byte allreduce 3.4 us instead of 1.8 us here).
    std::int32_t where[2] = {static_cast<std::int32_t>(::getpid()), -1};
    if (info_.rank == 0) {
      owned_fd_ = platform::create_shared_memory("cohort-mpi-segment", layout.total_bytes,
                                                 layout.reserved_bytes());
      mapping_ = platform::Mapping(owned_fd_.get(), layout.total_bytes, "job segment");
      segment_ = transport::Segment::format(mapping_.bytes(), info_.size, info_.job, info_.oversubscribed);
      where[1] = owned_fd_.get();
    }
    MPI_Bcast(where, 2, MPI_INT32_T, 0, world);
    if (info_.rank != 0) {
      owned_fd_ = platform::open_process_fd(where[0], where[1], "the job segment of world rank 0");
      mapping_ = platform::Mapping(owned_fd_.get(), layout.total_bytes, "job segment");
      segment_ = transport::Segment(mapping_.bytes());
      segment_.validate(info_.job, info_.size);
    }
    MPI_Barrier(world);  // rank 0 keeps its descriptor open until everyone has it
  } else {
    // Private: every slot says "attached" (a rank that dies ends the MPI job anyway).
    // Nothing reserved up front: only the header and the slots are used (pages are committed as
    // they are touched).
    owned_fd_ = platform::create_shared_memory("cohort-mpi-private", layout.total_bytes, 0);
    mapping_ = platform::Mapping(owned_fd_.get(), layout.total_bytes, "private segment");
    segment_ = transport::Segment::format(mapping_.bytes(), info_.size, info_.job,
                                          info_.oversubscribed);
    for (int r = 0; r < info_.size; ++r) {
      segment_.slot(r).state.store(static_cast<std::uint32_t>(transport::RankState::attached));
    }
    segment_shared_ = false;
  }
  waiter_ = transport::Waiter(segment_, info_.rank, info_.oversubscribed);
  transport::RankSlot& slot = segment_.slot(info_.rank);
  slot.pid.store(static_cast<std::int32_t>(::getpid()), std::memory_order_relaxed);
  slot.state.store(static_cast<std::uint32_t>(transport::RankState::attached), std::memory_order_release);
  auto impl = std::make_shared<CommunicatorImpl>(*this, 0u, backend_mpi::identity(info_.size), info_.rank);
  impl->set_backend(backend_mpi::adopt(world));
  world_ = std::make_unique<Communicator>(std::move(impl));
  // Every slot is attached before anyone uses a shared object.
  MPI_Barrier(world);
}

Runtime::~Runtime() {
  segment_.slot(info_.rank).state.store(static_cast<std::uint32_t>(transport::RankState::finished),
                                        std::memory_order_release);
  segment_.wake_all();
  world_.reset();  // MPI_Comm_free before MPI_Finalize (unless the program still holds a copy)
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized != 0) return;
  // No rank leaves (and unmaps the segment) while another still uses a shared object in it.
  if (segment_shared_) MPI_Barrier(MPI_COMM_WORLD);
  if (backend_mpi::g_initialized_here) {
    MPI_Finalize();
    backend_mpi::g_initialized_here = false;
  }
}

}  // namespace cohort::detail
