// Transport layer: the collective area of the job segment, used by the shared-memory collectives
// (runtime/collectives). Pure data over memory it does not own.
//
// Every rank owns one block, indexed by world rank. A rank PUBLISHES into its own block only;
// other ranks read it and say they are done by bumping a counter in it. Because a rank is in at
// most one blocking collective at a time, one block per rank serves every communicator: each
// publication is tagged with a token (context id << 32 | per-communicator sequence number).
//
//   area:  CollectiveAreaHeader (1 line: context-id counter) | RankBlock[ranks]
//
//   RankBlock (block_bytes(ranks), a multiple of 64):
//     +0      CollectiveMain[kMains]  2 lines each: token (published last), descriptor (kind,
//                                root, bytes, element size, operation id, chunk size, first chunk
//                                number, wake-up count) and kCollectiveInlineBytes of payload. A call
//                                with sequence number s uses main s % kMains, so a root can
//                                publish 64 small broadcasts before the first is read.
//     +8192   main_consumed[kMains]   1 line each: bumped by each reader when done with the main
//     +12288  SlotHeader[kMaxSlots] 1 line each: chunk number + 1 once the chunk's data is written
//     +13312  slot_consumed[kMaxSlots]  1 line each: bumped by each reader of the slot's chunk
//     +14336  data[slots(ranks)][chunk_bytes(ranks)]  staging buffers (payloads above the inline
//                                size are pipelined through them in chunks)
//     then    released[ranks]    8 bytes each, rounded up to a line: how many of rank p's
//                                publications (main lines and chunks) this rank had released
//                                when it ended its Environment (written then, by this rank
//                                only). A publisher waiting for its readers compares it with
//                                what it announced to a reader that has exited, so that a reader
//                                which released everything and then exited is not taken for one
//                                that never will (Call::lost_reader).
//
// Memory per rank: 14 KiB + slots(ranks) x chunk_bytes(ranks) + 8 x ranks (rounded to 64):
//   up to 8 ranks   16 x 128 KiB = 2 MiB   (16.1 MiB for an 8-rank job)
//   up to 16 ranks   8 x 64 KiB = 512 KiB  (8.2 MiB for a 16-rank job)
//   up to 64 ranks   4 x 32 KiB = 128 KiB  (8.9 MiB for a 64-rank job)
//   above            4 x 16 KiB =  64 KiB
// Why a large ring at small rank counts: a writer that re-fills a staging buffer whose lines a
// reader still holds in its L2 pays a cross-core invalidation per line. On the 2-core AMD EPYC
// (Zen 4, KVM) host, a 1 MiB broadcast at 2 ranks took 2-3x longer through a 256 or 512 KiB
// ring than through a 1 or 2 MiB one (README, Collectives > How it works).
//
// Concurrency: the owner writes CollectiveMain, SlotHeader and data; any rank may fetch_add the
// consumed counters; the context counter is fetch_add'ed by any rank (split/dup leaders).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/transport/segment.hpp"

