// MPI backend: collectives, split/dup and cohort::CollectiveRequest over MPI.
//
// Reductions: a built-in operation on an arithmetic type (std::plus<>, std::multiplies<>,
// cohort::min, cohort::max, with or without their template argument) is recognised from its
// Combiner (the operation id and the instantiated function) and handed to MPI as MPI_SUM /
// MPI_PROD / MPI_MIN / MPI_MAX on the matching MPI datatype, so MPI's own (vectorised,
// topology-aware) algorithms run. Any other callable goes through one MPI_Op created with
// commute = false, so MPI combines in rank order (x0 op x1 op ... op x(n-1), the order Cohort
// documents). MPI's user function gets no context pointer, so each call uses a contiguous
// datatype of the element size that carries the Combiner as an attribute: the function reads it
// from the datatype MPI passes in. That holds for the non-blocking iallreduce too, whichever call
// makes MPI progress it (no thread-local "current combiner" that another call could change).
#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "cohort/collectives.hpp"
#include "cohort/errors.hpp"
#include "runtime/backend_mpi/mpi.hpp"
#include "runtime/transport/copy.hpp"

namespace cohort::collectives {

/// A non-blocking collective in flight: its MPI request and what it needs until completion.
class PendingOp {
 public:
  PendingOp(detail::CommunicatorImpl& comm, const char* name) : comm_(comm), name_(name) {}
  PendingOp(const PendingOp&) = delete;
  PendingOp& operator=(const PendingOp&) = delete;
  ~PendingOp() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized == 0 && type_ != MPI_DATATYPE_NULL) MPI_Type_free(&type_);
  }

  MPI_Request request = MPI_REQUEST_NULL;
  detail::Combiner combiner{};  // the datatype's attribute points here (user operations)
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
  std::vector<std::byte> scratch;

  void check(int rc) const {
    if (rc != MPI_SUCCESS) backend_mpi::throw_mpi(comm_, name_, rc);
  }

 private:
  detail::CommunicatorImpl& comm_;
  const char* name_;
};

}  // namespace cohort::collectives

