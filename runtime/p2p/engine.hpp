// Point-to-point layer: the progress engine of one rank.
//
// Sending: messages of at most eager_max_bytes travel whole in the pair's slot ring; larger ones
// put a header frame (flag kLarge, 8-byte total size) in the ring and stream their payload
// through the pair's byte stream in chunks, so sender and receiver copy at the same time.
// Sends to one destination leave in order (a FIFO per destination); a send to self is matched
// or buffered locally.
//
// Receiving: every progress call looks at each incoming ring (round-robin start, so any-source
// receives serve all senders fairly). A frame is matched against the posted receives in post
// order. A frame nobody has asked for stays in its ring (a receive posted later takes it from
// there, a large one streams straight into the user's buffer) until some posted receive or probe
// could want a later message from that sender, or this rank has been blocked for a while: then it
// moves to the unexpected queue (private memory), so blocked ranks never wait on each other's
// full rings.
//
// Single-threaded: only the owning rank's thread calls an Engine.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "runtime/p2p/operation.hpp"
#include "runtime/p2p/stream_mode.hpp"
#include "runtime/transport/cross_memory.hpp"
#include "runtime/transport/mailboxes.hpp"
#include "runtime/transport/segment.hpp"
#include "runtime/transport/trace.hpp"
#include "runtime/transport/waiter.hpp"

namespace cohort::p2p {

using detail::Operation;

/// Frame flags.
inline constexpr std::uint8_t kLarge = 1;

/// Raw messages at least this large are offered as split copies: the receiver reads the first
/// half straight out of the sender's buffer while the sender writes the second half straight
/// into the receiver's (process_vm_readv / process_vm_writev), instead of both halves going
/// through the pair's stream (engine.cpp, push_sends and on_frame).
inline constexpr std::size_t kSplitMinBytes = 64 * 1024;

class Engine {
 public:
  Engine(const transport::Segment& segment, transport::Waiter& waiter, int self, int size);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  [[nodiscard]] const transport::MailboxLayout& layout() const noexcept { return boxes_.layout(); }
  [[nodiscard]] std::size_t chunk_bytes() const noexcept { return chunk_; }

  // The public operations; ranks are world ranks, validated by the caller.
  // Tracing off (the usual case) costs one predictable branch on a cached pointer here.
  void send(detail::CommunicatorImpl& comm, int dest, int tag, const detail::SendBuffer& b) {
    if (trace_.on()) [[unlikely]] {
      traced_send(comm, dest, tag, b);
      return;
    }
    send_now(comm, dest, tag, b);
  }
  Request isend(detail::CommunicatorImpl& comm, int dest, int tag, const detail::SendBuffer& b,
                std::shared_ptr<const void> keep_alive) {
    if (trace_.on()) [[unlikely]] return traced_isend(comm, dest, tag, b, std::move(keep_alive));
    return isend_now(comm, dest, tag, b, std::move(keep_alive));
  }
  Status recv(detail::CommunicatorImpl& comm, int source, int tag, const detail::RecvTarget& t);
  Request irecv(detail::CommunicatorImpl& comm, int source, int tag, const detail::RecvTarget& t);
  std::optional<Status> iprobe(detail::CommunicatorImpl& comm, int source, int tag);
  Status probe(detail::CommunicatorImpl& comm, int source, int tag);

  /// Blocks until `op` is done (throws its error). Advances everything meanwhile.
  void wait(Operation& op);
  /// Blocks until all / any of `ops` (non-null) are done.
  void wait_all(std::span<Operation* const> ops);
  std::size_t wait_any(std::span<Operation* const> ops);
  /// Advances everything once.
  void poll() { progress(false); }
  /// Removes an unmatched receive; returns false if it already matched.
  bool cancel(Operation& op) noexcept;
  /// A pooled operation for a Request, and its return (Request owns it in between).
  Operation* acquire();
  void release(Operation* op) noexcept;

  /// Split copies (kSplitMinBytes): whether this rank offers them (on unless COHORT_CMA=0; a copy
  /// the kernel refuses turns it off, and the message still arrives, through the stream).
  [[nodiscard]] transport::CrossMemoryCopier& cross_memory() noexcept { return cross_memory_; }
  /// Messages this rank sent or received whose both halves crossed with a split copy.
  [[nodiscard]] std::uint64_t split_copies() const noexcept { return split_copies_; }
  /// Fixes whether this rank takes the split copies offered to it, as COHORT_P2P_SPLIT does
  /// (tests of one way), instead of SplitModeChooser's measured choice for large messages.
  void fix_split(bool take) noexcept { forced_split_ = take ? 1 : 0; }

