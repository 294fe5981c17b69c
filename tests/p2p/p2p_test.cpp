// Point-to-point semantics at every rank count (run by cohortrun at 1 2 3 4 7 8 ranks).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <cereal/types/map.hpp>

#include <cohort/cohort.hpp>
#include <cohort/p2p.hpp>

#include "runtime/p2p/engine.hpp"
#include "runtime/runtime.hpp"
#include "tests/support/rank_env.hpp"

namespace {

using cohort::any_source;
using cohort::any_tag;
using cohort::Tag;

cohort::Communicator& world() { return cohort::testing::env().world(); }

// A cereal type and a Boost type, both in one program.
struct Particle {
  std::string name;
  double mass = 0;
  std::vector<int> ids;
  template <class A>
  void serialize(A& ar) {
    ar(name, mass, ids);
  }
  bool operator==(const Particle&) const = default;
};

struct Cell {
  std::vector<double> values;
  std::string label;
  template <class A>
  void serialize(A& ar, unsigned /*version*/) {
    ar & values;
    ar & label;
  }
  bool operator==(const Cell&) const = default;
};

static_assert(cohort::format_of<Particle> == cohort::MessageFormat::cereal);
static_assert(cohort::format_of<Cell> == cohort::MessageFormat::boost);
static_assert(cohort::format_of<std::vector<int>> == cohort::MessageFormat::raw);
static_assert(cohort::format_of<std::string> == cohort::MessageFormat::raw);
static_assert(cohort::format_of<std::array<float, 3>> == cohort::MessageFormat::raw);
static_assert(cohort::format_of<std::map<int, std::string>> == cohort::MessageFormat::cereal);
static_assert(cohort::format_of<std::vector<std::string>> == cohort::MessageFormat::cereal);

// A type whose save and load disagree: load reads more than save wrote.
struct Liar {
  int x = 0;
  std::string unused;  // not trivially copyable, so it travels through cereal
  template <class A>
  void save(A& ar) const {
    ar(x);
  }
  template <class A>
  void load(A& ar) {
    std::string s;
    ar(x, s);
  }
};

// A type whose load throws something that is not a std::exception.
struct Thrower {
  int x = 0;
  std::string unused;  // travels through cereal
  template <class A>
  void save(A& ar) const {
    ar(x);
  }
  template <class A>
  void load(A& /*ar*/) {
    throw 7;
  }
};

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
  return v;
}

#ifdef COHORT_BACKEND_MPI
// Open MPI's protocol boundaries on one node (vader): eager up to 4 KiB, then rendezvous, and
// single-copy beyond its 32 KiB fragments.
std::size_t eager_max() { return 4096; }
std::size_t stream_bytes() { return 256 << 10; }
std::size_t chunk_bytes() { return 32 << 10; }
#else
std::size_t eager_max() { return cohort::detail::Runtime::current()->p2p().layout().eager_max_bytes; }
std::size_t stream_bytes() { return cohort::detail::Runtime::current()->p2p().layout().stream_bytes; }
std::size_t chunk_bytes() { return cohort::detail::Runtime::current()->p2p().chunk_bytes(); }
#endif

// Keeps tests apart: nobody starts a test before everyone has finished the previous one (a
// gather to rank 0 and a release, on a tag no test uses).
void sync() {
  auto& c = world();
  constexpr Tag kSync{Tag::kMax};
  if (c.rank() == 0) {
    for (int r = 1; r < c.size(); ++r) (void)c.recv<char>(r, kSync);
    for (int r = 1; r < c.size(); ++r) c.send('g', r, kSync);
  } else {
    c.send('s', 0, kSync);
    (void)c.recv<char>(0, kSync);
  }
}

class P2P : public ::testing::Test {
 protected:
  void SetUp() override { sync(); }
};

// Sizes across every protocol boundary.
std::vector<std::size_t> boundary_sizes() {
  std::vector<std::size_t> s{0, 1, 7, 8, 19, 20, 21, 51, 52, 53, 63, 64, 65, 1000};
  for (std::size_t b : {eager_max(), chunk_bytes(), stream_bytes(), 2 * stream_bytes()}) {
    s.push_back(b - 1);
    s.push_back(b);
    s.push_back(b + 1);
  }
  s.push_back(std::size_t{16} << 20);
  return s;
}