namespace cohort::detail {
namespace {

using backend_mpi::mpi_comm;

std::string where(const CommunicatorImpl& c, const char* op) {
  return fmt::format("rank {}: {} on communicator {}", c.rank(), op, c.context());
}

void check(int rc, const CommunicatorImpl& c, const char* op) {
  if (rc == MPI_SUCCESS) return;
  int cls = rc;
  MPI_Error_class(rc, &cls);
  if (cls == MPI_ERR_TRUNCATE) {
    throw CollectiveMismatch(fmt::format(
        "{}: a rank sent more data than this rank's buffer holds ({}); every rank must call "
        "collectives in the same order with matching arguments",
        where(c, op), backend_mpi::error_text(rc)));
  }
  backend_mpi::throw_mpi(c, op, rc);
}

void check_root(const CommunicatorImpl& c, const char* op, int root) {
  if (root < 0 || root >= c.size()) {
    throw InvalidArgument(fmt::format("{}: root {} is not a rank of this communicator (size {})",
                                      where(c, op), root, c.size()));
  }
}

// ---- reduction operations ----------------------------------------------------------------------

struct Builtin {
  void (*fn)(const void*, void*, const void*, std::size_t);
  MPI_Op op;
  MPI_Datatype type;
  bool rounds;  // a floating-point sum or product: the association changes the bits
};

template <class T>
void add_type(std::unordered_map<std::uint32_t, Builtin>& m, MPI_Datatype type) {
  auto add = [&](auto op, MPI_Op mpi_op) {
    Combiner c = make_combiner<T>(op);
    bool rounds = std::is_floating_point_v<T> && (mpi_op == MPI_SUM || mpi_op == MPI_PROD);
    m.emplace(c.op_id, Builtin{c.fn, mpi_op, type, rounds});
  };
  if constexpr (sizeof(T) >= sizeof(int)) {  // narrower: std::plus<> yields an int (users get a warning)
    add(std::plus<>{}, MPI_SUM);
    add(std::multiplies<>{}, MPI_PROD);
  }
  add(std::plus<T>{}, MPI_SUM);
  add(std::multiplies<T>{}, MPI_PROD);
  add(cohort::Min{}, MPI_MIN);
  add(cohort::Max{}, MPI_MAX);
}

const std::unordered_map<std::uint32_t, Builtin>& builtins() {
  static const auto table = [] {
    std::unordered_map<std::uint32_t, Builtin> m;
    add_type<signed char>(m, MPI_SIGNED_CHAR);
    add_type<unsigned char>(m, MPI_UNSIGNED_CHAR);
    add_type<short>(m, MPI_SHORT);
    add_type<unsigned short>(m, MPI_UNSIGNED_SHORT);
    add_type<int>(m, MPI_INT);
    add_type<unsigned>(m, MPI_UNSIGNED);
    add_type<long>(m, MPI_LONG);
    add_type<unsigned long>(m, MPI_UNSIGNED_LONG);
    add_type<long long>(m, MPI_LONG_LONG);
    add_type<unsigned long long>(m, MPI_UNSIGNED_LONG_LONG);
    add_type<float>(m, MPI_FLOAT);
    add_type<double>(m, MPI_DOUBLE);
    add_type<long double>(m, MPI_LONG_DOUBLE);
    return m;
  }();
  return table;
}

const Builtin* builtin_of(const Combiner& c) {
  // The last answer first: programs reduce with the same operation over and over, and a small
  // allreduce is a few hundred instructions of MPI (the table never changes, so it stays right).
  struct Last {
    decltype(Combiner::fn) fn = nullptr;
    std::uint32_t op_id = 0;
    const Builtin* builtin = nullptr;
  };
  thread_local Last last;
  if (c.fn == last.fn && c.op_id == last.op_id) return last.builtin;
  const auto& t = builtins();
  auto it = t.find(c.op_id);
  const Builtin* b = it != t.end() && it->second.fn == c.fn ? &it->second : nullptr;
  last = Last{c.fn, c.op_id, b};
  return b;
}

int g_keyval = MPI_KEYVAL_INVALID;
MPI_Op g_user_op = MPI_OP_NULL;

// inout[i] = in[i] op inout[i]; `in` holds the lower ranks' part (MPI's rule for
// non-commutative operations), so the Combiner's accumulator starts from a copy of it.
void user_function(void* in, void* inout, int* len, MPI_Datatype* type) {
  Combiner* c = nullptr;
  int found = 0;
  MPI_Type_get_attr(*type, g_keyval, &c, &found);
  if (found == 0 || c == nullptr) MPI_Abort(MPI_COMM_WORLD, 70);  // cannot happen: our datatypes only
  const auto n = static_cast<std::size_t>(*len);
  const std::size_t bytes = n * c->elem_bytes;
  thread_local std::vector<std::byte> acc;
  acc.resize(bytes);
  transport::copy_bytes(acc.data(), in, bytes);
  c->fn(c->op, acc.data(), inout, n);
  transport::copy_bytes(inout, acc.data(), bytes);
}

void init_user_op() {
  static std::once_flag once;
  std::call_once(once, [] {
    MPI_Type_create_keyval(MPI_TYPE_NULL_COPY_FN, MPI_TYPE_NULL_DELETE_FN, &g_keyval, nullptr);
    MPI_Op_create(&user_function, 0, &g_user_op);
  });
}

/// The MPI form of a reduction: op, datatype, element count. A user operation gets a fresh
/// datatype carrying `combiner` (which must outlive the call); `owned` then holds it for freeing.
struct MpiReduction {
  MPI_Op op;
  MPI_Datatype type;
  int count;
};

MpiReduction reduction(const CommunicatorImpl& c, const char* name, std::size_t bytes,
                       const Combiner& combiner, MPI_Datatype& owned) {
  if (combiner.elem_bytes == 0 || bytes % combiner.elem_bytes != 0) {
    throw InvalidArgument(fmt::format("{}: {} bytes are not a whole number of {}-byte elements",
                                      where(c, name), bytes, combiner.elem_bytes));
  }
  int count = backend_mpi::to_count(c, bytes / combiner.elem_bytes, name);
  if (const Builtin* b = builtin_of(combiner)) return {b->op, b->type, count};
  init_user_op();
  int elem = backend_mpi::to_count(c, combiner.elem_bytes, name);
  check(MPI_Type_contiguous(elem, MPI_BYTE, &owned), c, name);
  MPI_Type_commit(&owned);
  MPI_Type_set_attr(owned, g_keyval, const_cast<Combiner*>(&combiner));
  return {g_user_op, owned, count};
}

/// Frees a per-call datatype at the end of a blocking call.
struct TypeGuard {
  MPI_Datatype type = MPI_DATATYPE_NULL;
  ~TypeGuard() {
    if (type != MPI_DATATYPE_NULL) MPI_Type_free(&type);
  }
};

const void* send_buffer(const void* in, const void* out) { return in == out ? MPI_IN_PLACE : in; }

std::vector<int> int_counts(const CommunicatorImpl& c, const char* name, const std::size_t* counts,
                            std::size_t uniform) {
  std::vector<int> v(static_cast<std::size_t>(c.size()));
  for (std::size_t r = 0; r < v.size(); ++r) {
    v[r] = backend_mpi::to_count(c, counts != nullptr ? counts[r] : uniform, name);
  }
  return v;
}

std::vector<int> displacements(const CommunicatorImpl& c, const char* name, const std::vector<int>& counts) {
  std::vector<int> d(counts.size());
  std::size_t at = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    d[r] = backend_mpi::to_count(c, at, name);
    at += static_cast<std::size_t>(counts[r]);
  }
  return d;
}

std::shared_ptr<CommunicatorImpl> wrap(CommunicatorImpl& parent, MPI_Comm comm) {
  Runtime& rt = parent.runtime();
  std::uint32_t context = backend_mpi::new_context(rt, comm);
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  std::vector<int> mine(static_cast<std::size_t>(size)), world(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) mine[static_cast<std::size_t>(r)] = r;
  MPI_Group group, world_group;
  MPI_Comm_group(comm, &group);
  MPI_Comm_group(mpi_comm(rt.world().impl()), &world_group);
  MPI_Group_translate_ranks(group, size, mine.data(), world_group, world.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world_group);
  auto impl = std::make_shared<CommunicatorImpl>(rt, context, std::move(world), rank);
  impl->set_backend(backend_mpi::adopt(comm));
  return impl;
}


// ---- rank-order reductions -------------------------------------------------------------------
//
// Cohort promises ((x0 op x1) op x2) op ... exactly (bit-identical floating point). MPI only
// promises the operand order for non-commutative operations, not the association, so operations
// that round (floating-point sums and products at 3 ranks or more) and every user operation run
// this chain instead: rank r receives x0..x(r-1) from rank r-1, combines its own value on the
// right and passes it on, in pipelined chunks; the last rank then holds the result. The chain
// uses the communicator's internal MPI communicator, so user receives never see its messages.

/// True when MPI's own reduction gives Cohort's result bit for bit.
bool mpi_reduction_exact(const CommunicatorImpl& c, const Builtin* b) {
  return b != nullptr && (!b->rounds || c.size() <= 2);
}

MPI_Comm internal_comm(const CommunicatorImpl& c) {
  auto* h = static_cast<backend_mpi::CommHandle*>(c.backend());
  if (h->internal == MPI_COMM_NULL) {  // collective: every member reaches its first chain together
    check(backend_mpi::dup_quietly(h->comm, &h->internal), c, "reduction");
    MPI_Comm_set_errhandler(h->internal, MPI_ERRORS_RETURN);
  }
  return h->internal;
}

/// Left fold along the ranks into `acc` (which holds this rank's value on entry): on return,
/// acc = x0 op ... op x(rank) (scan), and the last rank holds the whole reduction. With
/// `exclusive`, `prefix` receives x0 op ... op x(rank-1) (ranks > 0).
void chain(const CommunicatorImpl& c, const char* name, std::byte* acc, std::size_t bytes,
           const Combiner& op, std::byte* prefix = nullptr) {
  const int n = c.size(), me = c.rank();
  if (n == 1 || bytes == 0) return;
  MPI_Comm comm = internal_comm(c);
  constexpr std::size_t kChunk = 64 << 10;
  std::size_t chunk = std::max<std::size_t>(op.elem_bytes, kChunk / op.elem_bytes * op.elem_bytes);
  std::vector<std::byte> in(std::min(chunk, bytes));
  std::vector<std::byte> mine;
  for (std::size_t at = 0; at < bytes; at += chunk) {
    std::size_t len = std::min(chunk, bytes - at);
    int count = backend_mpi::to_count(c, len, name);
    if (me > 0) {
      check(MPI_Recv(in.data(), count, MPI_BYTE, me - 1, 0, comm, MPI_STATUS_IGNORE), c, name);
      if (prefix != nullptr) transport::copy_bytes(prefix + at, in.data(), len);
      // acc = in op acc: the lower ranks' part on the left.
      mine.assign(acc + at, acc + at + len);
      transport::copy_bytes(acc + at, in.data(), len);
      op.fn(op.op, acc + at, mine.data(), len / op.elem_bytes);
    }
    if (me < n - 1) check(MPI_Send(acc + at, count, MPI_BYTE, me + 1, 0, comm), c, name);
  }
}
}  // namespace

