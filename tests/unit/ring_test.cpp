// The slot ring and byte stream with plain threads (meaningful under TSan), and the whole p2p
// engine of two "ranks" run as two threads over one segment in private memory.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "cohort/errors.hpp"
#include "runtime/p2p/engine.hpp"
#include "runtime/runtime.hpp"
#include "runtime/transport/mailboxes.hpp"
#include "runtime/transport/ring.hpp"

namespace cohort::transport {
namespace {

// Cache-line aligned, zero-filled memory.
struct Memory {
  explicit Memory(std::size_t n) : raw(n + kCacheLine) {}
  std::span<std::byte> span(std::size_t n) {
    auto p = reinterpret_cast<std::uintptr_t>(raw.data());
    auto* b = reinterpret_cast<std::byte*>((p + kCacheLine - 1) / kCacheLine * kCacheLine);
    return {b, n};
  }
  std::vector<std::byte> raw;
};

std::byte pattern(std::uint64_t i, std::size_t k) { return static_cast<std::byte>((i * 131 + k * 7) & 0xff); }

TEST(Mailboxes, LayoutScalesDownAndFitsDocker) {
  for (int n : {1, 2, 3, 8, 64, 128}) {
    MailboxLayout l = mailbox_layout(n);
    EXPECT_EQ(l.pairs, static_cast<std::size_t>(n) * static_cast<std::size_t>(n - 1));
    EXPECT_EQ(l.total_bytes, l.pairs * l.pair_bytes);
    EXPECT_LE(frame_slots(l.eager_max_bytes + 8), l.ring_bytes / kSlotBytes / 4);  // + prefix
    EXPECT_EQ(l.ring_bytes & (l.ring_bytes - 1), 0u);
    EXPECT_EQ(l.stream_bytes & (l.stream_bytes - 1), 0u);
  }
  EXPECT_LT(mailbox_area_bytes(64), std::size_t{40} << 20);
  EXPECT_GE(mailbox_layout(2).stream_bytes, mailbox_layout(64).stream_bytes);
}

TEST(Mailboxes, PairsDoNotOverlap) {
  const int n = 5;
  MailboxLayout l = mailbox_layout(n);
  Memory mem(l.total_bytes);
  auto area = mem.span(l.total_bytes);
  Mailboxes boxes(area, n);
  std::vector<std::byte*> starts;
  for (int s = 0; s < n; ++s) {
    for (int r = 0; r < n; ++r) {
      if (s == r) continue;
      PairView v = boxes.pair(s, r);
      EXPECT_GE(reinterpret_cast<std::byte*>(v.producer), area.data());
      EXPECT_LE(v.stream + v.stream_bytes, area.data() + area.size());
      starts.push_back(reinterpret_cast<std::byte*>(v.producer));
    }
  }
  std::sort(starts.begin(), starts.end());
  for (std::size_t i = 1; i < starts.size(); ++i) {
    EXPECT_GE(static_cast<std::size_t>(starts[i] - starts[i - 1]), l.pair_bytes);
  }
}

// A small ring (16 slots) wrapped thousands of times, frames of every size up to a quarter.
TEST(SlotRing, ThreadsExchangeFramesInOrder) {
  constexpr std::size_t kSlots = 32;
  constexpr std::uint64_t kFrames = 50000;
  constexpr std::size_t kMaxPayload = kSlots / 4 * kSlotBytes - kFrameHeaderBytes;
  Memory mem(2 * kCacheLine + kSlots * kSlotBytes);
  auto m = mem.span(2 * kCacheLine + kSlots * kSlotBytes);
  PairView v{new (m.data()) ProducerLine{}, new (m.data() + kCacheLine) ConsumerLine{},
             m.data() + 2 * kCacheLine, kSlots, nullptr, 0};
  std::thread producer([&] {
    RingProducer p(v);
    std::vector<std::byte> buf(kMaxPayload);
    for (std::uint64_t i = 0; i < kFrames; ++i) {
      std::size_t n = i % (kMaxPayload + 1);
      for (std::size_t k = 0; k < n; ++k) buf[k] = pattern(i, k);
      FrameMeta meta{static_cast<std::int32_t>(i), 7, 0, 0};
      // Some frames come in two pieces (prefix + payload), as the engine writes them.
      std::size_t cut = (i % 3 == 0) ? n / 2 : 0;
      while (!p.try_write(meta, {buf.data(), cut}, {buf.data() + cut, n - cut})) std::this_thread::yield();
    }
  });
  RingConsumer c(v);
  std::vector<std::byte> buf(kMaxPayload);
  std::uint64_t bad = 0;
  for (std::uint64_t i = 0; i < kFrames;) {
    const FrameHeader* h = c.peek();
    if (h == nullptr) {
      std::this_thread::yield();
      continue;
    }
    std::size_t n = i % (kMaxPayload + 1);
    if (h->bytes() != n || h->tag != static_cast<std::int32_t>(i) || h->context != 7) ++bad;
    c.read(buf.data(), h->bytes());
    for (std::size_t k = 0; k < h->bytes(); ++k) bad += buf[k] != pattern(i, k);
    c.consume(h);
    c.publish();
    (void)c.producer_needs_wake();
    ++i;
  }
  producer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(c.peek(), nullptr);
}

// A ring that is not zeroed behind the consumer's header slots: after every frame is consumed
// the consumer must see nothing at its head (a stale header keeps the `seq` of its own lap, a
// stale continuation slot was zeroed), through thousands of laps of mixed frame sizes (every
// position is a header in some laps and a continuation in others) and past the point where
// the 16-bit `seq` of a position repeats (2^15 / slots laps).
TEST(SlotRing, StaleSlotsAreNeverTakenForANewFrame) {
  for (std::size_t slots : {std::size_t{16}, std::size_t{64}}) {
    const std::size_t max_payload = slots / 4 * kSlotBytes - kFrameHeaderBytes;
    Memory mem(2 * kCacheLine + slots * kSlotBytes);
    auto m = mem.span(2 * kCacheLine + slots * kSlotBytes);
    PairView v{new (m.data()) ProducerLine{}, new (m.data() + kCacheLine) ConsumerLine{},
               m.data() + 2 * kCacheLine, slots, nullptr, 0};
    RingProducer p(v);
    RingConsumer c(v);
    std::vector<std::byte> buf(max_payload), got(max_payload);
    std::uint64_t x = 12345, positions = 0, written = 0, frames = 0, bad = 0;
    const std::uint64_t laps = 3 * (std::uint64_t{1} << 15) / slots;  // seq repeats every 2^15/slots laps
    while (positions < laps * slots) {
      // Mostly one-slot frames (a header slot every time), some up to a quarter of the ring.
      x = x * 6364136223846793005u + 1442695040888963407u;
      std::size_t n = (x >> 60) < 10 ? (x >> 33) % 21 : (x >> 33) % (max_payload + 1);
      // Up to three frames in flight: the consumer lags the producer.
      std::uint64_t ahead = (x >> 20) % 3 + 1;
      std::vector<std::uint64_t> tags;
      std::vector<std::vector<std::byte>> sent;
      for (std::uint64_t a = 0; a < ahead; ++a) {
        // The first word of each continuation slot holds the very seq a frame starting at that
        // slot one lap later would carry: taken unless the consumer zeroed it.
        for (std::size_t k = 0; k < n; ++k) buf[k] = static_cast<std::byte>(x >> (k % 8 * 8));
        for (std::size_t j = 1; j < frame_slots(n); ++j) {
          std::uint16_t later = frame_seq(written + j + slots);
          std::memcpy(buf.data() + j * kSlotBytes - kFrameHeaderBytes, &later, sizeof later);
        }
        FrameMeta meta{static_cast<std::int32_t>(frames + a), 3, 0, 0};
        if (!p.try_write(meta, std::span<const std::byte>(buf.data(), n))) break;
        written += frame_slots(n);
        tags.push_back(frames + a);
        sent.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      }
      for (std::size_t f = 0; f < tags.size(); ++f) {
        const FrameHeader* h = c.peek();
        if (h == nullptr || h->tag != static_cast<std::int32_t>(tags[f]) || h->bytes() != n) {
          ++bad;
          break;
        }
        c.read(got.data(), n);
        bad += n != 0 && std::memcmp(got.data(), sent[f].data(), n) != 0;
        positions += frame_slots(n);
        c.consume(h);
        c.publish();
        ++frames;
      }
      if (c.peek() != nullptr) ++bad;  // nothing new was written: the head slot is stale
      ASSERT_EQ(bad, 0u) << "slots " << slots << " frame " << frames;
    }
  }
}

// The producer fast (one-slot frames, no yield) against a consumer spinning on its head slot:
// with the header slots never zeroed, a stale one must never pass for the next frame.
TEST(SlotRing, ThreadsSmallFramesAtFullSpeed) {
  constexpr std::size_t kSlots = 64;
  constexpr std::uint64_t kFrames = 200000;
  Memory mem(2 * kCacheLine + kSlots * kSlotBytes);
  auto m = mem.span(2 * kCacheLine + kSlots * kSlotBytes);
  PairView v{new (m.data()) ProducerLine{}, new (m.data() + kCacheLine) ConsumerLine{},
             m.data() + 2 * kCacheLine, kSlots, nullptr, 0};
  auto size_of = [](std::uint64_t i) -> std::size_t { return i % 7 == 0 ? 20 + i % 100 : i % 21; };
  std::atomic<bool> stop{false};  // the consumer gave up: the producer must not wait forever
  std::thread producer([&] {
    RingProducer p(v);
    std::vector<std::byte> buf(128);
    for (std::uint64_t i = 0; i < kFrames; ++i) {
      std::size_t n = size_of(i);
      for (std::size_t k = 0; k < n; ++k) buf[k] = pattern(i, k);
      FrameMeta meta{static_cast<std::int32_t>(i), 7, 0, 0};
      while (!p.try_write(meta, std::span<const std::byte>(buf.data(), n))) {
        if (stop.load(std::memory_order_relaxed)) return;
      }
    }
  });
  RingConsumer c(v);
  std::vector<std::byte> buf(128);
  std::uint64_t bad = 0;
  for (std::uint64_t i = 0; i < kFrames;) {
    const FrameHeader* h = c.peek();
    if (h == nullptr) continue;
    std::size_t n = size_of(i);
    if (h->bytes() != n || h->tag != static_cast<std::int32_t>(i) || h->context != 7) {
      ++bad;
      stop = true;
      break;
    }
    c.read(buf.data(), n);
    for (std::size_t k = 0; k < n; ++k) bad += buf[k] != pattern(i, k);
    c.consume(h);
    if (i % 3 == 0) c.publish();  // publish in batches, as poll_source does
    (void)c.producer_needs_wake();
    ++i;
  }
  c.publish();
  producer.join();
  ASSERT_EQ(bad, 0u);
  EXPECT_EQ(c.peek(), nullptr);
}

class ByteStream : public ::testing::TestWithParam<bool> {};  // param: non-temporal writes

TEST_P(ByteStream, ThreadsMoveMegabytesInChunks) {
  constexpr std::size_t kBytes = 4096;
  constexpr std::size_t kTotal = std::size_t{8} << 20;
  Memory mem(2 * kCacheLine + kBytes);
  auto m = mem.span(2 * kCacheLine + kBytes);
  PairView v{new (m.data()) ProducerLine{}, new (m.data() + kCacheLine) ConsumerLine{}, nullptr,
             0, m.data() + 2 * kCacheLine, kBytes};
  std::vector<std::byte> src(kTotal);
  for (std::size_t i = 0; i < kTotal; ++i) src[i] = pattern(i, i >> 12);
  std::thread producer([&] {
    StreamProducer p(v);
    p.set_nontemporal(GetParam());
    std::size_t done = 0;
    while (done < kTotal) {
      std::size_t n = p.write(src.data() + done, std::min<std::size_t>(kTotal - done, 3001), 1024);
      if (n == 0) std::this_thread::yield();
      done += n;
    }
  });
  StreamConsumer c(v);
  std::vector<std::byte> dst(kTotal);
  std::size_t done = 0;
  while (done < kTotal) {
    std::size_t n = c.read(dst.data() + done, kTotal - done, 1024);
    if (n == 0) std::this_thread::yield();
    done += n;
    (void)c.producer_needs_wake();
  }
  producer.join();
  EXPECT_TRUE(dst == src);
}
INSTANTIATE_TEST_SUITE_P(Writes, ByteStream, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "NonTemporal" : "Cached"; });

TEST(ByteStreamLaps, ATransferIsWarmOnlyOnceItStartedAfterTheFirstLap) {
  // The choosers do not time a transfer that took bytes from the stream's first lap (pages
  // touched for the first time: 3-4 us a page on some guests).
  constexpr std::size_t kBytes = 4096;
  Memory mem(2 * kCacheLine + kBytes);
  auto m = mem.span(2 * kCacheLine + kBytes);
  PairView v{new (m.data()) ProducerLine{}, new (m.data() + kCacheLine) ConsumerLine{}, nullptr,
             0, m.data() + 2 * kCacheLine, kBytes};
  StreamProducer p(v);
  StreamConsumer c(v);
  std::vector<std::byte> buf(kBytes);
  auto move = [&](std::size_t n) {
    ASSERT_EQ(p.write(buf.data(), n, 1024), n);
    ASSERT_EQ(c.read(buf.data(), n, 1024), n);
  };
  move(3072);
  EXPECT_FALSE(c.warm_for(3072));  // all of it in the first lap
  move(2048);                      // 1024 B of it in the first lap, the rest in the second
  EXPECT_FALSE(c.warm_for(2048));
  EXPECT_TRUE(c.warm_for(1024));   // its last 1024 B were past the first lap
  move(2048);
  EXPECT_TRUE(c.warm_for(2048));
}

// Two engines ("ranks" 0 and 1) on one segment, one thread each.
class TwoRanks {
 public:
  TwoRanks() : mem_(segment_layout(2).total_bytes) {
    segment_ = Segment::format(mem_.span(segment_layout(2).total_bytes), 2, 1, true);
  }
  template <class F0, class F1>
  void run(F0&& f0, F1&& f1) {
    auto body = [&](int rank, auto&& f) {
      Waiter waiter(segment_, rank, true);
      p2p::Engine engine(segment_, waiter, rank, 2);
      // The engine never touches the runtime behind a communicator.
      alignas(detail::Runtime) static thread_local std::byte fake[sizeof(detail::Runtime)];
      detail::CommunicatorImpl comm(*reinterpret_cast<detail::Runtime*>(fake), 0, {0, 1}, rank);
      f(engine, comm);
    };
    std::thread t1([&] { body(1, f1); });
    body(0, f0);
    t1.join();
  }
  const Segment& segment() const { return segment_; }