TEST_F(P2P, PingPongEverySizeAcrossProtocolBoundaries) {
  auto& c = world();
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (c.rank() > 1) return;
  int peer = 1 - c.rank();
  for (std::size_t n : boundary_sizes()) {
    auto expect = pattern(n, static_cast<unsigned>(n));
    if (c.rank() == 0) {
      c.send(std::span<const std::byte>(expect), peer, Tag{3});
      std::vector<std::byte> back;
      auto st = c.recv(back, peer, Tag{4});
      EXPECT_EQ(st.bytes, n);
      ASSERT_TRUE(back == expect) << "size " << n;
    } else {
      std::vector<std::byte> got;
      auto st = c.recv(got, peer, Tag{3});
      EXPECT_EQ(st.source, peer);
      EXPECT_EQ(st.tag, Tag{3});
      EXPECT_EQ(st.bytes, n);
      ASSERT_TRUE(got == expect) << "size " << n;
      c.send(got, peer, Tag{4});
    }
  }
}

TEST_F(P2P, ManySendersToOneAnySourceReceiver) {
  auto& c = world();
  constexpr int kPerSender = 300;
  if (c.rank() == 0) {
    std::vector<int> next(static_cast<std::size_t>(c.size()), 0);
    int total = (c.size() - 1) * kPerSender;
    for (int i = 0; i < total; ++i) {
      std::array<int, 2> msg{};
      auto st = c.recv(msg, any_source, Tag{9});
      ASSERT_EQ(msg[0], st.source);
      ASSERT_EQ(msg[1], next[static_cast<std::size_t>(st.source)]) << "order from " << st.source;
      ++next[static_cast<std::size_t>(st.source)];
    }
    for (int r = 1; r < c.size(); ++r) EXPECT_EQ(next[static_cast<std::size_t>(r)], kPerSender);
    EXPECT_FALSE(c.iprobe(any_source, Tag{9}).has_value());
  } else {
    for (int i = 0; i < kPerSender; ++i) c.send(std::array<int, 2>{c.rank(), i}, 0, Tag{9});
  }
}

TEST_F(P2P, AnySourceDoesNotStarveAnySender) {
  // Rank 1 floods rank 0 without pause; every other rank sends a single message. An any-source
  // receiver that kept serving rank 1 first would never see the others (the test would time out).
  auto& c = world();
  if (c.size() < 3) GTEST_SKIP() << "needs 3 ranks";
  if (c.rank() == 0) {
    int missing = c.size() - 2;
    while (missing > 0) {
      int x = 0;
      auto st = c.recv(x, any_source, Tag{21});
      if (st.source >= 2) {
        EXPECT_EQ(x, st.source * 1000);
        --missing;
      }
    }
    c.send(0, 1, Tag{22});  // stop
    while (c.recv<int>(1, Tag{21}) != -1) {
    }
  } else if (c.rank() == 1) {
    int i = 0;
    while (!c.iprobe(0, Tag{22})) c.send(i++, 0, Tag{21});
    (void)c.recv<int>(0, Tag{22});
    c.send(-1, 0, Tag{21});
  } else {
    c.send(c.rank() * 1000, 0, Tag{21});
  }
}

TEST_F(P2P, UnwantedMessagesDoNotBlockTheirSenderForever) {
  // Rank 1 sends more small messages to rank 0 than its ring holds, then tells rank 2 to go;
  // rank 0 meanwhile waits only for rank 2. Rank 0 must take rank 1's messages aside once it
  // has waited a while, or the three would deadlock.
  auto& c = world();
  if (c.size() < 3) GTEST_SKIP() << "needs 3 ranks";
  constexpr int kMessages = 5000;
  if (c.rank() == 0) {
    EXPECT_EQ(c.recv<int>(2, Tag{32}), 2);
    for (int i = 0; i < kMessages; ++i) ASSERT_EQ(c.recv<int>(1, Tag{31}), i);
  } else if (c.rank() == 1) {
    for (int i = 0; i < kMessages; ++i) c.send(i, 0, Tag{31});
    c.send(1, 2, Tag{33});
  } else if (c.rank() == 2) {
    (void)c.recv<int>(1, Tag{33});
    c.send(2, 0, Tag{32});
  }
}