void collective_bad_argument(CommunicatorImpl& c, const char* op, const std::string& what) {
  throw InvalidArgument(fmt::format("rank {}: {} on communicator {}: {}", c.rank(), op,
                                    c.context(), what));
}

void collective_barrier(CommunicatorImpl& c) { check(MPI_Barrier(mpi_comm(c)), c, "barrier"); }

void collective_broadcast(CommunicatorImpl& c, void* data, std::size_t bytes, int root) {
  check_root(c, "broadcast", root);
  int count = backend_mpi::to_count(c, bytes, "broadcast");
  check(MPI_Bcast(data, count, MPI_BYTE, root, mpi_comm(c)), c, "broadcast");
}

void collective_reduce(CommunicatorImpl& c, const void* in, void* out, std::size_t bytes,
                       const Combiner& op, int root) {
  check_root(c, "reduce", root);
  if (!mpi_reduction_exact(c, builtin_of(op))) {
    std::vector<std::byte> acc(static_cast<const std::byte*>(in), static_cast<const std::byte*>(in) + bytes);
    chain(c, "reduce", acc.data(), bytes, op);
    const int last = c.size() - 1;
    if (last == root) {
      if (c.rank() == root && bytes > 0) transport::copy_bytes(out, acc.data(), bytes);
    } else if (c.rank() == last) {
      check(MPI_Send(acc.data(), backend_mpi::to_count(c, bytes, "reduce"), MPI_BYTE, root, 1,
                     internal_comm(c)), c, "reduce");
    } else if (c.rank() == root) {
      check(MPI_Recv(out, backend_mpi::to_count(c, bytes, "reduce"), MPI_BYTE, last, 1,
                     internal_comm(c), MPI_STATUS_IGNORE), c, "reduce");
    }
    return;
  }
  TypeGuard g;
  MpiReduction r = reduction(c, "reduce", bytes, op, g.type);
  const bool at_root = c.rank() == root;
  const void* send = at_root ? send_buffer(in, out) : in;
  check(MPI_Reduce(send, at_root ? out : nullptr, r.count, r.type, r.op, root, mpi_comm(c)), c, "reduce");
}