namespace cohort::transport {

/// Upper bound of the staging slots per rank (the slot headers are laid out for this many).
inline constexpr std::size_t kCollectiveMaxSlots = 16;
/// Main lines per rank. 64 rather than 16: a root (or a reduce/gather member) runs that many
/// small calls ahead before it waits for its readers, so when ranks outnumber cores the readers
/// catch up 64 calls per time slice instead of 16. Measured (np=4 / 8 on 2 cores, back-to-back
/// 8 B calls, medians of 5 alternations): broadcast 0.32x / 0.43x of the time with 16 mains,
/// reduce 0.45x / 0.43x, gather (np=8) 0.50x; barrier and allreduce, which synchronise every
/// call, unchanged. Costs 9 KiB more per rank.
inline constexpr std::size_t kCollectiveMains = 64;
inline constexpr std::size_t kCollectiveInlineBytes = 72;

/// Chunk (staging buffer) size per slot for a job of `ranks` ranks.
std::size_t collective_chunk_bytes(int ranks);

/// Staging slots per rank for a job of `ranks` ranks (<= kCollectiveMaxSlots).
std::size_t collective_slots(int ranks);

/// Bytes of one rank's block.
std::size_t collective_block_bytes(int ranks);

/// Bytes of the collective area for `ranks` ranks (pure function).
std::size_t collective_area_bytes(int ranks);

/// Formats a zero-filled collective area of collective_area_bytes(ranks) bytes.
void format_collective_area(std::span<std::byte> area, int ranks);

struct alignas(kCacheLine) CollectiveAreaHeader {
  std::atomic<std::uint32_t> next_context;  // last context id handed out (world is 0)
};

/// The publication lines of one rank. Plain fields are written by the owner before `token`
/// (release) and read by others only after they loaded the token they expect (acquire).
struct alignas(kCacheLine) CollectiveMain {
  std::atomic<std::uint64_t> token;  // (context << 32) | sequence; 0 = nothing yet
  std::uint32_t step;
  std::uint16_t kind;
  std::uint16_t flags;
  std::int32_t root;
  std::uint32_t op_id;
  std::uint64_t bytes;
  std::uint32_t chunk_bytes;
  std::uint32_t elem_bytes;
  std::uint64_t first_chunk;
  std::uint64_t wake_at;  // main_consumed value the publication's last reader reaches: only it
                          // wakes the owner (kept here, in a line the owner writes anyway)
  std::byte inline_data[kCollectiveInlineBytes];
};
static_assert(sizeof(CollectiveMain) == 2 * kCacheLine);

struct alignas(kCacheLine) CollectiveCounter {
  std::atomic<std::uint64_t> value;  // bumped by each reader (Call::release in collectives.cpp)
};

struct alignas(kCacheLine) CollectiveSlotHeader {
  std::atomic<std::uint64_t> chunk;   // global chunk number + 1 of the data in the slot
  std::atomic<std::uint64_t> result;  // chunk number + 1 once the owner's reduced segment is in
  std::uint64_t wake_at;              // as CollectiveMain::wake_at, for slot_consumed
  std::uint32_t bytes;
  std::uint32_t releases;             // how many releases the chunk in the slot gets (1: one
                                      // reader, which may release with a plain store)
};

/// A view of the collective area.
class CollectiveArea {
 public:
  CollectiveArea() = default;
  CollectiveArea(std::span<std::byte> area, int ranks) noexcept
      : base_(area.data()), ranks_(ranks), chunk_bytes_(collective_chunk_bytes(ranks)),
        slots_(collective_slots(ranks)), block_bytes_(collective_block_bytes(ranks)) {}

  [[nodiscard]] std::size_t chunk_bytes() const noexcept { return chunk_bytes_; }
  [[nodiscard]] std::size_t slots() const noexcept { return slots_; }
  /// The slot that global chunk number g of a rank's stream goes through.
  [[nodiscard]] std::size_t slot_of(std::uint64_t g) const noexcept { return g % slots_; }
  [[nodiscard]] CollectiveAreaHeader& header() const noexcept {
    return *reinterpret_cast<CollectiveAreaHeader*>(base_);
  }
  [[nodiscard]] CollectiveMain& main(int rank, std::size_t m) const noexcept {
    return reinterpret_cast<CollectiveMain*>(block(rank))[m];
  }
  [[nodiscard]] CollectiveCounter& main_consumed(int rank, std::size_t m) const noexcept {
    return reinterpret_cast<CollectiveCounter*>(block(rank) + kMainConsumed)[m];
  }
  [[nodiscard]] CollectiveSlotHeader& slot(int rank, std::size_t s) const noexcept {
    return reinterpret_cast<CollectiveSlotHeader*>(block(rank) + kSlotHeaders)[s];
  }
  [[nodiscard]] CollectiveCounter& slot_consumed(int rank, std::size_t s) const noexcept {
    return reinterpret_cast<CollectiveCounter*>(block(rank) + kSlotConsumed)[s];
  }
  [[nodiscard]] std::byte* slot_data(int rank, std::size_t s) const noexcept {
    return block(rank) + kSlotData + s * chunk_bytes_;
  }
  /// How many reads of world rank `publisher`'s publications world rank `reader` has released.
  [[nodiscard]] std::atomic<std::uint64_t>& released(int reader, int publisher) const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(
        block(reader) + kSlotData + slots_ * chunk_bytes_)[publisher];
  }

  static constexpr std::size_t kMainConsumed = kCollectiveMains * sizeof(CollectiveMain);
  static constexpr std::size_t kSlotHeaders = kMainConsumed + kCollectiveMains * kCacheLine;
  static constexpr std::size_t kSlotConsumed = kSlotHeaders + kCollectiveMaxSlots * kCacheLine;
  static constexpr std::size_t kSlotData = kSlotConsumed + kCollectiveMaxSlots * kCacheLine;
  static_assert(kMainConsumed == 8192 && kSlotHeaders == 12288 && kSlotConsumed == 13312 &&
                    kSlotData == 14336,
                "update the layout at the top of this file");

 private:
  [[nodiscard]] std::byte* block(int rank) const noexcept {
    return base_ + kCacheLine + static_cast<std::size_t>(rank) * block_bytes_;
  }
  std::byte* base_ = nullptr;
  int ranks_ = 0;
  std::size_t chunk_bytes_ = 0;
  std::size_t slots_ = 1;
  std::size_t block_bytes_ = 0;
};

}  // namespace cohort::transport