TEST_F(P2P, RingsWrapManyTimesWithRandomTags) {
  auto& c = world();
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (c.rank() > 1) return;
  constexpr int kMessages = 20000;
  std::mt19937 rng(7);
  std::vector<int> tags(kMessages);
  for (int& t : tags) t = static_cast<int>(rng() % 5);
  if (c.rank() == 0) {
    for (int i = 0; i < kMessages; ++i) {
      std::vector<int> v(static_cast<std::size_t>(i % 37), i);
      c.send(v, 1, Tag{tags[static_cast<std::size_t>(i)]});
    }
  } else {
    // Receive tag by tag in a different order than sent: per tag the order must hold.
    for (int t = 4; t >= 0; --t) {
      for (int i = 0; i < kMessages; ++i) {
        if (tags[static_cast<std::size_t>(i)] != t) continue;
        std::vector<int> v;
        c.recv(v, 0, Tag{t});
        ASSERT_EQ(v.size(), static_cast<std::size_t>(i % 37));
        if (!v.empty()) {
          ASSERT_EQ(v[0], i);
        }
      }
    }
  }
}

// Serialized messages of every small size, so that frames end and wrap at every offset of the
// ring: the receive decodes a frame in place when it lies in one piece and from a copy when it
// wraps (engine.cpp, take_eager_serialized). Both formats; receives posted before and after
// arrival; the values and the order must hold.
TEST_F(P2P, SerializedMessagesWrapTheRingAtEveryOffset) {
  auto& c = world();
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (c.rank() > 1) return;
  constexpr int kMessages = 6000;
  auto particle = [](int i) {
    return Particle{std::string(static_cast<std::size_t>(i % 211), static_cast<char>('a' + i % 26)),
                    i * 0.5, std::vector<int>(static_cast<std::size_t>(i % 7), i)};
  };
  auto cell = [](int i) {
    return Cell{std::vector<double>(static_cast<std::size_t>(i % 13), i * 0.25),
                std::string(static_cast<std::size_t>(i % 29), 'z')};
  };
  if (c.rank() == 0) {
    for (int i = 0; i < kMessages; ++i) {
      if (i % 3 == 2) c.send(cell(i), 1, Tag{5});
      else c.send(particle(i), 1, Tag{5});
      if (i % 500 == 0) c.send(0, 1, Tag{6});  // lets the receiver fall behind, then catch up
    }
  } else {
    for (int i = 0; i < kMessages; ++i) {
      if (i % 500 == 0) (void)c.recv<int>(0, Tag{6});
      if (i % 3 == 2) {
        ASSERT_EQ(c.recv<Cell>(0, Tag{5}), cell(i)) << "message " << i;
      } else {
        ASSERT_EQ(c.recv<Particle>(0, Tag{5}), particle(i)) << "message " << i;
      }
    }
  }
}

TEST_F(P2P, NonBlockingStormWithWaitAny) {
  auto& c = world();
  const int n = c.size();
  constexpr int kEach = 20;
  std::vector<cohort::Request> reqs;
  std::vector<std::vector<int>> inbox(static_cast<std::size_t>(n * kEach));
  const std::size_t big = eager_max() + 100;
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < kEach; ++k) {
      reqs.push_back(c.irecv(inbox[static_cast<std::size_t>(r * kEach + k)], r, Tag{k}));
    }
  }
  std::vector<std::vector<int>> outbox;
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < kEach; ++k) {
      std::size_t len = (k % 2 == 0) ? 3 : big / sizeof(int);
      outbox.emplace_back(len, c.rank() * 1000 + k);
    }
  }
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < kEach; ++k) reqs.push_back(c.isend(outbox[static_cast<std::size_t>(r * kEach + k)], r, Tag{k}));
  }
  std::size_t completed = 0;
  std::size_t active = static_cast<std::size_t>(
      std::count_if(reqs.begin(), reqs.end(), [](const cohort::Request& q) { return q.active(); }));
  while (std::any_of(reqs.begin(), reqs.end(), [](const cohort::Request& q) { return q.active(); })) {
    cohort::wait_any(reqs);
    ++completed;
  }
  EXPECT_EQ(completed, active);
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < kEach; ++k) {
      const auto& v = inbox[static_cast<std::size_t>(r * kEach + k)];
      std::size_t len = (k % 2 == 0) ? 3 : big / sizeof(int);
      ASSERT_EQ(v.size(), len);
      ASSERT_EQ(v.front(), r * 1000 + k);
    }
  }
  EXPECT_THROW(cohort::wait_any(reqs), cohort::InvalidArgument);
}

