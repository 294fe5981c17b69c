// Instructions per message of the message-rate pattern (bench/p2p/p2p_cohort message_rate), for
// callgrind: two p2p engines ("ranks" 0 and 1) on one segment in private memory, driven by ONE
// thread, so that nothing spins and every count is exact and repeatable whatever the load.
//
//   valgrind --tool=callgrind bench/rate_count [WINDOWS [MODE]]
//   callgrind_annotate --inclusive=yes callgrind.out.PID | grep -E 'sender_window|receiver_'
//
// A window is what one iteration of the benchmark does: rank 0 isends 64 messages of 8 bytes
// and waits for them; rank 1 irecvs 64 into one 8-byte buffer and waits for them; then rank 1
// sends a 4-byte ack that rank 0 receives. MODE `arrived` (default): rank 1 posts after the
// frames arrived; `posted`: rank 1 posts its receives first, then rank 0 sends, then rank 1
// waits. The phases are separate noinline functions: divide their inclusive cost by
// WINDOWS * 64 for instructions per message on each side.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cohort/request.hpp"
#include "runtime/p2p/engine.hpp"
#include "runtime/runtime.hpp"

namespace {

using namespace cohort;
constexpr int kWindow = 64;
constexpr int kTag = 1, kAck = 2;

struct Side {
  p2p::Engine* engine;
  detail::CommunicatorImpl* comm;
};

detail::RecvTarget span_target(char* p, std::size_t n) {
  detail::RecvTarget t;
  t.buffer = reinterpret_cast<std::byte*>(p);
  t.capacity = n;
  return t;
}

[[gnu::noinline]] void sender_window(Side s, std::vector<Request>& reqs, const char* buf) {
  for (int w = 0; w < kWindow; ++w) {
    reqs[static_cast<std::size_t>(w)] =
        s.engine->isend(*s.comm, 1, kTag, {reinterpret_cast<const std::byte*>(buf), 8, MessageFormat::raw, 0}, nullptr);
  }
  (void)wait_all(reqs);
}
[[gnu::noinline]] void receiver_post(Side s, std::vector<Request>& reqs, char* buf) {
  for (int w = 0; w < kWindow; ++w) reqs[static_cast<std::size_t>(w)] = s.engine->irecv(*s.comm, 0, kTag, span_target(buf, 8));
}
[[gnu::noinline]] void receiver_wait(std::vector<Request>& reqs) { (void)wait_all(reqs); }
[[gnu::noinline]] void ack(Side from, Side to) {
  int a = 1;
  from.engine->send(*from.comm, 0, kAck, {reinterpret_cast<const std::byte*>(&a), sizeof a, MessageFormat::raw, 0});
  (void)to.engine->recv(*to.comm, 1, kAck, span_target(reinterpret_cast<char*>(&a), sizeof a));
}

// Cache-line aligned, zero-filled memory.
std::span<std::byte> aligned(std::vector<std::byte>& raw, std::size_t n) {
  raw.assign(n + transport::kCacheLine, std::byte{0});
  auto p = reinterpret_cast<std::uintptr_t>(raw.data());
  auto* b = reinterpret_cast<std::byte*>((p + transport::kCacheLine - 1) / transport::kCacheLine * transport::kCacheLine);
  return {b, n};
}

}  // namespace

int main(int argc, char** argv) {
  const int windows = argc > 1 ? std::atoi(argv[1]) : 1000;
  const bool posted_first = argc > 2 && std::string(argv[2]) == "posted";
  std::vector<std::byte> raw;
  constexpr std::size_t kHeap = std::size_t{1} << 20;
  const std::size_t bytes = transport::segment_layout(2, kHeap).total_bytes;
  transport::Segment segment = transport::Segment::format(aligned(raw, bytes), 2, 1, false, kHeap);
  transport::Waiter w0(segment, 0, false), w1(segment, 1, false);
  p2p::Engine e0(segment, w0, 0, 2), e1(segment, w1, 1, 2);
  // The engine never touches the runtime behind a communicator.
  alignas(detail::Runtime) static std::byte fake[sizeof(detail::Runtime)];
  auto& rt = *reinterpret_cast<detail::Runtime*>(fake);
  detail::CommunicatorImpl c0(rt, 0, {0, 1}, 0), c1(rt, 0, {0, 1}, 1);
  Side s0{&e0, &c0}, s1{&e1, &c1};
  std::vector<Request> sreqs(kWindow), rreqs(kWindow);
  char sbuf[8] = "message", rbuf[8] = {};
  for (int i = 0; i < windows; ++i) {
    if (posted_first) {
      receiver_post(s1, rreqs, rbuf);
      sender_window(s0, sreqs, sbuf);
    } else {
      sender_window(s0, sreqs, sbuf);
      receiver_post(s1, rreqs, rbuf);
    }
    receiver_wait(rreqs);
    ack(s1, s0);
  }
  if (std::memcmp(rbuf, sbuf, 8) != 0) {
    std::fprintf(stderr, "rate_count: wrong payload\n");
    return 1;
  }
  std::printf("rate_count: %d windows of %d messages (%s)\n", windows, kWindow,
              posted_first ? "posted first" : "arrived first");
  return 0;
}
