/// @file cohort/communicator.hpp
/// A group of ranks that exchange messages. `world()` holds every rank of the job.
///
/// Example:
/// @code
///   cohort::Environment env(argc, argv);
///   cohort::Communicator& world = env.world();
///   std::printf("rank %d of %d\n", world.rank(), world.size());
/// @endcode
#pragma once

#include <memory>
#include <optional>  // collectives
#include <span>      // collectives
#include <string>    // collectives
#include <vector>    // collectives

#include "cohort/reduce_ops.hpp"  // collectives
#include "cohort/detail/p2p_traits.hpp"  // p2p
#include "cohort/request.hpp"             // p2p
#include "cohort/status.hpp"              // p2p
#include "cohort/tag.hpp"                 // p2p

namespace cohort {

namespace detail {
class CommunicatorImpl;
}
class CollectiveRequest;  // collectives: cohort/collectives.hpp

/// A communicator: a set of ranks with its own message space. Cheap to copy (shared handle).
/// Thread safety: one thread per rank calls into a communicator at a time.
class Communicator {
 public:
  /// This process's rank in the communicator, 0 .. size()-1.
  [[nodiscard]] int rank() const noexcept;
  /// Number of ranks in the communicator.
  [[nodiscard]] int size() const noexcept;

  // ---- point-to-point (begin; defined in cohort/p2p.hpp, documented there) ----------------
  // `dest`/`source` are ranks in this communicator; tags are 0 .. Tag::kMax.
  /// Sends `data` to `dest` (raw bytes, cereal or Boost, chosen from T). Returns when `data` may
  /// be reused. Sending to yourself is allowed and never blocks.
  template <class T>
  void send(const T& data, int dest, Tag tag = Tag{0});
  /// Receives into `out`: a std::span (payload at most its size), a std::vector/std::string
  /// (resized), a single object, or a serializable type (decoded).
  template <class T>
    requires detail::RecvArgument<T>
  Status recv(T&& out, int source = any_source, Tag tag = any_tag);
  /// Receives and returns a T: `auto v = comm.recv<std::vector<int>>(0, Tag{1});`
  template <class T>
  T recv(int source = any_source, Tag tag = any_tag, Status* status = nullptr);
  /// Starts a send; `data` must stay alive and unchanged until the request completes.
  template <class T>
  Request isend(const T& data, int dest, Tag tag = Tag{0});
  /// Starts a send of a temporary, which the request keeps alive.
  template <class T>
    requires(!std::is_lvalue_reference_v<T>)
  Request isend(T&& data, int dest, Tag tag = Tag{0});
  /// Starts a receive into `out` (as for recv), which must stay alive until it completes.
  template <class T>
    requires detail::RecvArgument<T>
  Request irecv(T&& out, int source = any_source, Tag tag = any_tag);
  /// Waits for a matching message and returns its envelope without receiving it.
  Status probe(int source = any_source, Tag tag = any_tag);
  /// The envelope of a matching message if one has arrived, else std::nullopt.
  std::optional<Status> iprobe(int source = any_source, Tag tag = any_tag);
  /// Sends to `dest` and receives from `source` at once; a ring shift with it never deadlocks.
  template <class S, class R>
    requires detail::RecvArgument<R>
  Status sendrecv(const S& send_data, int dest, Tag send_tag, R&& recv_out, int source,
                  Tag recv_tag);
  // ---- point-to-point (end) ---------------------------------------------------------------

  // ---- collectives (begin; defined in cohort/collectives.hpp, documented there) ----------
  /// Blocks until every rank of the communicator has called barrier().
  void barrier();
  /// Broadcasts `value` (or the buffer's elements) from `root` to every rank.
  template <detail::CollectiveValue T>
  void broadcast(T& value, int root);
  template <detail::MutableCollectiveBuffer R>
  void broadcast(R&& data, int root);
  /// Resizes the vector / string to the root's size on the other ranks.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  void broadcast(std::vector<T>& data, int root);
  void broadcast(std::string& data, int root);
  /// Any other type Cohort can send (cereal or Boost.Serialization, containers of strings...):
  /// serialized at the root, decoded everywhere else.
  template <detail::SerializedCollectiveValue T>
  void broadcast(T& value, int root);

  /// Combines every rank's value in rank order; the result is meaningful at `root` only (the
  /// other ranks get their own `value` back).
  template <detail::CollectiveValue T, class Op>
  T reduce(const T& value, Op op, int root);
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
  void reduce(const In& in, Out&& out, Op op, int root);
  template <detail::MutableCollectiveBuffer R, class Op>
  void reduce(R&& inout, Op op, int root);