TEST_F(P2P, BothSidesIsendLargeThenIrecv) {
  auto& c = world();
  const int n = c.size();
  int right = (c.rank() + 1) % n, left = (c.rank() + n - 1) % n;
  auto out = pattern(3 * stream_bytes() + 5, static_cast<unsigned>(c.rank()));
  std::vector<std::byte> in;
  std::array<cohort::Request, 2> reqs{c.isend(out, right, Tag{2}), c.irecv(in, left, Tag{2})};
  cohort::wait_all(reqs);
  EXPECT_TRUE(in == pattern(3 * stream_bytes() + 5, static_cast<unsigned>(left)));
}

TEST_F(P2P, BlockingLargeSendsBothWaysDoNotDeadlock) {
  auto& c = world();
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (c.rank() > 1) return;
  int peer = 1 - c.rank();
  auto out = pattern(4 * stream_bytes(), static_cast<unsigned>(c.rank()));
  c.send(out, peer, Tag{5});  // both ranks send first: buffered by the blocked receiver
  std::vector<std::byte> in;
  c.recv(in, peer, Tag{5});
  EXPECT_TRUE(in == pattern(4 * stream_bytes(), static_cast<unsigned>(peer)));
}

TEST_F(P2P, SendrecvRingShift) {
  auto& c = world();
  const int n = c.size();
  int right = (c.rank() + 1) % n, left = (c.rank() + n - 1) % n;
  for (std::size_t len : {std::size_t{1}, eager_max() + 1, 2 * stream_bytes()}) {
    std::vector<char> out(len, static_cast<char>('a' + c.rank())), in;
    auto st = c.sendrecv(out, right, Tag{6}, in, left, Tag{6});
    EXPECT_EQ(st.source, left);
    ASSERT_EQ(in.size(), len);
    EXPECT_EQ(in.back(), static_cast<char>('a' + left));
  }
}

TEST_F(P2P, TypedReceiveForms) {
  auto& c = world();
  const int n = c.size();
  int right = (c.rank() + 1) % n, left = (c.rank() + n - 1) % n;
  c.send(2.5 * c.rank(), right, Tag{1});
  EXPECT_EQ(c.recv<double>(left, Tag{1}), 2.5 * left);
  c.send(std::string("hello from ") + std::to_string(c.rank()), right, Tag{2});
  EXPECT_EQ(c.recv<std::string>(left, Tag{2}), "hello from " + std::to_string(left));
  std::array<int, 4> arr{1, 2, 3, c.rank()};
  c.send(arr, right, Tag{3});
  std::vector<int> buf(10, -1);
  auto st = c.recv(std::span(buf), left, Tag{3});
  EXPECT_EQ(st.count<int>(), 4u);
  EXPECT_EQ(buf[3], left);
  EXPECT_EQ(buf[4], -1);
  Particle p{"p" + std::to_string(c.rank()), 1.5, {1, 2, c.rank()}};
  Cell cell{{0.5, double(c.rank())}, "cell"};
  c.send(p, right, Tag{4});
  c.send(cell, right, Tag{5});
  EXPECT_EQ(c.recv<Cell>(left, Tag{5}), (Cell{{0.5, double(left)}, "cell"}));
  EXPECT_EQ(c.recv<Particle>(left, Tag{4}), (Particle{"p" + std::to_string(left), 1.5, {1, 2, left}}));
  std::map<int, std::string> m{{c.rank(), "x"}};
  auto r = c.isend(std::map<int, std::string>{{c.rank(), "y"}}, right, Tag{6});
  auto got = c.recv<std::map<int, std::string>>(left, Tag{6});
  r.wait();
  EXPECT_EQ(got.at(left), "y");
}

TEST_F(P2P, ProbeThenReceiveSerializedFromAnySource) {
  auto& c = world();
  if (c.rank() != 0) {
    c.send(Particle{std::string(static_cast<std::size_t>(c.rank()) * 1000, 'z'), 2.0, {c.rank()}}, 0, Tag{8});
    return;
  }
  for (int i = 1; i < c.size(); ++i) {
    cohort::Status st = c.probe(any_source, Tag{8});
    EXPECT_GT(st.bytes, static_cast<std::size_t>(st.source) * 1000);
    Particle p;
    auto st2 = c.recv(p, st.source, st.tag);
    EXPECT_EQ(st2.bytes, st.bytes);
    EXPECT_EQ(p.ids, std::vector<int>{st.source});
    EXPECT_EQ(p.name.size(), static_cast<std::size_t>(st.source) * 1000);
  }
}