namespace {

constexpr std::size_t kEagerBytes = 4040;  // Open MPI 4.1.4's eager payload on one node (p2p.cpp)
constexpr int kPairTag = 2;               // on the internal communicator (the chain uses 0 and 1)

/// Allreduce of two ranks and at most kEagerBytes: each rank sends its value to the other and
/// folds x0 op x1 itself, so both hold the same bits (Cohort's left fold; for built-ins the
/// result MPI gives at two ranks too). MPI's recursive doubling does the same exchange plus a
/// temporary buffer, a copy and a pair of requests. Both sends are eager (they complete without
/// the receive, and a size mismatch between the ranks is a CollectiveMismatch, never a write past a buffer), and
/// they travel on the internal communicator, out of sight of user receives.
void allreduce_pair(CommunicatorImpl& c, const void* in, void* out, std::size_t bytes, const Combiner& op) {
  MPI_Comm comm = internal_comm(c);
  const int peer = 1 - c.rank();
  const int count = static_cast<int>(bytes);
  thread_local std::vector<std::byte> other;
  if (other.size() < bytes) other.resize(kEagerBytes);
  check(MPI_Send(in, count, MPI_BYTE, peer, kPairTag, comm), c, "allreduce");
  MPI_Status st;
  check(MPI_Recv(other.data(), count, MPI_BYTE, peer, kPairTag, comm, &st), c, "allreduce");
  int got = 0;
  MPI_Get_count(&st, MPI_BYTE, &got);
  if (got != count) {
    throw CollectiveMismatch(fmt::format(
        "{}: rank {} passed {} bytes, this rank {}; every rank must call collectives in the same "
        "order with matching arguments",
        where(c, "allreduce"), peer, got, count));
  }
  const std::size_t n = bytes / op.elem_bytes;
  if (c.rank() == 0) {  // out = mine op theirs
    if (in != out) transport::copy_bytes(out, in, bytes);
    op.fn(op.op, out, other.data(), n);
  } else {  // out = theirs op mine (`in` is intact until the copy, in place or not)
    op.fn(op.op, other.data(), in, n);
    transport::copy_bytes(out, other.data(), bytes);
  }
}

}  // namespace