  /// Combines every rank's value in rank order; every rank gets the (bit-identical) result.
  template <detail::CollectiveValue T, class Op>
  T allreduce(const T& value, Op op);
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
  void allreduce(const In& in, Out&& out, Op op);
  template <detail::MutableCollectiveBuffer R, class Op>
  void allreduce(R&& inout, Op op);

  /// Inclusive prefix: rank r gets x0 op x1 op ... op xr.
  template <detail::CollectiveValue T, class Op>
  T scan(const T& value, Op op);
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
  void scan(const In& in, Out&& out, Op op);
  /// Exclusive prefix: rank r > 0 gets x0 op ... op x(r-1); rank 0's result is left unchanged
  /// (`value` itself for the value form, `out` untouched for the buffer form).
  template <detail::CollectiveValue T, class Op>
  T exscan(const T& value, Op op);
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
  void exscan(const In& in, Out&& out, Op op);
  /// Elementwise reduction of `in` (size() * out.size() elements); rank r gets block r.
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
  void reduce_scatter(const In& in, Out&& out, Op op);

  /// Root receives one value per rank, in rank order; other ranks get an empty vector.
  template <detail::CollectiveValue T>
  std::vector<T> gather(const T& value, int root);
  /// Serialized values (strings, cereal/Boost types) of different sizes.
  template <detail::SerializedCollectiveValue T>
  std::vector<T> gather(const T& value, int root);
  /// Root's `out` holds size() * in.size() elements (ignored elsewhere).
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
  void gather(const In& in, Out&& out, int root);
  /// Root's `counts[r]` elements from rank r, packed in rank order into `out`.
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
  void gatherv(const In& in, Out&& out, std::span<const std::size_t> counts, int root);
  /// Rank r gets element r of the root's `in` (size() elements; ignored elsewhere).
  template <detail::CollectiveBuffer In>
  detail::range_element_t<In> scatter(const In& in, int root);
  /// Rank r gets block r (out.size() elements) of the root's `in`.
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
  void scatter(const In& in, Out&& out, int root);
  /// Rank r gets `counts[r]` elements (root's counts; out.size() must match) of the packed `in`.
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
  void scatterv(const In& in, std::span<const std::size_t> counts, Out&& out, int root);
  /// Every rank gets every rank's value, in rank order.
  template <detail::CollectiveValue T>
  std::vector<T> allgather(const T& value);
  template <detail::SerializedCollectiveValue T>
  std::vector<T> allgather(const T& value);
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
  void allgather(const In& in, Out&& out);
  /// `counts[r]` elements from rank r (the same counts on every rank), packed in rank order.
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
  void allgatherv(const In& in, Out&& out, std::span<const std::size_t> counts);
  /// Block j of `in` goes to rank j; block i of `out` comes from rank i (equal blocks).
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
  void alltoall(const In& in, Out&& out);
  /// `send_counts[j]` elements to rank j, `recv_counts[i]` from rank i, packed in rank order.
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out>
  void alltoallv(const In& in, std::span<const std::size_t> send_counts, Out&& out,
                 std::span<const std::size_t> recv_counts);

  /// Splits into one communicator per `color`, members ordered by (key, rank). Returns
  /// std::nullopt on ranks that pass cohort::undefined. Collective over this communicator.
  [[nodiscard]] std::optional<Communicator> split(int color, int key = 0);
  /// A communicator with the same members and a separate message space. Collective.
  [[nodiscard]] Communicator dup();

  /// Non-blocking barrier, broadcast and allreduce: start now, complete with wait()/test().
  [[nodiscard]] CollectiveRequest ibarrier();
  template <detail::CollectiveValue T>
  [[nodiscard]] CollectiveRequest ibroadcast(T& value, int root);
  template <detail::MutableCollectiveBuffer R>
  [[nodiscard]] CollectiveRequest ibroadcast(R&& data, int root);
  template <detail::CollectiveValue T, class Op>
  [[nodiscard]] CollectiveRequest iallreduce(const T& value, T& result, Op op);
  template <detail::CollectiveBuffer In, detail::MutableCollectiveBuffer Out, class Op>
  [[nodiscard]] CollectiveRequest iallreduce(const In& in, Out&& out, Op op);
  // ---- collectives (end) ----------------------------------------------------------------

  /// Internal: wraps an implementation object.
  explicit Communicator(std::shared_ptr<detail::CommunicatorImpl> impl) noexcept
      : impl_(std::move(impl)) {}
  [[nodiscard]] detail::CommunicatorImpl& impl() const noexcept { return *impl_; }

 private:
  std::shared_ptr<detail::CommunicatorImpl> impl_;
};

}  // namespace cohort

#include "cohort/p2p.hpp"          // p2p: member template definitions
#include "cohort/collectives.hpp"  // collectives: member template definitions