TEST_F(P2P, TruncationIsAnErrorAndConsumesTheMessage) {
  auto& c = world();
  int right = (c.rank() + 1) % c.size(), left = (c.rank() + c.size() - 1) % c.size();
  for (std::size_t len : {std::size_t{16}, eager_max() + 8, 2 * stream_bytes()}) {
    c.send(std::vector<char>(len, 'q'), right, Tag{11});
    c.send(std::int32_t{42}, right, Tag{11});
    std::array<char, 8> small{};
    try {
      c.recv(std::span(small), left, Tag{11});
      ADD_FAILURE() << "no TruncationError for " << len;
    } catch (const cohort::TruncationError& e) {
      EXPECT_EQ(e.message_bytes(), len);
      EXPECT_EQ(e.buffer_bytes(), 8u);
      std::string what = e.what();
      EXPECT_NE(what.find(std::to_string(len)), std::string::npos) << what;
      EXPECT_NE(what.find("tag 11"), std::string::npos) << what;
      EXPECT_NE(what.find("from rank " + std::to_string(left)), std::string::npos) << what;
    }
    EXPECT_EQ(c.recv<std::int32_t>(left, Tag{11}), 42);  // the next message is intact
  }
}

TEST_F(P2P, TypeMismatchAndDeserializeErrors) {
  auto& c = world();
  int right = (c.rank() + 1) % c.size(), left = (c.rank() + c.size() - 1) % c.size();
  c.send(std::vector<char>(7, 'x'), right, Tag{12});     // 7 bytes as ints
  c.send(Particle{"a", 1, {}}, right, Tag{12});           // cereal as raw
  c.send(std::vector<int>{1, 2}, right, Tag{12});         // raw as cereal
  c.send(Particle{"b", 2, {}}, right, Tag{12});           // cereal as Boost type
  c.send(Liar{5, ""}, right, Tag{12});                       // fails to decode
  c.send(std::int64_t{9}, right, Tag{12});                // 8 bytes into a 4-byte object
  c.send(Thrower{3, ""}, right, Tag{12});                 // its load throws an int
  c.send(1234, right, Tag{12});                           // still fine afterwards
  std::vector<int> ints;
  EXPECT_THROW(c.recv(ints, left, Tag{12}), cohort::TypeMismatch);
  EXPECT_THROW(c.recv(ints, left, Tag{12}), cohort::TypeMismatch);
  Particle p;
  EXPECT_THROW(c.recv(p, left, Tag{12}), cohort::TypeMismatch);
  Cell cell;
  EXPECT_THROW(c.recv(cell, left, Tag{12}), cohort::TypeMismatch);
  Liar l;
  EXPECT_THROW(c.recv(l, left, Tag{12}), cohort::DeserializeError);
  float f = 0;
  EXPECT_THROW(c.recv(f, left, Tag{12}), cohort::TruncationError);
  Thrower t;
  EXPECT_THROW(c.recv(t, left, Tag{12}), cohort::DeserializeError);
  EXPECT_EQ(c.recv<int>(left, Tag{12}), 1234);
}