  /// Advances outstanding non-blocking operations (queued sends, posted receives, payloads in
  /// flight) while this rank waits in something other than point-to-point (a collective, a
  /// Queue): the Waiter's background work. Nothing to do costs three comparisons. Returns true
  /// while sends, posted receives or payloads remain outstanding.
  bool background_progress() {
    if (blocking_) return false;
    if (active_sends_ == 0 && posted_.empty() && transfers_ == 0 && unwoken_.empty()) return false;
    progress(false);
    return active_sends_ != 0 || !posted_.empty() || transfers_ != 0;
  }

 private:
  struct Envelope {
    std::uint32_t context;
    int source;  // world rank
    int tag;
  };
  struct Unexpected {
    Envelope env;
    std::uint8_t kind;
    std::uint32_t fingerprint;
    std::size_t bytes;
    std::unique_ptr<std::byte[]> data;
    bool complete;
    std::uint32_t seq = 0;  // cohortrun --trace: the message's number on its pair
  };
  struct Transfer {  // a large message arriving through a stream
    Envelope env;
    std::byte* dest;  // null: discard
    std::size_t total;
    std::size_t remaining;
    Operation* op;        // deliver to this receive, or
    Unexpected* entry;    // to this unexpected entry, or neither (discard)
    bool nt = false;      // the sender streams it with non-temporal stores
    // Timed (stream_mode.hpp): when it reached the front, or for a split copy when its offer
    // was answered.
    std::uint64_t started_ns = 0;
    // A split copy in flight: this rank's half is in (or not: read_ok), the sender's is awaited
    // (ProducerLine::split_written); then [dest + total - remaining, ...) of what the refused
    // copies left, if anything, streams like any transfer.
    bool split = false;
    bool read_ok = false;
    bool written_known = false;  // the sender's outcome, noted before a later offer replaced it
    bool wrote = false;
    std::uint64_t offer = 0;
    std::size_t message_bytes = 0;  // the whole message (total is the streamed part's size)
    bool split_choice = false;  // timed for the choice between split and stream (SplitModeChooser)
  };
  struct Incoming {
    transport::RingConsumer ring;
    transport::StreamConsumer stream;
    std::deque<Transfer> transfers;
    StreamModeChooser modes;
    SplitChoices splits;             // take a split offer, or stream it (when the choice is ours)
    transport::PairView pair;       // its ProducerLine / ConsumerLine: split copies
    std::uint64_t split_offers = 0;  // split offers seen from this source
  };
  struct Outgoing {
    transport::RingProducer ring;
    transport::StreamProducer stream;
    std::deque<Operation*> queue;
    transport::PairView pair;
    std::uint64_t split_offers = 0;  // split offers made to this destination
  };

  bool progress(bool drain_all);
  bool push_sends(int dest);
  void send_now(detail::CommunicatorImpl& comm, int dest, int tag, const detail::SendBuffer& b);
  Request isend_now(detail::CommunicatorImpl& comm, int dest, int tag, const detail::SendBuffer& b,
                    std::shared_ptr<const void> keep_alive);
  Status receive(Operation& op);
  void traced_send(detail::CommunicatorImpl& comm, int dest, int tag, const detail::SendBuffer& b);
  Request traced_isend(detail::CommunicatorImpl& comm, int dest, int tag,
                       const detail::SendBuffer& b, std::shared_ptr<const void> keep_alive);
  // cohortrun --trace/--stats (only called when trace_ is on): an event for one call.
  struct TraceScope;
  std::uint32_t next_sent_seq(int dest, std::size_t bytes) noexcept;
  std::uint32_t next_received_seq(int source) noexcept {
    return trace_.on() ? ++received_seq_[static_cast<std::size_t>(source)] : 0;
  }
  void traced_recv_complete(const Operation& op, int source, std::size_t bytes) noexcept;
  bool blocking_ = false;   // inside block(): its own polls progress, the background need not
  int transfers_ = 0;       // large payloads being pulled through streams (all sources)
  // An eager message's frame; a raw one goes straight to the ring's prefix-less write.
  bool write_eager(Outgoing& o, int tag, std::uint32_t context, const detail::SendBuffer& b) noexcept {
    if (b.format == MessageFormat::raw) return o.ring.try_write({tag, context, 0, 0}, std::span(b.data, b.bytes));
    return write_frame(o, tag, context, b, false);
  }
  // Writes the frame of a send: the whole message, or (large) the header of a streamed one.
  bool write_frame(Outgoing& o, int tag, std::uint32_t context, const detail::SendBuffer& b,
                   bool large, bool split = false) noexcept;
  // Split copies: where the halves meet (a page multiple), and one copy through the platform.
  static std::size_t split_at(std::size_t total) noexcept { return (total / 2) & ~std::size_t{4095}; }
  bool split_copy(bool to, int peer, void* remote, void* local, std::size_t bytes) noexcept;
  bool advance_split(int dest, Operation& op);
  bool finish_split(int source, Transfer& t);
  void note_written(Incoming& in) noexcept;
  bool poll_source(int source, bool drain_all);
  bool take_eager_raw(int source, const transport::FrameHeader& h);
  bool take_eager_serialized(int source, const transport::FrameHeader& h);
  [[nodiscard]] bool front_takes(int source, const transport::FrameHeader& h, std::size_t bytes) const noexcept;
  Operation& take_front(int source, const transport::FrameHeader& h, std::size_t bytes) noexcept;
  void finish_taken(Operation& op, int source, std::size_t bytes) noexcept;
  void decode_payload(Operation& op, int tag, std::span<const std::byte> payload);
  bool pump_stream(int source);
  // Returns false when the frame must stay in the ring (unmatched large message).
  bool on_frame(int source, const transport::FrameHeader& h, bool drain_all);
  void send_local(detail::CommunicatorImpl& comm, int tag, const detail::SendBuffer& b);