 private:
  Memory mem_;
  Segment segment_;
};

detail::SendBuffer raw(const std::vector<std::byte>& v) {
  return {v.data(), v.size(), MessageFormat::raw, 0};
}
detail::RecvTarget into(std::vector<std::byte>& v) {
  detail::RecvTarget t;
  t.prepare = &detail::resize_container<std::vector<std::byte>>;
  t.ctx = &v;
  return t;
}

TEST(Engine, TwoThreadsMixedSizesBothWays) {
  TwoRanks job;
  const std::size_t stream = mailbox_layout(2).stream_bytes;
  std::vector<std::size_t> sizes{0, 1, 40, 41, 4095, 4096, 4097, stream - 1, stream + 1, 3 * stream};
  auto side = [&](p2p::Engine& e, detail::CommunicatorImpl& comm) {
    int me = comm.rank(), peer = 1 - me;
    std::vector<std::vector<std::byte>> out;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      out.emplace_back(sizes[i]);
      for (std::size_t k = 0; k < sizes[i]; ++k) out.back()[k] = pattern(i + 10 * static_cast<std::size_t>(me), k);
    }
    std::vector<Request> sends;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      sends.push_back(e.isend(comm, peer, static_cast<int>(i % 3), raw(out[i]), nullptr));
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      std::vector<std::byte> got;
      Status st = e.recv(comm, peer, static_cast<int>(i % 3), into(got));
      EXPECT_EQ(st.bytes, sizes[i]);
      for (std::size_t k = 0; k < got.size(); ++k) {
        if (got[k] != pattern(i + 10 * static_cast<std::size_t>(peer), k)) {
          ADD_FAILURE() << "rank " << me << " message " << i << " byte " << k;
          break;
        }
      }
    }
    wait_all(sends);
    // Blocking large sends both ways at once must not deadlock.
    e.send(comm, peer, 9, raw(out.back()));
    std::vector<std::byte> got;
    e.recv(comm, peer, 9, into(got));
    EXPECT_EQ(got.size(), out.back().size());
  };
  job.run(side, side);
}

TEST(Engine, PeerLostWhenTheOtherThreadFinishes) {
  TwoRanks job;
  job.run(
      [&](p2p::Engine& e, detail::CommunicatorImpl& comm) {
        std::vector<std::byte> got;
        EXPECT_THROW(e.recv(comm, 1, 0, into(got)), PeerLost);
      },
      [&](p2p::Engine&, detail::CommunicatorImpl&) {
        job.segment().slot(1).state.store(static_cast<std::uint32_t>(RankState::finished));
        job.segment().wake_all();
      });
}

}  // namespace
}  // namespace cohort::transport
