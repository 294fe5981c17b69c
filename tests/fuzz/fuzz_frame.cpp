// Fuzz: p2p ring frames as the receiving rank reads them (runtime/transport/ring.hpp RingConsumer
// over slots another process wrote, runtime/p2p/frame.hpp decode_frame, as Engine::on_frame).
#include <cstring>
#include <vector>

#include "cohort/errors.hpp"
#include "runtime/p2p/frame.hpp"
#include "runtime/transport/ring.hpp"
#include "tests/fuzz/fuzz_target.hpp"

COHORT_FUZZ_TARGET(frame) {
  using namespace cohort;
  fuzz::Input in(data, size);
  // A ring of 16 slots (512 bytes) filled from the input; the consumer walks it as on_frame does.
  constexpr std::size_t kSlots = 16;
  alignas(64) std::byte slots[kSlots * transport::kSlotBytes] = {};
  std::memcpy(slots, in.rest(), std::min(sizeof slots, in.left()));
  transport::ProducerLine producer{};
  transport::ConsumerLine consumer{};
  transport::PairView view{&producer, &consumer, slots, kSlots, nullptr, 0};
  transport::RingConsumer ring(view);
  std::vector<std::byte> payload;
  for (int frames = 0; frames < 64; ++frames) {
    const transport::FrameHeader* h = ring.peek();
    if (h == nullptr) break;
    std::byte prefix[p2p::kFramePrefixBytes];
    std::size_t prefix_bytes = std::min(h->bytes(), sizeof prefix);
    ring.read(prefix, prefix_bytes);
    p2p::FrameLayout f;
    try {
      f = p2p::decode_frame(*h, {prefix, prefix_bytes}, sizeof slots, 0, 1);
    } catch (const DeserializeError&) {
      break;  // the runtime reports it to the receiving call
    }
    COHORT_FUZZ_CHECK(f.total <= p2p::kMaxMessageBytes);
    if (!f.large) {
      COHORT_FUZZ_CHECK(f.data_at + f.total == h->bytes());
      payload.resize(f.total);
      if (f.total != 0) ring.read(payload.data(), f.total, f.data_at);
    } else {
      // size word [fingerprint] [address of a split copy's sender buffer: raw messages only]
      COHORT_FUZZ_CHECK(h->bytes() == (f.split ? 16u : 8u) + (h->kind() != 0 ? 4u : 0u));
      COHORT_FUZZ_CHECK(!f.split || h->kind() == 0);
    }
    ring.consume(h);
    ring.publish();
  }
  return 0;
}