  void post(Operation& op);
  void unpost(Operation& op) noexcept;
  Operation* match_posted(const Envelope& env) noexcept;
  static bool matches(const Operation& op, const Envelope& env) noexcept;
  void take_unexpected(Operation& op, std::list<Unexpected>::iterator it);

  // Checks a matched message against the receive; nullptr when acceptable.
  std::exception_ptr validate(const Operation& op, const Envelope& env, std::uint8_t kind,
                              std::uint32_t fingerprint, std::size_t bytes) const;
  std::byte* destination(Operation& op, std::size_t bytes);
  void complete_recv(Operation& op, const Envelope& env, std::size_t bytes);
  void complete_send(Operation& op) noexcept;
  void fail(Operation& op, std::exception_ptr error) noexcept;

  template <class Done>
  void block(std::span<Operation* const> ops, Done&& done);
  int lost_peer(const Operation& op);

  [[nodiscard]] bool should_drain(int source) const noexcept {
    return posted_any_ + probing_any_ > 0 || posted_from_[static_cast<std::size_t>(source)] > 0 ||
           probing_from_[static_cast<std::size_t>(source)] > 0;
  }
  [[nodiscard]] bool alive(int rank) const noexcept { return segment_.alive(rank); }
  // Chunk size of a large message: a quarter of it (so that sender and receiver copy at the
  // same time even for the smallest ones), at least 4 KiB, at most chunk_.
  [[nodiscard]] std::size_t chunk_for(std::size_t total) const noexcept {
    std::size_t c = std::bit_floor(total / 4);
    return c < 4096 ? std::min<std::size_t>(4096, chunk_) : std::min(c, chunk_);
  }

  transport::Segment segment_;
  transport::Waiter& waiter_;
  transport::Mailboxes boxes_;
  int self_;
  int size_;
  std::size_t eager_max_;
  std::size_t chunk_;
  int forced_split_ = -1;  // COHORT_P2P_SPLIT: 0 or 1 fixes the choice of SplitModeChooser
  int forced_nt_ = -1;  // COHORT_P2P_STREAM_NT: 0 or 1 fixes the stream's store mode; -1: chosen
  transport::CrossMemoryCopier cross_memory_;
  std::uint64_t split_copies_ = 0;
  std::vector<Incoming> in_;
  std::vector<Outgoing> out_;
  std::vector<int> sources_;    // other ranks, polled round-robin
  std::size_t rr_ = 0;
  std::deque<Operation*> posted_;  // in post order (usually matched and removed from the front)
  std::vector<int> posted_from_;
  int posted_any_ = 0;
  std::vector<int> probing_from_;
  int probing_any_ = 0;
  std::list<Unexpected> unexpected_;  // in arrival order
  std::vector<std::byte> scratch_;    // blocking receives of serialized payloads
  int active_sends_ = 0;              // destinations with a non-empty queue
  std::uint64_t completed_ = 0;       // operations completed (published to the slot when waiting)
  std::vector<std::unique_ptr<Operation>> pool_;  // free operations
  Operation* live_ = nullptr;  // operations handed out by acquire(), not yet released
  std::vector<int> unwoken_;          // destinations written to without a fenced wake check
  std::vector<std::uint8_t> is_unwoken_;
  void flush_wakes() noexcept;
  // cohortrun --trace/--stats: this rank's trace block (off: every check is one branch), and the
  // number of messages sent to / taken from each peer so far. Rings are FIFO per pair, so the
  // k-th message a rank sends to a peer is the k-th that peer takes off that ring: the numbers
  // pair each send with its receive (trace flows) without widening the frame header.
  transport::RankTrace trace_;
  std::vector<std::uint32_t> sent_seq_;
  std::vector<std::uint32_t> received_seq_;
};

}  // namespace cohort::p2p