void collective_allreduce(CommunicatorImpl& c, const void* in, void* out, std::size_t bytes,
                          const Combiner& op) {
  if (c.size() == 2 && bytes != 0 && bytes <= kEagerBytes && op.elem_bytes != 0 &&
      bytes % op.elem_bytes == 0) {
    allreduce_pair(c, in, out, bytes, op);
    return;
  }
  const Builtin* b = builtin_of(op);
  if (mpi_reduction_exact(c, b) && bytes % op.elem_bytes == 0) {  // the common case, directly
    int count = backend_mpi::to_count(c, bytes / op.elem_bytes, "allreduce");
    check(MPI_Allreduce(send_buffer(in, out), out, count, b->type, b->op, mpi_comm(c)), c, "allreduce");
    return;
  }
  if (!mpi_reduction_exact(c, b)) {
    if (in != out && bytes > 0) transport::copy_bytes(out, in, bytes);
    chain(c, "allreduce", static_cast<std::byte*>(out), bytes, op);
    check(MPI_Bcast(out, backend_mpi::to_count(c, bytes, "allreduce"), MPI_BYTE, c.size() - 1,
                    internal_comm(c)), c, "allreduce");
    return;
  }
  TypeGuard g;
  MpiReduction r = reduction(c, "allreduce", bytes, op, g.type);
  check(MPI_Allreduce(send_buffer(in, out), out, r.count, r.type, r.op, mpi_comm(c)), c, "allreduce");
}

