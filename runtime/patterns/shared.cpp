#include "cohort/shared.hpp"

#include "runtime/runtime.hpp"
#include "runtime/transport/shared_heap.hpp"

namespace cohort::detail {

std::span<std::byte> attach_shared(Communicator& comm, std::size_t bytes, std::size_t align,
                                   void (*init)(std::span<std::byte>, const void*),
                                   const void* init_context) {
  CommunicatorImpl& impl = comm.impl();
  transport::SharedHeap heap(impl.runtime().segment().heap_area());
  return heap.attach(impl.next_shared_object_key(), bytes, align, init, init_context);
}

}  // namespace cohort::detail
