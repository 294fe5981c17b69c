// MPI backend: the Runtime (MPI_Init_thread .. MPI_Finalize), the world communicator, and the job
// segment that the multiprocessing layer (SharedArray, locks, Queue, Pipe, pool_map) works in.
//
// The segment: when every rank of MPI_COMM_WORLD is on one node (MPI_Comm_split_type
// MPI_COMM_TYPE_SHARED), world rank 0 allocates it in an MPI-3 shared window
// (MPI_Win_allocate_shared) and formats it exactly as cohortrun would; every rank maps the same
// memory, so futexes, the shared heap and the rank slots work unchanged. Across nodes there is no
// memory to share: each rank gets a private segment (so waits and liveness checks still work) and
// shared objects throw cohort::Unsupported naming the feature (runtime/patterns/shared.cpp).
//
// MPI initialisation: if MPI is not initialised yet, the Environment calls MPI_Init_thread
// (MPI_THREAD_MULTIPLE: different threads may use different communicators) and its destructor
// calls MPI_Finalize. If the program initialised MPI itself, Cohort uses it and leaves
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
MPI_Win g_window = MPI_WIN_NULL;
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

CommHandle::~CommHandle() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized != 0) return;
  if (internal != MPI_COMM_NULL) MPI_Comm_free(&internal);
  if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
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
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) fail(0, "MPI_Init_thread", rc);
    backend_mpi::g_initialized_here = true;
  }
  MPI_Comm world = MPI_COMM_NULL;
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &world);
  if (rc != MPI_SUCCESS) fail(0, "MPI_Comm_dup(MPI_COMM_WORLD)", rc);
  MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN);
  info_ = contract::LaunchInfo{};
  MPI_Comm_rank(world, &info_.rank);
  MPI_Comm_size(world, &info_.size);

  // One node? (And ranks per node against its cpus: the wait policy.)
  MPI_Comm node = MPI_COMM_NULL;
  rc = MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &node);
  if (rc != MPI_SUCCESS) fail(info_.rank, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)", rc);
  int node_size = 0;
  MPI_Comm_size(node, &node_size);
  MPI_Comm_free(&node);
  int local = node_size == info_.size && std::getenv("COHORT_MPI_PRIVATE_SEGMENT") == nullptr ? 1 : 0;
  int all_local = 0;
  MPI_Allreduce(&local, &all_local, 1, MPI_INT, MPI_MIN, world);
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  info_.oversubscribed = cpus > 0 && node_size > cpus;
  if (info_.rank == 0) info_.job = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  MPI_Bcast(&info_.job, 1, MPI_UINT64_T, 0, world);

  auto layout = transport::segment_layout(info_.size);
  if (all_local != 0) {
    void* base = nullptr;
    // Open MPI places the window at an offset that is not page-aligned in its mapping: allocate
    // a page more and start the segment at the first page boundary (the same offset in every
    // process, since every mapping starts on a page).
    constexpr std::size_t kPage = 4096;
    MPI_Aint mine = info_.rank == 0 ? static_cast<MPI_Aint>(layout.total_bytes + kPage) : 0;
    rc = MPI_Win_allocate_shared(mine, 1, MPI_INFO_NULL, world, &base, &backend_mpi::g_window);
    if (rc != MPI_SUCCESS) {
      throw ResourceError(fmt::format(
          "cohort: rank {}: MPI_Win_allocate_shared of {} bytes for the job segment failed: {}",
          info_.rank, layout.total_bytes, backend_mpi::error_text(rc)));
    }
    MPI_Aint bytes = 0;
    int disp = 0;
    MPI_Win_shared_query(backend_mpi::g_window, 0, &bytes, &disp, &base);
    auto at = reinterpret_cast<std::uintptr_t>(base);
    at = (at + kPage - 1) & ~std::uintptr_t{kPage - 1};
    std::span<std::byte> memory(reinterpret_cast<std::byte*>(at), layout.total_bytes);
    if (info_.rank == 0) {
      std::memset(memory.data(), 0, layout.reserved_bytes());  // the heap is fresh (zero) pages
      segment_ = transport::Segment::format(memory, info_.size, info_.job, info_.oversubscribed);
    }
    MPI_Barrier(world);
    if (info_.rank != 0) {
      segment_ = transport::Segment(memory);
      segment_.validate(info_.job, info_.size);
    }
  } else {
    // Private: every slot says "attached" (a rank that dies ends the MPI job anyway).
    owned_fd_ = platform::create_shared_memory("cohort-mpi-private", layout.total_bytes,
                                               layout.reserved_bytes());
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
  // Collective: no rank unmaps the shared segment while another still uses it.
  if (backend_mpi::g_window != MPI_WIN_NULL) MPI_Win_free(&backend_mpi::g_window);
  if (backend_mpi::g_initialized_here) {
    MPI_Finalize();
    backend_mpi::g_initialized_here = false;
  }
}

}  // namespace cohort::detail