void collective_scan(CommunicatorImpl& c, const void* in, void* out, std::size_t bytes,
                     const Combiner& op, bool exclusive) {
  const char* name = exclusive ? "exscan" : "scan";
  if (!mpi_reduction_exact(c, builtin_of(op))) {
    std::vector<std::byte> acc(static_cast<const std::byte*>(in), static_cast<const std::byte*>(in) + bytes);
    if (!exclusive) {
      chain(c, name, acc.data(), bytes, op);
      if (bytes > 0) transport::copy_bytes(out, acc.data(), bytes);
    } else {
      std::vector<std::byte> prefix(bytes);
      chain(c, name, acc.data(), bytes, op, prefix.data());
      if (c.rank() > 0 && bytes > 0) transport::copy_bytes(out, prefix.data(), bytes);
    }
    return;
  }
  TypeGuard g;
  MpiReduction r = reduction(c, name, bytes, op, g.type);
  if (!exclusive) {
    check(MPI_Scan(send_buffer(in, out), out, r.count, r.type, r.op, mpi_comm(c)), c, name);
    return;
  }
  // MPI leaves rank 0's result undefined; Cohort leaves rank 0's `out` unchanged.
  std::vector<std::byte> keep;
  if (c.rank() == 0 && bytes > 0) keep.assign(static_cast<std::byte*>(out), static_cast<std::byte*>(out) + bytes);
  check(MPI_Exscan(send_buffer(in, out), out, r.count, r.type, r.op, mpi_comm(c)), c, name);
  if (!keep.empty()) transport::copy_bytes(out, keep.data(), bytes);
}

void collective_reduce_scatter(CommunicatorImpl& c, const void* in, void* out,
                               std::size_t block_bytes, const Combiner& op) {
  if (!mpi_reduction_exact(c, builtin_of(op))) {
    const auto n = static_cast<std::size_t>(c.size());
    std::vector<std::byte> all(block_bytes * n);
    collective_allreduce(c, in, all.data(), all.size(), op);
    if (block_bytes > 0) transport::copy_bytes(out, all.data() + static_cast<std::size_t>(c.rank()) * block_bytes, block_bytes);
    return;
  }
  TypeGuard g;
  MpiReduction r = reduction(c, "reduce_scatter", block_bytes, op, g.type);
  check(MPI_Reduce_scatter_block(in, out, r.count, r.type, r.op, mpi_comm(c)), c, "reduce_scatter");
}

void collective_gather(CommunicatorImpl& c, const void* in, std::size_t bytes, void* out,
                       const std::size_t* counts, int root) {
  const char* name = counts != nullptr ? "gatherv" : "gather";
  check_root(c, name, root);
  int count = backend_mpi::to_count(c, bytes, name);
  if (c.rank() != root) {
    check(MPI_Gatherv(in, count, MPI_BYTE, nullptr, nullptr, nullptr, MPI_BYTE, root, mpi_comm(c)), c, name);
    return;
  }
  std::vector<int> n = int_counts(c, name, counts, bytes);
  if (static_cast<std::size_t>(n[static_cast<std::size_t>(root)]) != bytes) {
    collective_bad_argument(c, "gatherv", fmt::format("the root's own count is {} bytes but it passes {} bytes",
                                                      n[static_cast<std::size_t>(root)], bytes));
  }
  std::vector<int> d = displacements(c, name, n);
  check(MPI_Gatherv(in, count, MPI_BYTE, out, n.data(), d.data(), MPI_BYTE, root, mpi_comm(c)), c, name);
}

