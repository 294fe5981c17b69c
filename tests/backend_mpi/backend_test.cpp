// The MPI backend's own behaviour (the shared tests in tests/p2p, tests/collectives,
// tests/patterns run on it too).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>

#include <cohort/cohort.hpp>
#include <cohort/pool.hpp>

#include "runtime/runtime.hpp"
#include "tests/support/rank_env.hpp"

namespace {

cohort::Communicator& world() { return cohort::testing::env().world(); }

bool shared_segment() { return cohort::detail::Runtime::current()->segment_shared(); }

TEST(BackendMpi, SpawnAndPoolSayTheyAreUnsupported) {
  try {
    auto job = cohort::spawn(2, [](cohort::Communicator&) {});
    ADD_FAILURE() << "spawn did not throw";
  } catch (const cohort::Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("not available on the MPI backend"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mpirun"), std::string::npos) << e.what();
  }
}

TEST(BackendMpi, SharedObjectsNeedOneNode) {
  auto& w = world();
  if (shared_segment()) {
    cohort::SharedValue<long> counter(w, 0);
    counter.fetch_add(w.rank() + 1);
    w.barrier();
    EXPECT_EQ(counter.load(), static_cast<long>(w.size()) * (w.size() + 1) / 2);
    w.barrier();
  } else {
    try {
      cohort::SharedArray<int> a(w, 16);
      ADD_FAILURE() << "SharedArray did not throw on a private segment";
    } catch (const cohort::Unsupported& e) {
      EXPECT_NE(std::string(e.what()).find("one node"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("SharedArray"), std::string::npos) << e.what();
    }
  }
}

// pool_map on one node uses the shared chunk counter; across nodes (a private segment) the root
// hands chunks out by message. Either way every item is computed once, results come back in
// order, failures are listed, and consecutive calls on one communicator do not mix.
TEST(BackendMpi, PoolMapOnOneNodeAndAcrossNodes) {
  auto& w = world();
  for (std::size_t n : {0u, 1u, 7u, 1000u}) {
    std::vector<int> items(n);
    for (std::size_t i = 0; i < n; ++i) items[i] = static_cast<int>(i);
    cohort::PoolOptions o;
    o.chunk_size = n == 1000 ? 0 : 1;
    auto squares = cohort::pool_map(w, items, [](int x) { return static_cast<long>(x) * x; }, o);
    if (w.rank() == 0) {
      ASSERT_EQ(squares.size(), n);
      for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(squares[i], static_cast<long>(i * i));
    }
  }
  std::vector<int> items(50);
  for (int i = 0; i < 50; ++i) items[static_cast<std::size_t>(i)] = i;
  try {
    (void)cohort::pool_map(w, items, [](int x) {
      if (x % 10 == 3) throw std::runtime_error("bad item");
      return x;
    });
    if (w.rank() == 0) ADD_FAILURE() << "pool_map did not report the failing items";
  } catch (const cohort::PoolError& e) {
    if (w.rank() == 0) {
      EXPECT_EQ(e.failures().size(), 5u) << e.what();  // the root has the list
    }
    EXPECT_NE(std::string(e.what()).find("5 of 50 items failed"), std::string::npos) << e.what();
  }
  cohort::PoolOptions everywhere;
  everywhere.everywhere = true;
  auto doubled = cohort::pool_map(w, items, [](int x) { return 2 * x; }, everywhere);
  ASSERT_EQ(doubled.size(), items.size());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(doubled[static_cast<std::size_t>(i)], 2 * i);
}

// Floating-point sums at every rank count equal the left fold x0 + x1 + ... bit for bit (MPI's
// own association differs from 3 ranks on), on every rank, blocking and through the chain.
TEST(BackendMpi, FloatingSumsAreTheLeftFold) {
  auto& w = world();
  auto x = [](int r, std::size_t i) { return 1.0 / (3.0 + r) + 1e16 * static_cast<double>((r + static_cast<int>(i)) % 2); };
  for (std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{20000}}) {
    std::vector<double> in(n), out(n);
    for (std::size_t i = 0; i < n; ++i) in[i] = x(w.rank(), i);
    w.allreduce(in, out, std::plus<>{});
    std::vector<double> scan(n);
    w.scan(in, scan, std::plus<>{});
    for (std::size_t i = 0; i < n; ++i) {
      double fold = x(0, i), prefix = x(0, i);
      for (int r = 1; r < w.size(); ++r) fold += x(r, i);
      for (int r = 1; r <= w.rank(); ++r) prefix += x(r, i);
      ASSERT_EQ(std::memcmp(&out[i], &fold, sizeof fold), 0) << "allreduce element " << i;
      ASSERT_EQ(std::memcmp(&scan[i], &prefix, sizeof prefix), 0) << "scan element " << i;
    }
  }
}

// A user operation in a non-blocking allreduce reaches its own function object even while other
// reductions with other operations run before it completes.
TEST(BackendMpi, IallreduceUserOperationAmongOtherReductions) {
  auto& w = world();
  // Decimal concatenation: associative, not commutative. {digits as a number, 10^count}.
  struct Digits {
    std::uint64_t value, scale;
  };
  auto concat = [](Digits a, Digits b) { return Digits{a.value * b.scale + b.value, a.scale * b.scale}; };
  Digits mine{static_cast<std::uint64_t>(w.rank() + 1), 10}, result{0, 1};
  auto req = w.iallreduce(mine, result, concat);
  auto sub = [](std::int64_t a, std::int64_t b) { return a - b; };
  std::int64_t diff = w.allreduce(static_cast<std::int64_t>(w.rank() + 1), sub);
  req.wait();
  std::uint64_t got = result.value;
  std::uint64_t expect = 0;
  std::int64_t expect_diff = 1;
  for (int r = 0; r < w.size(); ++r) expect = expect * 10 + static_cast<std::uint64_t>(r + 1);
  for (int r = 1; r < w.size(); ++r) expect_diff -= r + 1;
  EXPECT_EQ(got, expect);
  EXPECT_EQ(diff, expect_diff);
}

TEST(BackendMpi, CommunicatorsHaveDistinctContexts) {
  auto& w = world();
  auto d = w.dup();
  auto half = w.split(w.rank() % 2, w.rank());
  ASSERT_TRUE(half.has_value());
  EXPECT_NE(d.impl().context(), w.impl().context());
  EXPECT_NE(half->impl().context(), d.impl().context());
  // The same context on every member.
  auto ids = w.allgather(d.impl().context());
  for (auto id : ids) EXPECT_EQ(id, d.impl().context());
  // Messages on one do not match receives on the other.
  int right = (w.rank() + 1) % w.size(), left = (w.rank() + w.size() - 1) % w.size();
  d.send(1, right, cohort::Tag{5});
  w.send(2, right, cohort::Tag{5});
  EXPECT_EQ(w.recv<int>(left, cohort::Tag{5}), 2);
  EXPECT_EQ(d.recv<int>(left, cohort::Tag{5}), 1);
}

// ---- blocking receives into small buffers (runtime/backend_mpi/p2p.cpp: the receive scratch) ----
// Open MPI 4.1.4 writes past a receive buffer when a longer message comes by its rendezvous
// protocol; these receives must report the exact size, leave the bytes after the buffer alone,
// and discard only that message, whatever the size (eager, just past the eager limit, CMA sizes).

constexpr std::size_t kGuard = 64 << 10;
constexpr unsigned char kGuardByte = 0xAB;

int right_of(const cohort::Communicator& c) { return (c.rank() + 1) % c.size(); }
int left_of(const cohort::Communicator& c) { return (c.rank() + c.size() - 1) % c.size(); }

TEST(BackendMpi, BlockingReceiveTruncatesAtEverySizeWithoutWritingPastTheBuffer) {
  auto& w = world();
  const int right = right_of(w), left = left_of(w);
  // capacity 8 and 4096 (the scratch), 4097 (the matched probe); messages across Open MPI's
  // protocols: eager, its limit (~4 KiB with the header), rendezvous, several MiB.
  for (std::size_t capacity : {std::size_t{8}, std::size_t{4096}, std::size_t{4097}}) {
    for (std::size_t len : {std::size_t{9}, std::size_t{4040}, std::size_t{4097}, std::size_t{5000},
                            std::size_t{64} << 10, std::size_t{1} << 20, std::size_t{4} << 20}) {
      if (len <= capacity) continue;
      w.send(std::vector<char>(len, 'q'), right, cohort::Tag{21});
      w.send(std::int32_t{42}, right, cohort::Tag{21});
      std::vector<unsigned char> memory(capacity + kGuard, kGuardByte);
      std::span<unsigned char> buffer(memory.data(), capacity);
      try {
        w.recv(buffer, left, cohort::Tag{21});
        ADD_FAILURE() << "no TruncationError for " << len << " bytes into " << capacity;
      } catch (const cohort::TruncationError& e) {
        EXPECT_EQ(e.message_bytes(), len);
        EXPECT_EQ(e.buffer_bytes(), capacity);
        std::string what = e.what();
        EXPECT_NE(what.find(std::to_string(len)), std::string::npos) << what;
        EXPECT_NE(what.find("from rank " + std::to_string(left)), std::string::npos) << what;
        EXPECT_NE(what.find("tag 21"), std::string::npos) << what;
      }
      std::size_t touched = 0;
      for (std::size_t i = capacity; i < memory.size(); ++i) touched += memory[i] != kGuardByte ? 1 : 0;
      EXPECT_EQ(touched, 0u) << len << " bytes into " << capacity << " wrote past the buffer";
      EXPECT_EQ(w.recv<std::int32_t>(left, cohort::Tag{21}), 42);  // the next message is intact
    }
  }
}

TEST(BackendMpi, BlockingReceiveIntoSmallBuffersKeepsSizesAndStatus) {
  auto& w = world();
  const int right = right_of(w), left = left_of(w);
  for (std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{16},
                          std::size_t{255}, std::size_t{4095}, std::size_t{4096}}) {
    std::vector<char> out(len);
    for (std::size_t i = 0; i < len; ++i) out[i] = static_cast<char>('a' + (i + len) % 26);
    w.send(std::span<const char>(out), right, cohort::Tag{22});
    std::vector<char> in(4096, '#');
    cohort::Status st = w.recv(std::span<char>(in), left, cohort::Tag{22});
    EXPECT_EQ(st.source, left);
    EXPECT_EQ(st.tag, cohort::Tag{22});
    EXPECT_EQ(st.bytes, len);
    EXPECT_TRUE(std::equal(out.begin(), out.end(), in.begin())) << len;
    EXPECT_TRUE(std::all_of(in.begin() + static_cast<std::ptrdiff_t>(len), in.end(), [](char ch) { return ch == '#'; }))
        << "bytes after the message changed for " << len;
  }
  // Whole elements and exact objects are still checked; the wrong message is discarded.
  w.send(std::array<char, 6>{}, right, cohort::Tag{23});      // 6 bytes as int32s
  w.send(std::int16_t{7}, right, cohort::Tag{23});            // 2 bytes into a 4-byte object
  w.send(std::map<int, std::string>{{1, "one"}}, right, cohort::Tag{23});  // cereal as raw
  w.send(std::int32_t{5}, right, cohort::Tag{23});
  std::array<std::int32_t, 4> ints{};
  EXPECT_THROW(w.recv(std::span(ints), left, cohort::Tag{23}), cohort::TypeMismatch);
  std::int32_t one = 0;
  EXPECT_THROW(w.recv(one, left, cohort::Tag{23}), cohort::TypeMismatch);
  std::array<char, 256> raw{};
  EXPECT_THROW(w.recv(std::span(raw), left, cohort::Tag{23}), cohort::TypeMismatch);
  EXPECT_EQ(w.recv<std::int32_t>(left, cohort::Tag{23}), 5);
}

TEST(BackendMpi, BlockingReceiveFromAnySourceWithAnyTag) {
  auto& w = world();
  constexpr int kPerRank = 5;
  if (w.rank() != 0) {
    for (int i = 0; i < kPerRank; ++i) w.send(std::int64_t{w.rank() * 100 + i}, 0, cohort::Tag{30 + i});
  } else {
    for (int i = 0; i < kPerRank; ++i) w.send(std::int64_t{i}, 0, cohort::Tag{30 + i});
    std::vector<int> next(static_cast<std::size_t>(w.size()), 0);  // per source: in send order
    for (int n = 0; n < kPerRank * w.size(); ++n) {
      std::int64_t v = -1;
      cohort::Status st = w.recv(v, cohort::any_source, cohort::any_tag);
      ASSERT_GE(st.source, 0);
      ASSERT_LT(st.source, w.size());
      int& i = next[static_cast<std::size_t>(st.source)];
      EXPECT_EQ(v, st.source * 100 + i);
      EXPECT_EQ(st.tag, cohort::Tag{30 + i});
      EXPECT_EQ(st.bytes, sizeof v);
      ++i;
    }
    for (int n : next) EXPECT_EQ(n, kPerRank);
  }
  w.barrier();
  // A specific tag from any source skips the other tags, which stay for later.
  w.send(std::int32_t{1}, right_of(w), cohort::Tag{40});
  w.send(std::int32_t{2}, right_of(w), cohort::Tag{41});
  std::int32_t v = 0;
  cohort::Status st = w.recv(v, cohort::any_source, cohort::Tag{41});
  EXPECT_EQ(v, 2);
  EXPECT_EQ(st.source, left_of(w));
  EXPECT_EQ(w.recv<std::int32_t>(left_of(w), cohort::Tag{40}), 1);
}

TEST(BackendMpi, BlockingReceiveComesAfterEarlierIrecvs) {
  auto& w = world();
  const int right = right_of(w), left = left_of(w);
  // Posted before anything is sent, so they are still waiting when the blocking receive comes.
  std::int32_t first = 0, other = 0;
  cohort::Request any = w.irecv(first, left, cohort::any_tag);
  cohort::Request tag6 = w.irecv(other, left, cohort::Tag{6});
  w.barrier();
  w.send(std::int32_t{1}, right, cohort::Tag{5});
  w.send(std::int32_t{2}, right, cohort::Tag{5});
  w.send(std::int32_t{3}, right, cohort::Tag{6});
  std::int32_t second = 0;
  cohort::Status st = w.recv(second, left, cohort::Tag{5});  // the irecv with any tag takes the 1
  EXPECT_EQ(second, 2);
  EXPECT_EQ(st.tag, cohort::Tag{5});
  any.wait();
  tag6.wait();
  EXPECT_EQ(first, 1);
  EXPECT_EQ(other, 3);
  // And with nothing pending any more, the next blocking receives are in order again.
  for (std::int32_t i = 0; i < 3; ++i) w.send(i, right, cohort::Tag{7});
  for (std::int32_t i = 0; i < 3; ++i) EXPECT_EQ(w.recv<std::int32_t>(left, cohort::Tag{7}), i);
}

// At two ranks a small allreduce is a message exchange of its own (collectives.cpp), on the
// internal communicator: a pending user receive for any source and any tag is left alone, and
// both ranks hold the same left fold (a non-commutative one too), in place or not.
TEST(BackendMpi, SmallAllreduceStaysOutOfUserReceives) {
  auto& w = world();
  std::int32_t got = -1;
  cohort::Request r = w.irecv(got, cohort::any_source, cohort::any_tag);
  const double x = w.allreduce(1.5 * (w.rank() + 1), std::plus<>{});
  double expect = 0;
  for (int k = 0; k < w.size(); ++k) expect += 1.5 * (k + 1);
  EXPECT_EQ(x, expect);
  std::array<float, 3> v{static_cast<float>(w.rank()), -static_cast<float>(w.rank()), 0.25f};
  w.allreduce(v, cohort::max);  // in place
  EXPECT_EQ(v[0], static_cast<float>(w.size() - 1));
  EXPECT_EQ(v[1], 0.0f);
  EXPECT_EQ(v[2], 0.25f);
  std::vector<std::int64_t> words(100, w.rank() + 1), folded(100);
  w.allreduce(words, folded, [](std::int64_t a, std::int64_t b) { return a * 10 + b; });  // not commutative
  std::int64_t fold = 1;
  for (int k = 1; k < w.size(); ++k) fold = fold * 10 + (k + 1);
  for (std::int64_t f : folded) EXPECT_EQ(f, fold);
  EXPECT_FALSE(r.test().has_value());  // nothing for the user yet
  w.barrier();                         // (no rank sends before every rank has looked)
  w.send(std::int32_t{100 + w.rank()}, right_of(w), cohort::Tag{50});
  cohort::Status st = r.wait();
  EXPECT_EQ(got, 100 + left_of(w));
  EXPECT_EQ(st.tag, cohort::Tag{50});
}

}  // namespace
