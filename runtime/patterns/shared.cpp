#include "cohort/shared.hpp"

#include <fmt/format.h>

#include "cohort/errors.hpp"

#include "runtime/runtime.hpp"
#include "runtime/transport/shared_heap.hpp"

namespace cohort::detail {

std::span<std::byte> attach_shared(Communicator& comm, std::size_t bytes, std::size_t align,
                                   void (*init)(std::span<std::byte>, const void*),
                                   const void* init_context) {
  CommunicatorImpl& impl = comm.impl();
  if (!impl.runtime().segment_shared()) {
    throw Unsupported(fmt::format(
        "rank {}: shared objects (SharedArray, SharedValue, Lock, Semaphore, Event, Condition, "
        "Barrier, Queue, and pool_map's chunk counter) need every rank of the job on one node, and this "
        "MPI job spans several nodes (MPI backend); use messages and collectives between nodes",
        comm.rank()));
  }
  transport::SharedHeap heap(impl.runtime().segment().heap_area());
  return heap.attach(impl.next_shared_object_key(), bytes, align, init, init_context);
}

}  // namespace cohort::detail