void collective_scatter(CommunicatorImpl& c, const void* in, const std::size_t* counts, void* out,
                        std::size_t bytes, int root, bool variant) {
  const char* name = variant ? "scatterv" : "scatter";
  if (root < 0 || root >= c.size()) {
    collective_bad_argument(c, "scatter", fmt::format("root {} is not a rank of this communicator (size {})",
                                                      root, c.size()));
  }
  std::vector<std::uint64_t> all(static_cast<std::size_t>(c.size()), bytes);
  if (variant) {
    // The root's counts go out first, so that a rank whose buffer does not match says so (MPI
    // would truncate).
    if (c.rank() == root) all.assign(counts, counts + c.size());
    std::uint64_t mine = 0;
    check(MPI_Scatter(all.data(), 1, MPI_UINT64_T, &mine, 1, MPI_UINT64_T, root, mpi_comm(c)), c, name);
    if (mine != bytes) {
      throw CollectiveMismatch(fmt::format(
          "rank {}: scatterv on communicator {}: the root sends this rank {} bytes, its buffer "
          "holds {} bytes", c.rank(), c.context(), mine, bytes));
    }
  }
  int count = backend_mpi::to_count(c, bytes, name);
  if (c.rank() != root) {
    check(MPI_Scatterv(nullptr, nullptr, nullptr, MPI_BYTE, out, count, MPI_BYTE, root, mpi_comm(c)), c, name);
    return;
  }
  std::vector<int> n(all.size());
  for (std::size_t r = 0; r < n.size(); ++r) n[r] = backend_mpi::to_count(c, all[r], name);
  std::vector<int> d = displacements(c, name, n);
  check(MPI_Scatterv(in, n.data(), d.data(), MPI_BYTE, out, count, MPI_BYTE, root, mpi_comm(c)), c, name);
}

void collective_allgather(CommunicatorImpl& c, const void* in, std::size_t bytes, void* out,
                          const std::size_t* counts) {
  const char* name = counts != nullptr ? "allgatherv" : "allgather";
  int count = backend_mpi::to_count(c, bytes, name);
  if (counts == nullptr) {
    check(MPI_Allgather(in, count, MPI_BYTE, out, count, MPI_BYTE, mpi_comm(c)), c, name);
    return;
  }
  std::vector<int> n = int_counts(c, name, counts, bytes);
  if (static_cast<std::size_t>(n[static_cast<std::size_t>(c.rank())]) != bytes) {
    collective_bad_argument(c, "allgatherv", fmt::format("counts[{}] is {} bytes but this rank passes {} bytes",
                                                         c.rank(), n[static_cast<std::size_t>(c.rank())], bytes));
  }
  std::vector<int> d = displacements(c, name, n);
  check(MPI_Allgatherv(in, count, MPI_BYTE, out, n.data(), d.data(), MPI_BYTE, mpi_comm(c)), c, name);
}

void collective_alltoall(CommunicatorImpl& c, const void* in, const std::size_t* send_counts,
                         void* out, const std::size_t* recv_counts, std::size_t block_bytes) {
  if (send_counts == nullptr) {
    int count = backend_mpi::to_count(c, block_bytes, "alltoall");
    check(MPI_Alltoall(in, count, MPI_BYTE, out, count, MPI_BYTE, mpi_comm(c)), c, "alltoall");
    return;
  }
  // What each rank sends this one, against what this one expects (MPI would truncate).
  const auto n = static_cast<std::size_t>(c.size());
  std::vector<std::uint64_t> mine(send_counts, send_counts + n), theirs(n);
  check(MPI_Alltoall(mine.data(), 1, MPI_UINT64_T, theirs.data(), 1, MPI_UINT64_T, mpi_comm(c)), c, "alltoallv");
  for (std::size_t i = 0; i < n; ++i) {
    if (theirs[i] != recv_counts[i]) {
      throw CollectiveMismatch(fmt::format(
          "rank {}: alltoallv on communicator {}: rank {} sends {} bytes to this rank, which "
          "expects {} bytes from it", c.rank(), c.context(), i, theirs[i], recv_counts[i]));
    }
  }
  std::vector<int> sn = int_counts(c, "alltoallv", send_counts, 0);
  std::vector<int> rn = int_counts(c, "alltoallv", recv_counts, 0);
  std::vector<int> sd = displacements(c, "alltoallv", sn), rd = displacements(c, "alltoallv", rn);
  check(MPI_Alltoallv(in, sn.data(), sd.data(), MPI_BYTE, out, rn.data(), rd.data(), MPI_BYTE, mpi_comm(c)),
        c, "alltoallv");
}