// Receives posted before their messages arrive (irecv only posts; the wait matches): an eager
// raw message for the oldest posted receive takes the fast path, others the general one; either
// way each message goes to the first posted receive that matches it.
TEST_F(P2P, PostedReceivesMatchInPostOrder) {
  auto& c = world();
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (c.rank() > 1) return;
  constexpr Tag kGo{40};
  if (c.rank() == 1) {
    std::array<int, 2> a{}, b{};
    int any = 0;
    std::vector<int> d;
    std::string e;
    std::vector<cohort::Request> reqs;
    reqs.push_back(c.irecv(std::span(a), 0, Tag{1}));
    reqs.push_back(c.irecv(std::span(b), 0, Tag{2}));
    reqs.push_back(c.irecv(any, any_source, any_tag));
    reqs.push_back(c.irecv(d, 0, Tag{1}));
    reqs.push_back(c.irecv(e, any_source, Tag{1}));
    c.send(0, 0, kGo);
    auto st = cohort::wait_all(reqs);
    EXPECT_EQ(b, (std::array<int, 2>{2, 2}));  // tag 2 first: not the oldest receive's
    EXPECT_EQ(a, (std::array<int, 2>{1, 1}));
    EXPECT_EQ(any, 3);
    EXPECT_EQ(st[2].tag, Tag{3});
    EXPECT_EQ(st[2].source, 0);
    EXPECT_EQ(d, (std::vector<int>{4, 4, 4}));
    EXPECT_EQ(e, "five");
    EXPECT_EQ(st[4].bytes, 4u);
    EXPECT_EQ(st[3].tag, Tag{1});
  } else {
    (void)c.recv<int>(1, kGo);
    c.send(std::array<int, 2>{2, 2}, 1, Tag{2});
    c.send(std::array<int, 2>{1, 1}, 1, Tag{1});
    c.send(3, 1, Tag{3});
    c.send(std::vector<int>{4, 4, 4}, 1, Tag{1});
    c.send(std::string("five"), 1, Tag{1});
  }
}

// Every way a posted receive can refuse an eager raw message, each found when the message
// arrives (the fast path must hand these to the general checks): the error comes from the
// request, the message is consumed, and the next message is intact.
TEST_F(P2P, PostedReceiveErrorsConsumeTheMessage) {
  auto& c = world();
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (c.rank() > 1) return;
  constexpr Tag kGo{41}, kT{42};
  if (c.rank() == 1) {
    std::array<char, 4> small{};
    std::vector<int> ints;
    int exact = 0, exact2 = 0, fine = 0;
    Particle p;
    std::vector<cohort::Request> reqs;
    reqs.push_back(c.irecv(std::span(small), 0, kT));  // 8 bytes into 4: truncation
    reqs.push_back(c.irecv(ints, 0, kT));              // 7 bytes as ints
    reqs.push_back(c.irecv(exact, 0, kT));             // 2 bytes into an int
    reqs.push_back(c.irecv(exact2, any_source, kT));   // a cereal message into an int
    reqs.push_back(c.irecv(p, 0, kT));                 // raw bytes into a cereal type
    reqs.push_back(c.irecv(fine, 0, kT));
    c.send(0, 0, kGo);
    try {
      reqs[0].wait();
      ADD_FAILURE() << "no TruncationError";
    } catch (const cohort::TruncationError& e) {
      EXPECT_EQ(e.message_bytes(), 8u);
      EXPECT_EQ(e.buffer_bytes(), 4u);
    }
    EXPECT_THROW(reqs[1].wait(), cohort::TypeMismatch);
    EXPECT_THROW(reqs[2].wait(), cohort::TypeMismatch);
    EXPECT_THROW(reqs[3].wait(), cohort::TypeMismatch);
    EXPECT_THROW(reqs[4].wait(), cohort::TypeMismatch);
    EXPECT_EQ(reqs[5].wait().bytes, sizeof(int));
    EXPECT_EQ(fine, 42);
    EXPECT_EQ(small, (std::array<char, 4>{}));  // a refused message writes nothing
  } else {
    (void)c.recv<int>(1, kGo);
    c.send(std::int64_t{-1}, 1, kT);
    c.send(std::vector<char>(7, 'x'), 1, kT);
    c.send(std::int16_t{5}, 1, kT);
    c.send(Particle{"p", 1.0, {}}, 1, kT);
    c.send(std::vector<int>{1, 2}, 1, kT);
    c.send(42, 1, kT);
  }
}

// A probe while receives are posted: the probed message is not one they want; it is taken
// aside, the posted receive gets its own, and the probed one is then received.
TEST_F(P2P, ProbeWhileAReceiveIsPosted) {
  auto& c = world();
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (c.rank() > 1) return;
  constexpr Tag kGo{43}, kWanted{44}, kProbed{45};
  if (c.rank() == 1) {
    int x = 0;
    auto r = c.irecv(x, 0, kWanted);
    c.send(0, 0, kGo);
    cohort::Status st = c.probe(any_source, kProbed);
    EXPECT_EQ(st.source, 0);
    EXPECT_EQ(st.bytes, sizeof(double));
    EXPECT_EQ(r.wait().tag, kWanted);
    EXPECT_EQ(x, 7);
    EXPECT_EQ(c.recv<double>(0, kProbed), 2.5);
    EXPECT_FALSE(c.iprobe(any_source, any_tag).has_value());
  } else {
    (void)c.recv<int>(1, kGo);
    c.send(2.5, 1, kProbed);
    c.send(7, 1, kWanted);
  }
}

