// Point-to-point layer: one pending send or receive (the state behind a cohort::Request).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include "cohort/p2p.hpp"
#include "cohort/status.hpp"

namespace cohort::p2p {
class Engine;
}

namespace cohort::detail {

struct Operation {
  enum class Kind : std::uint8_t { send, recv };

  Kind kind = Kind::recv;
  bool done = false;
  bool posted = false;           // recv: in the engine's posted list
  bool queued = false;           // send: in the engine's send queue
  p2p::Engine* engine = nullptr;
  CommunicatorImpl* comm = nullptr;
  int peer = -1;                 // world rank: destination, or source (-1: any)
  int tag = -1;                  // -1: any (receives)
  int matched_source = -1;       // recv: world rank of the matched sender, once known
  bool blocking = false;         // recv: a blocking recv (not a Request)
  std::uint32_t trace_seq = 0;   // cohortrun --trace: the message's number on its pair
  Status status;
  std::exception_ptr error;

  // Receive.
  RecvTarget target;
  std::vector<std::byte>* storage = nullptr;  // serialized payloads land here
  std::vector<std::byte> own_storage;

  // Send.
  SendBuffer buffer;
  std::shared_ptr<const void> keep_alive;
  bool header_sent = false;
  std::size_t streamed = 0;      // streamed up to here
  std::size_t stream_from = 0;   // the part that goes through the stream: [stream_from,
  std::size_t stream_end = 0;    // stream_end): all of a large message, or what a split left
  // A large raw send that offered a split copy (engine.cpp, push_sends).
  enum class Split : std::uint8_t { none, offered, written };
  Split split = Split::none;
  bool split_wrote = false;      // written: the kernel copied this side's half

  // The engine's list of the operations it handed to Requests (Engine::acquire), so that an
  // engine that ends first can detach them (Engine::~Engine). Not touched by reset().
  Operation* live_prev = nullptr;
  Operation* live_next = nullptr;

  /// Back to the state of a fresh operation, keeping allocated capacity (pooled reuse). `peer`,
  /// `tag`, `comm`, `kind` and the side's `target` or `buffer` are set by whoever acquires it
  /// (Engine::irecv, Engine::isend_now) before any use; the other side's member is never read.
  void reset() noexcept {
    done = posted = queued = header_sent = false;
    matched_source = -1;
    blocking = false;
    trace_seq = 0;
    status = Status{};
    if (error) error = nullptr;
    storage = nullptr;
    own_storage.clear();
    if (keep_alive) keep_alive.reset();
    streamed = 0;
    stream_from = stream_end = 0;
    split = Split::none;
    split_wrote = false;
  }
};

}  // namespace cohort::detail