std::shared_ptr<CommunicatorImpl> collective_split(CommunicatorImpl& c, int color, int key) {
  if (color < 0 && color != cohort::undefined) {
    collective_bad_argument(c, "split", fmt::format("color {} is negative; use a color >= 0 or "
                                                    "cohort::undefined", color));
  }
  // Split a throwaway duplicate (see backend_mpi::dup_quietly): `c` keeps its quick progress loop.
  MPI_Comm parent = MPI_COMM_NULL, comm = MPI_COMM_NULL;
  check(backend_mpi::dup_quietly(mpi_comm(c), &parent), c, "split");
  int rc = MPI_Comm_split(parent, color == cohort::undefined ? MPI_UNDEFINED : color, key, &comm);
  MPI_Comm_free(&parent);
  check(rc, c, "split");
  if (comm == MPI_COMM_NULL) return nullptr;
  return wrap(c, comm);
}

std::shared_ptr<CommunicatorImpl> collective_dup(CommunicatorImpl& c) {
  MPI_Comm comm = MPI_COMM_NULL;
  check(backend_mpi::dup_quietly(mpi_comm(c), &comm), c, "dup");
  return wrap(c, comm);
}

std::shared_ptr<collectives::PendingOp> collective_ibarrier(CommunicatorImpl& c) {
  auto op = std::make_shared<collectives::PendingOp>(c, "ibarrier");
  check(MPI_Ibarrier(mpi_comm(c), &op->request), c, "ibarrier");
  return op;
}

std::shared_ptr<collectives::PendingOp> collective_ibroadcast(CommunicatorImpl& c, void* data,
                                                              std::size_t bytes, int root) {
  check_root(c, "ibroadcast", root);
  auto op = std::make_shared<collectives::PendingOp>(c, "ibroadcast");
  int count = backend_mpi::to_count(c, bytes, "ibroadcast");
  check(MPI_Ibcast(data, count, MPI_BYTE, root, mpi_comm(c), &op->request), c, "ibroadcast");
  return op;
}

std::shared_ptr<collectives::PendingOp> collective_iallreduce(CommunicatorImpl& c, const void* in,
                                                              void* out, std::size_t bytes,
                                                              const Combiner& combiner) {
  auto op = std::make_shared<collectives::PendingOp>(c, "iallreduce");
  op->combiner = combiner;  // the datatype's attribute must outlive the call
  MpiReduction r = reduction(c, "iallreduce", bytes, op->combiner, op->type_);
  const void* send = in;
  if (in == out) {
    send = MPI_IN_PLACE;
  }
  check(MPI_Iallreduce(send, out, r.count, r.type, r.op, mpi_comm(c), &op->request), c, "iallreduce");
  return op;
}

}  // namespace cohort::detail

namespace cohort {

CollectiveRequest::~CollectiveRequest() {
  if (op_) {
    try {
      wait();
    } catch (...) {  // a destructor must not throw; wait() reports errors
    }
  }
}

void CollectiveRequest::wait() {
  if (!op_) return;
  auto op = std::move(op_);
  int rc = MPI_Wait(&op->request, MPI_STATUS_IGNORE);
  keep_.reset();
  op->check(rc);
}

bool CollectiveRequest::test() {
  if (!op_) return true;
  int flag = 0;
  int rc = MPI_Test(&op_->request, &flag, MPI_STATUS_IGNORE);
  if (rc == MPI_SUCCESS && flag == 0) return false;
  auto op = std::move(op_);
  keep_.reset();
  op->check(rc);
  return true;
}

}  // namespace cohort