// Non-blocking any-source receives posted ahead of every sender's messages: each message once,
// each sender's order kept.
TEST_F(P2P, PostedAnySourceReceivesFromEverySender) {
  auto& c = world();
  constexpr int kEach = 50;
  constexpr Tag kGo{46}, kT{47};
  if (c.rank() == 0) {
    const auto total = static_cast<std::size_t>((c.size() - 1) * kEach);
    std::vector<std::array<int, 2>> got(total);
    std::vector<cohort::Request> reqs;
    for (auto& g : got) reqs.push_back(c.irecv(std::span(g), any_source, kT));
    for (int r = 1; r < c.size(); ++r) c.send(0, r, kGo);
    auto st = cohort::wait_all(reqs);
    std::vector<int> next(static_cast<std::size_t>(c.size()), 0);
    for (std::size_t i = 0; i < total; ++i) {
      ASSERT_EQ(got[i][0], st[i].source);
      ASSERT_EQ(got[i][1], next[static_cast<std::size_t>(st[i].source)]++) << "order from " << st[i].source;
    }
    for (int r = 1; r < c.size(); ++r) EXPECT_EQ(next[static_cast<std::size_t>(r)], kEach);
  } else {
    (void)c.recv<int>(0, kGo);
    for (int i = 0; i < kEach; ++i) c.send(std::array<int, 2>{c.rank(), i}, 0, kT);
  }
}

TEST_F(P2P, SendToSelfIncludingLargeBlocking) {
  auto& c = world();
  auto big = pattern(3 * stream_bytes() + 3, 99);
  c.send(big, c.rank(), Tag{13});                 // buffered: does not block
  c.send(std::string("small"), c.rank(), Tag{14});
  EXPECT_EQ(c.recv<std::string>(c.rank(), Tag{14}), "small");
  std::vector<std::byte> got;
  auto st = c.recv(got, any_source, Tag{13});
  EXPECT_EQ(st.source, c.rank());
  EXPECT_TRUE(got == big);
  int x = 0;
  auto r = c.irecv(x, c.rank(), Tag{15});
  EXPECT_FALSE(r.test().has_value());
  c.send(77, c.rank(), Tag{15});
  EXPECT_EQ(r.wait().bytes, sizeof(int));
  EXPECT_EQ(x, 77);
}

TEST_F(P2P, OutOfRangeArguments) {
  auto& c = world();
  int x = 0;
  EXPECT_THROW(c.send(1, c.size(), Tag{0}), cohort::InvalidArgument);
  EXPECT_THROW(c.send(1, -1, Tag{0}), cohort::InvalidArgument);
  EXPECT_THROW(c.send(1, 0, Tag{-1}), cohort::InvalidArgument);
  EXPECT_THROW(c.send(1, 0, Tag{Tag::kMax + 1}), cohort::InvalidArgument);
  EXPECT_THROW(c.recv(x, c.size(), Tag{0}), cohort::InvalidArgument);
  EXPECT_THROW(c.recv(x, -2, Tag{0}), cohort::InvalidArgument);
  EXPECT_THROW(c.recv(x, 0, Tag{-5}), cohort::InvalidArgument);
  EXPECT_THROW((void)c.iprobe(0, Tag{-2}), cohort::InvalidArgument);
  c.send(5, c.rank(), Tag{Tag::kMax - 1});
  EXPECT_EQ(c.recv<int>(c.rank(), Tag{Tag::kMax - 1}), 5);
}

TEST_F(P2P, TestAndCancelOnDestruction) {
  auto& c = world();
  {
    int never = 0;
    auto r = c.irecv(never, c.rank(), Tag{99});
    EXPECT_FALSE(r.test().has_value());
  }  // unmatched: cancelled
  c.send(1, c.rank(), Tag{99});
  EXPECT_EQ(c.recv<int>(c.rank(), Tag{99}), 1);  // not swallowed by the cancelled receive
  std::vector<cohort::Request> none;
  EXPECT_TRUE(cohort::test_all(none));
}

}  // namespace
