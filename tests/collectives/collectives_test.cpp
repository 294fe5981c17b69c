// Collectives on world and on sub-communicators at every rank count (1 2 3 4 7 8), every root,
// sizes from 0 to a few MiB, user operations (non-commutative included), results compared with a
// sequential computation in rank order (bit-identical for floating point).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <cohort/cohort.hpp>

#include "runtime/transport/collective_area.hpp"
#include "tests/support/rank_env.hpp"

namespace {

cohort::Communicator& world() { return cohort::testing::env().world(); }

// Deterministic inputs: every rank can compute every other rank's input.
double input_double(int rank, std::size_t i) {
  return std::sin(static_cast<double>(rank) * 1000.0 + static_cast<double>(i)) * 1e3 + 1e-7 * static_cast<double>(i);
}
std::int64_t input_int(int rank, std::size_t i) {
  return static_cast<std::int64_t>(rank) * 1000003 + static_cast<std::int64_t>(i) * 7 - 5;
}
std::uint8_t input_byte(int rank, std::size_t i) { return static_cast<std::uint8_t>(rank * 31 + i * 7 + 3); }

// memcmp of n doubles that accepts empty vectors (null data()).
int compare_bits(const double* a, const double* b, std::size_t n) {
  return n == 0 ? 0 : std::memcmp(a, b, n * sizeof(double));
}

std::vector<double> doubles(int rank, std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = input_double(rank, i);
  return v;
}

// 2x2 matrix with wrapping arithmetic: a non-commutative, associative operation.
struct M2 {
  std::uint32_t a, b, c, d;
  friend bool operator==(const M2&, const M2&) = default;
};
M2 mul(const M2& x, const M2& y) {
  return {x.a * y.a + x.b * y.c, x.a * y.b + x.b * y.d, x.c * y.a + x.d * y.c, x.c * y.b + x.d * y.d};
}
M2 input_matrix(int rank, std::size_t i) {
  auto r = static_cast<std::uint32_t>(rank);
  auto k = static_cast<std::uint32_t>(i);
  return {r + 1, k % 5 + 1, r * 3 + k % 7, 2};
}

// 9 doubles = 72 bytes: the largest payload carried inline in the descriptor lines.
const std::vector<std::size_t> kDoubleSizes{0, 1, 9, 10, 11, 1000, 8193, 100000};

TEST(Collectives, BarrierRepeated) {
  for (int i = 0; i < 200; ++i) world().barrier();
}

TEST(Collectives, BroadcastEveryRootAndSize) {
  auto& w = world();
  for (std::size_t bytes : {0ul, 1ul, 8ul, 80ul, 81ul, 1000ul, 65536ul + 3, 300000ul, 3ul << 20}) {
    for (int root = 0; root < w.size(); ++root) {
      if (bytes > 300000 && root > 1) continue;  // keep the biggest ones few
      std::vector<std::uint8_t> buf(bytes, 0);
      if (w.rank() == root) {
        for (std::size_t i = 0; i < bytes; ++i) buf[i] = input_byte(root, i);
      }
      w.broadcast(buf, root);
      for (std::size_t i = 0; i < bytes; ++i) {
        ASSERT_EQ(buf[i], input_byte(root, i)) << "bytes=" << bytes << " root=" << root << " i=" << i;
      }
    }
  }
}

TEST(Collectives, BroadcastScalarVectorAndString) {
  auto& w = world();
  for (int root = 0; root < w.size(); ++root) {
    double x = w.rank() == root ? 3.25 + root : -1.0;
    w.broadcast(x, root);
    EXPECT_EQ(x, 3.25 + root);
    std::vector<int> v;
    if (w.rank() == root) v.assign(static_cast<std::size_t>(100 + root), root);
    w.broadcast(v, root);
    EXPECT_EQ(v, std::vector<int>(static_cast<std::size_t>(100 + root), root));
    std::string s = w.rank() == root ? std::string(static_cast<std::size_t>(root) * 40, 'x') + "root" : "";
    w.broadcast(s, root);
    EXPECT_EQ(s, std::string(static_cast<std::size_t>(root) * 40, 'x') + "root");
    std::array<std::int16_t, 5> arr{};
    if (w.rank() == root) arr = {1, 2, 3, 4, static_cast<std::int16_t>(root)};
    w.broadcast(std::span(arr), root);
    EXPECT_EQ(arr[4], root);
  }
}

TEST(Collectives, ReduceEveryRootMatchesSequentialBitForBit) {
  auto& w = world();
  for (std::size_t n : kDoubleSizes) {
    std::vector<double> expect = doubles(0, n);
    for (int r = 1; r < w.size(); ++r) {
      for (std::size_t i = 0; i < n; ++i) expect[i] = expect[i] + input_double(r, i);
    }
    for (int root = 0; root < w.size(); ++root) {
      if (n > 10000 && root > 2) continue;
      auto in = doubles(w.rank(), n);
      std::vector<double> out(w.rank() == root ? n : 0);
      w.reduce(in, out, std::plus<>{}, root);
      if (w.rank() == root) {
        ASSERT_EQ(0, compare_bits(out.data(), expect.data(), n)) << "n=" << n << " root=" << root;
      }
      // In place.
      w.reduce(in, std::plus<>{}, root);
      if (w.rank() == root) {
        ASSERT_EQ(0, compare_bits(in.data(), expect.data(), n)) << "in place n=" << n;
      }
    }
  }
}

TEST(Collectives, ReduceScalarAndBuiltinOps) {
  auto& w = world();
  for (int root = 0; root < w.size(); ++root) {
    std::int64_t sum = w.reduce(static_cast<std::int64_t>(w.rank() + 1), std::plus<>{}, root);
    if (w.rank() == root) {
      EXPECT_EQ(sum, static_cast<std::int64_t>(w.size()) * (w.size() + 1) / 2);
    }
    int mn = w.reduce(w.rank() + 10, cohort::min, root);
    int mx = w.reduce(w.rank() + 10, cohort::max, root);
    if (w.rank() == root) {
      EXPECT_EQ(mn, 10);
      EXPECT_EQ(mx, 10 + w.size() - 1);
    }
  }
}

TEST(Collectives, NonCommutativeReductionsCombineInRankOrder) {
  auto& w = world();
  auto op = [](const M2& x, const M2& y) { return mul(x, y); };
  for (std::size_t n : {1ul, 3ul, 5ul, 6000ul, 70000ul}) {
    std::vector<M2> expect(n);
    for (std::size_t i = 0; i < n; ++i) {
      expect[i] = input_matrix(0, i);
      for (int r = 1; r < w.size(); ++r) expect[i] = mul(expect[i], input_matrix(r, i));
    }
    std::vector<M2> in(n);
    for (std::size_t i = 0; i < n; ++i) in[i] = input_matrix(w.rank(), i);
    for (int root : {0, w.size() - 1}) {
      std::vector<M2> out(n);
      w.reduce(in, out, op, root);
      if (w.rank() == root) {
        ASSERT_EQ(out, expect) << "reduce n=" << n << " root=" << root;
      }
    }
    std::vector<M2> all(n);
    w.allreduce(in, all, op);
    ASSERT_EQ(all, expect) << "allreduce n=" << n;
    // Inclusive scan: rank r gets x0 * ... * xr.
    std::vector<M2> pre(n);
    w.scan(in, pre, op);
    for (std::size_t i = 0; i < n; ++i) {
      M2 e = input_matrix(0, i);
      for (int r = 1; r <= w.rank(); ++r) e = mul(e, input_matrix(r, i));
      ASSERT_EQ(pre[i], e) << "scan n=" << n << " i=" << i;
    }
  }
  // A string-like concatenation order check on a fixed-size value.
  struct Word {
    char c[24];
    int len;
  };
  auto cat = [](const Word& a, const Word& b) {
    Word r = a;
    for (int i = 0; i < b.len && r.len < 24; ++i) r.c[r.len++] = b.c[i];
    return r;
  };
  Word mine{};
  mine.c[0] = static_cast<char>('a' + w.rank());
  mine.len = 1;
  Word all = w.allreduce(mine, cat);
  std::string expect;
  for (int r = 0; r < w.size(); ++r) expect += static_cast<char>('a' + r);
  EXPECT_EQ(std::string(all.c, static_cast<std::size_t>(all.len)), expect);
}

TEST(Collectives, AllreduceMatchesSequentialAndIsIdenticalOnEveryRank) {
  auto& w = world();
  for (std::size_t n : kDoubleSizes) {
    std::vector<double> expect = doubles(0, n);
    for (int r = 1; r < w.size(); ++r) {
      for (std::size_t i = 0; i < n; ++i) expect[i] += input_double(r, i);
    }
    auto in = doubles(w.rank(), n);
    std::vector<double> out(n);
    w.allreduce(in, out, std::plus<>{});
    ASSERT_EQ(0, compare_bits(out.data(), expect.data(), n)) << "n=" << n;
    w.allreduce(in, std::plus<>{});
    ASSERT_EQ(0, compare_bits(in.data(), expect.data(), n)) << "in place n=" << n;
    std::vector<double> mx(n);
    w.allreduce(doubles(w.rank(), n), mx, cohort::max);
    for (std::size_t i = 0; i < n; ++i) {
      double e = input_double(0, i);
      for (int r = 1; r < w.size(); ++r) e = std::max(e, input_double(r, i));
      ASSERT_EQ(mx[i], e);
    }
  }
  // Repeated runs give the same bits.
  double a = w.allreduce(input_double(w.rank(), 1) / 3.0, std::plus<>{});
  for (int k = 0; k < 20; ++k) {
    double b = w.allreduce(input_double(w.rank(), 1) / 3.0, std::plus<>{});
    ASSERT_EQ(0, std::memcmp(&a, &b, sizeof a));
  }
  auto bits = w.allgather(a);
  for (double b : bits) ASSERT_EQ(0, std::memcmp(&a, &b, sizeof a));
}

// Element counts at the staging boundaries of this job (pure functions of the rank count, so
// the MPI backend runs the same sizes): one chunk, the allreduce pipeline's lag (slots - 1
// chunks), the whole ring (slots chunks: a payload that fits without reusing a slot), one more
// chunk, each -1 / +1 element; and one past two rings.
std::vector<std::size_t> staging_counts(std::size_t elem) {
  const int n = world().size();
  const std::size_t chunk = cohort::transport::collective_chunk_bytes(n) / elem;
  const std::size_t slots = cohort::transport::collective_slots(n);
  std::vector<std::size_t> counts;
  for (std::size_t k : {std::size_t{1}, slots - 1, slots, slots + 1}) {
    for (std::size_t c : {k * chunk - 1, k * chunk, k * chunk + 1}) {
      if (counts.empty() || counts.back() < c) counts.push_back(c);
    }
  }
  counts.push_back(2 * slots * chunk + 1);
  return counts;
}

TEST(Collectives, AllreduceAtStagingBoundariesMatchesSequential) {
  auto& w = world();
  const auto counts = staging_counts(sizeof(double));
  // Element i of the result depends on i only: the inputs and the sequential sums once, for the
  // largest count.
  const std::size_t most = counts.back();
  const std::vector<double> mine = doubles(w.rank(), most);
  std::vector<double> expect = doubles(0, most);
  for (int r = 1; r < w.size(); ++r) {
    for (std::size_t i = 0; i < most; ++i) expect[i] += input_double(r, i);
  }
  for (std::size_t n : counts) {
    std::vector<double> in(mine.begin(), mine.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<double> out(n);
    w.allreduce(in, out, std::plus<>{});
    ASSERT_EQ(0, compare_bits(out.data(), expect.data(), n)) << "n=" << n;
    ASSERT_EQ(0, compare_bits(in.data(), mine.data(), n)) << "input changed, n=" << n;
    w.allreduce(in, std::plus<>{});
    ASSERT_EQ(0, compare_bits(in.data(), expect.data(), n)) << "in place n=" << n;
  }
}

// Inline-sized reductions take their own path (collectives.cpp, reduce_impl): the root combines
// each rank's publication as it comes, in rank order, its own input at its own position.
TEST(Collectives, SmallNonCommutativeReduceEveryRootCombinesInRankOrder) {
  auto& w = world();
  auto op = [](const M2& x, const M2& y) { return mul(x, y); };
  // 16, 32, 64 bytes inline; 80 bytes (above kCollectiveInlineBytes) through the staging path.
  for (std::size_t n : {1ul, 2ul, 4ul, 5ul}) {
    std::vector<M2> expect(n), in(n);
    for (std::size_t i = 0; i < n; ++i) {
      expect[i] = input_matrix(0, i);
      for (int r = 1; r < w.size(); ++r) expect[i] = mul(expect[i], input_matrix(r, i));
      in[i] = input_matrix(w.rank(), i);
    }
    for (int root = 0; root < w.size(); ++root) {
      std::vector<M2> out(w.rank() == root ? n : 0);
      w.reduce(in, out, op, root);
      if (w.rank() == root) {
        ASSERT_EQ(out, expect) << "reduce n=" << n << " root=" << root;
      }
      std::vector<M2> inplace = in;
      w.reduce(inplace, op, root);
      if (w.rank() == root) {
        ASSERT_EQ(inplace, expect) << "in-place reduce n=" << n << " root=" << root;
      } else {
        ASSERT_EQ(inplace, in) << "a non-root's buffer changed, n=" << n << " root=" << root;
      }
    }
  }
  for (int root = 0; root < w.size(); ++root) {
    M2 got = w.reduce(input_matrix(w.rank(), 7), op, root);
    if (w.rank() == root) {
      M2 e = input_matrix(0, 7);
      for (int r = 1; r < w.size(); ++r) e = mul(e, input_matrix(r, 7));
      ASSERT_EQ(got, e) << "scalar reduce root=" << root;
    }
  }
}

TEST(Collectives, NonCommutativeAllreduceAndReduceAtStagingBoundaries) {
  auto& w = world();
  auto op = [](const M2& x, const M2& y) { return mul(x, y); };
  const auto counts = staging_counts(sizeof(M2));
  const std::size_t most = counts.back();
  std::vector<M2> mine(most), expect(most);
  for (std::size_t i = 0; i < most; ++i) {
    mine[i] = input_matrix(w.rank(), i);
    expect[i] = input_matrix(0, i);
    for (int r = 1; r < w.size(); ++r) expect[i] = mul(expect[i], input_matrix(r, i));
  }
  for (std::size_t k = 0; k < counts.size(); k += 2) {  // every other size: enough, and faster
    const std::size_t n = counts[k];
    const auto end = static_cast<std::ptrdiff_t>(n);
    const std::vector<M2> in(mine.begin(), mine.begin() + end);
    const std::vector<M2> want(expect.begin(), expect.begin() + end);
    std::vector<M2> all(n);
    w.allreduce(in, all, op);
    ASSERT_TRUE(all == want) << "allreduce n=" << n;
    std::vector<M2> inplace = in;
    w.allreduce(inplace, op);
    ASSERT_TRUE(inplace == want) << "in-place allreduce n=" << n;
    const int root = static_cast<int>(k / 2) % w.size();
    std::vector<M2> red(n);
    w.reduce(in, red, op, root);
    if (w.rank() == root) {
      ASSERT_TRUE(red == want) << "reduce n=" << n << " root=" << root;
    }
    // In place, at the next root (rank 0 and rank 1 combine their own input differently).
    const int next = (root + 1) % w.size();
    std::vector<M2> red_inplace = in;
    w.reduce(red_inplace, op, next);
    if (w.rank() == next) {
      ASSERT_TRUE(red_inplace == want) << "in-place reduce n=" << n << " root=" << next;
    }
  }
}

TEST(Collectives, BroadcastAndGatherAtStagingBoundariesEveryRoot) {
  auto& w = world();
  const auto n = static_cast<std::size_t>(w.size());
  const std::size_t chunk = cohort::transport::collective_chunk_bytes(w.size());
  const std::size_t ring = chunk * cohort::transport::collective_slots(w.size());
  auto bytes_of = [](int seed, std::size_t bytes) {
    std::vector<std::uint8_t> v(bytes);
    for (std::size_t i = 0; i < bytes; ++i) v[i] = input_byte(seed, i);
    return v;
  };
  for (std::size_t bytes : {chunk - 1, chunk + 1, ring - 1, ring, ring + 1}) {
    for (int root = 0; root < w.size(); ++root) {
      const auto expect = bytes_of(root, bytes);
      std::vector<std::uint8_t> buf = w.rank() == root ? expect : std::vector<std::uint8_t>(bytes, 0);
      w.broadcast(buf, root);
      ASSERT_TRUE(buf == expect) << "broadcast bytes=" << bytes << " root=" << root;
      if (bytes > chunk + 1 && root != 0 && root != w.size() - 1) continue;  // gathers: fewer roots
      std::vector<std::uint8_t> all(w.rank() == root ? bytes * n : 0);
      w.gather(bytes_of(w.rank() + root, bytes), all, root);
      if (w.rank() == root) {
        for (std::size_t r = 0; r < n; ++r) {
          const auto theirs = bytes_of(static_cast<int>(r) + root, bytes);
          ASSERT_EQ(0, std::memcmp(all.data() + r * bytes, theirs.data(), bytes))
              << "gather bytes=" << bytes << " root=" << root << " from rank " << r;
        }
      }
    }
  }
}

TEST(Collectives, AlltoallAtStagingBoundaries) {
  auto& w = world();
  const auto n = static_cast<std::size_t>(w.size());
  const auto me = static_cast<std::size_t>(w.rank());
  const std::size_t chunk = cohort::transport::collective_chunk_bytes(w.size());
  // 4 KiB and up to a chunk: one chunk a block (kBlockChunkMinBytes); repeated with new contents
  // each time so that the staging slots wrap (8 ranks: 7 chunks a call, 16 slots) and a stale
  // block would show.
  for (std::size_t block : {std::size_t{8}, std::size_t{4095}, std::size_t{4096}, std::size_t{4097},
                            std::size_t{24576}, chunk - 1, chunk, chunk + 1}) {
    for (int round = 0; round < 5; ++round) {
      std::vector<std::uint8_t> send(block * n), recv(block * n, 0), expect(block * n);
      for (std::size_t j = 0; j < n; ++j) {
        for (std::size_t i = 0; i < block; ++i) {
          send[j * block + i] = input_byte(static_cast<int>((me * n + j) * 5) + round, i);
          expect[j * block + i] = input_byte(static_cast<int>((j * n + me) * 5) + round, i);
        }
      }
      w.alltoall(send, recv);
      ASSERT_TRUE(recv == expect) << "block=" << block << " round=" << round;
    }
  }
}

TEST(Collectives, ScanAndExscan) {
  auto& w = world();
  for (std::size_t n : {0ul, 1ul, 10ul, 11ul, 20000ul}) {
    std::vector<std::int64_t> in(n), out(n, -1), ex(n, -7);
    for (std::size_t i = 0; i < n; ++i) in[i] = input_int(w.rank(), i);
    w.scan(in, out, std::plus<>{});
    w.exscan(in, ex, std::plus<>{});
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t e = 0;
      for (int r = 0; r < w.rank(); ++r) e += input_int(r, i);
      ASSERT_EQ(out[i], e + input_int(w.rank(), i)) << "scan n=" << n;
      if (w.rank() > 0) {
        ASSERT_EQ(ex[i], e) << "exscan n=" << n;
      } else {
        ASSERT_EQ(ex[i], -7) << "exscan leaves rank 0 untouched";
      }
    }
  }
  EXPECT_EQ(w.scan(1, std::plus<>{}), w.rank() + 1);
  EXPECT_EQ(w.exscan(1, std::plus<>{}), w.rank() == 0 ? 1 : w.rank());
}

TEST(Collectives, ReduceScatter) {
  auto& w = world();
  for (std::size_t block : {0ul, 1ul, 5ul, 9000ul}) {
    auto n = static_cast<std::size_t>(w.size());
    std::vector<std::int64_t> in(block * n), out(block);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = input_int(w.rank(), i);
    w.reduce_scatter(in, out, std::plus<>{});
    for (std::size_t i = 0; i < block; ++i) {
      std::int64_t e = 0;
      for (int r = 0; r < w.size(); ++r) e += input_int(r, static_cast<std::size_t>(w.rank()) * block + i);
      ASSERT_EQ(out[i], e);
    }
  }
}

TEST(Collectives, GatherAndScatterEveryRoot) {
  auto& w = world();
  const auto n = static_cast<std::size_t>(w.size());
  for (std::size_t count : {0ul, 1ul, 3ul, 20ul, 30000ul}) {
    for (int root = 0; root < w.size(); ++root) {
      if (count > 1000 && root > 1) continue;
      std::vector<std::uint8_t> mine(count);
      for (std::size_t i = 0; i < count; ++i) mine[i] = input_byte(w.rank(), i);
      std::vector<std::uint8_t> all(w.rank() == root ? count * n : 0);
      w.gather(mine, all, root);
      if (w.rank() == root) {
        for (std::size_t r = 0; r < n; ++r) {
          for (std::size_t i = 0; i < count; ++i) {
            ASSERT_EQ(all[r * count + i], input_byte(static_cast<int>(r), i)) << "gather";
          }
        }
      }
      std::vector<std::uint8_t> src(w.rank() == root ? count * n : 0), got(count);
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = input_byte(root, i);
      w.scatter(src, got, root);
      for (std::size_t i = 0; i < count; ++i) {
        ASSERT_EQ(got[i], input_byte(root, static_cast<std::size_t>(w.rank()) * count + i)) << "scatter";
      }
    }
  }
  for (int root = 0; root < w.size(); ++root) {
    auto v = w.gather(w.rank() * 10, root);
    if (w.rank() == root) {
      ASSERT_EQ(v.size(), n);
      for (std::size_t r = 0; r < n; ++r) EXPECT_EQ(v[r], static_cast<int>(r) * 10);
    } else {
      EXPECT_TRUE(v.empty());
    }
    std::vector<int> s(w.rank() == root ? n : 0);
    std::iota(s.begin(), s.end(), 100);
    EXPECT_EQ(w.scatter(s, root), 100 + w.rank());
  }
}

TEST(Collectives, VariableCountVariants) {
  auto& w = world();
  const auto n = static_cast<std::size_t>(w.size());
  for (std::size_t scale : {1ul, 4000ul}) {
    std::vector<std::size_t> counts(n);
    for (std::size_t r = 0; r < n; ++r) counts[r] = ((r * 7) % 5) * scale;  // zero for some ranks
    std::size_t total = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
    std::vector<std::size_t> displ(n + 1, 0);
    for (std::size_t r = 0; r < n; ++r) displ[r + 1] = displ[r] + counts[r];
    const auto me = static_cast<std::size_t>(w.rank());
    std::vector<std::int64_t> mine(counts[me]);
    for (std::size_t i = 0; i < mine.size(); ++i) mine[i] = input_int(w.rank(), i);
    for (int root = 0; root < w.size(); ++root) {
      std::vector<std::int64_t> all(w.rank() == root ? total : 0);
      w.gatherv(mine, all, counts, root);
      if (w.rank() == root) {
        for (std::size_t r = 0; r < n; ++r) {
          for (std::size_t i = 0; i < counts[r]; ++i) ASSERT_EQ(all[displ[r] + i], input_int(static_cast<int>(r), i));
        }
      }
      std::vector<std::int64_t> src(w.rank() == root ? total : 0), got(counts[me]);
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = input_int(root, i);
      w.scatterv(src, counts, got, root);
      for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], input_int(root, displ[me] + i));
    }
    std::vector<std::int64_t> everything(total);
    w.allgatherv(mine, everything, counts);
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t i = 0; i < counts[r]; ++i) ASSERT_EQ(everything[displ[r] + i], input_int(static_cast<int>(r), i));
    }
    // alltoallv: rank i sends (i + j) % 3 * scale elements to rank j.
    auto amount = [&](std::size_t i, std::size_t j) { return ((i + j) % 3) * scale; };
    std::vector<std::size_t> sc(n), rc(n);
    for (std::size_t j = 0; j < n; ++j) {
      sc[j] = amount(me, j);
      rc[j] = amount(j, me);
    }
    std::vector<std::int64_t> send(std::accumulate(sc.begin(), sc.end(), std::size_t{0}));
    std::size_t k = 0;
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < sc[j]; ++i) send[k++] = static_cast<std::int64_t>(me * 1000000 + j * 10000 + i);
    }
    std::vector<std::int64_t> recv(std::accumulate(rc.begin(), rc.end(), std::size_t{0}), -1);
    w.alltoallv(send, sc, recv, rc);
    k = 0;
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < rc[j]; ++i) ASSERT_EQ(recv[k++], static_cast<std::int64_t>(j * 1000000 + me * 10000 + i));
    }
  }
}

TEST(Collectives, AllgatherAndAlltoall) {
  auto& w = world();
  const auto n = static_cast<std::size_t>(w.size());
  const auto me = static_cast<std::size_t>(w.rank());
  for (std::size_t count : {0ul, 1ul, 9ul, 11ul, 50000ul}) {
    std::vector<double> mine = doubles(w.rank(), count), all(count * n);
    w.allgather(mine, all);
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(all[r * count + i], input_double(static_cast<int>(r), i));
    }
    std::vector<std::int32_t> send(count * n), recv(count * n, -1);
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < count; ++i) send[j * count + i] = static_cast<std::int32_t>(me * 100000 + j * 1000 + i % 1000);
    }
    w.alltoall(send, recv);
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(recv[j * count + i], static_cast<std::int32_t>(j * 100000 + me * 1000 + i % 1000));
    }
  }
  auto ranks = w.allgather(w.rank());
  for (std::size_t r = 0; r < n; ++r) EXPECT_EQ(ranks[r], static_cast<int>(r));
}

TEST(Communicators, SplitEvenOddAndByKey) {
  auto& w = world();
  auto half = w.split(w.rank() % 2, w.rank());
  ASSERT_TRUE(half.has_value());
  EXPECT_EQ(half->size(), (w.size() + 1 - w.rank() % 2) / 2);
  EXPECT_EQ(half->rank(), w.rank() / 2);
  // Members of each half sum their world ranks.
  int sum = half->allreduce(w.rank(), std::plus<>{});
  int expect = 0;
  for (int r = w.rank() % 2; r < w.size(); r += 2) expect += r;
  EXPECT_EQ(sum, expect);
  // Reverse order by key: new rank 0 is the highest world rank.
  auto rev = w.split(0, -w.rank());
  ASSERT_TRUE(rev.has_value());
  EXPECT_EQ(rev->rank(), w.size() - 1 - w.rank());
  auto order = rev->allgather(w.rank());
  for (int i = 0; i < rev->size(); ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], w.size() - 1 - i);
  // Collectives on the sub-communicators, every root, with data.
  for (int root = 0; root < half->size(); ++root) {
    std::vector<double> v(20000, half->rank() == root ? 1.5 * root : 0.0);
    half->broadcast(v, root);
    EXPECT_EQ(v.back(), 1.5 * root);
    half->barrier();
  }
  // Undefined color: no communicator.
  auto some = w.split(w.rank() == 0 ? cohort::undefined : 1, 0);
  EXPECT_EQ(some.has_value(), w.rank() != 0);
  if (some) {
    EXPECT_EQ(some->size(), w.size() - 1);
  }
  // Nested split of a split.
  auto quarter = half->split(half->rank() % 2, 0);
  ASSERT_TRUE(quarter.has_value());
  EXPECT_EQ(quarter->allreduce(1, std::plus<>{}), quarter->size());
}

TEST(Communicators, DupIsIsolatedAndCollectivesInterleave) {
  auto& w = world();
  auto d = w.dup();
  EXPECT_EQ(d.size(), w.size());
  EXPECT_EQ(d.rank(), w.rank());
  auto half = w.split(w.rank() % 2, 0);
  for (int k = 0; k < 30; ++k) {
    int root = k % w.size();
    std::int64_t a = w.rank() == root ? k : -1;
    std::int64_t b = w.rank() == (w.size() - 1 - root) ? 1000 + k : -1;
    d.broadcast(b, w.size() - 1 - root);
    w.broadcast(a, root);
    EXPECT_EQ(a, k);
    EXPECT_EQ(b, 1000 + k);
    EXPECT_EQ(half->allreduce(1, std::plus<>{}), half->size());
    std::vector<double> big(k % 3 == 0 ? 30000 : 3, w.rank());
    d.allreduce(big, cohort::max);
    EXPECT_EQ(big[0], w.size() - 1);
    if (k % 5 == 0) d.barrier();
  }
}

TEST(Collectives, ManySmallCollectivesInARow) {
  auto& w = world();
  std::int64_t acc = 0;
  for (int k = 0; k < 300; ++k) {
    acc += w.allreduce(static_cast<std::int64_t>(w.rank() + k), std::plus<>{});
    int x = w.rank() == k % w.size() ? k : 0;
    w.broadcast(x, k % w.size());
    ASSERT_EQ(x, k);
  }
  std::int64_t n = w.size();
  EXPECT_EQ(acc, 300 * n * (n - 1) / 2 + n * (299 * 300 / 2));
}

}  // namespace

namespace {

struct Particle {  // a cereal type
  std::string name;
  std::vector<double> position;
  template <class A>
  void serialize(A& ar) {
    ar(name, position);
  }
  friend bool operator==(const Particle&, const Particle&) = default;
};

Particle particle(int r) {
  return Particle{"p" + std::string(static_cast<std::size_t>(r) * 3, 'x'), std::vector<double>(static_cast<std::size_t>(r), r * 0.5)};
}

TEST(Collectives, SerializedValues) {
  auto& w = world();
  for (int root = 0; root < w.size(); ++root) {
    Particle p = w.rank() == root ? particle(root + 1) : Particle{};
    w.broadcast(p, root);
    EXPECT_EQ(p, particle(root + 1));
    std::vector<std::string> words;
    if (w.rank() == root) words = {"alpha", "", std::string(100000, 'z')};
    w.broadcast(words, root);
    ASSERT_EQ(words.size(), 3u);
    EXPECT_EQ(words[2].size(), 100000u);
    auto names = w.gather(std::string(static_cast<std::size_t>(w.rank()), 'a'), root);
    if (w.rank() == root) {
      ASSERT_EQ(names.size(), static_cast<std::size_t>(w.size()));
      for (int r = 0; r < w.size(); ++r) EXPECT_EQ(names[static_cast<std::size_t>(r)], std::string(static_cast<std::size_t>(r), 'a'));
    }
  }
  auto all = w.allgather(particle(w.rank()));
  for (int r = 0; r < w.size(); ++r) EXPECT_EQ(all[static_cast<std::size_t>(r)], particle(r));
}

TEST(Collectives, InterleavedWithPointToPoint) {
  auto& w = world();
  auto half = w.split(w.rank() % 2, 0);
  const int right = (w.rank() + 1) % w.size();
  const int left = (w.rank() + w.size() - 1) % w.size();
  for (int k = 0; k < 40; ++k) {
    // A message in flight across a collective on the same communicator.
    std::vector<int> msg(static_cast<std::size_t>(k % 3 == 0 ? 20000 : 3), w.rank() * 100 + k);
    auto sreq = w.isend(msg, right, cohort::Tag{k % 5});
    int sum = w.allreduce(k, std::plus<>{});
    EXPECT_EQ(sum, k * w.size());
    std::vector<int> got;
    w.recv(got, left, cohort::Tag{k % 5});
    sreq.wait();
    ASSERT_EQ(got.size(), msg.size());
    EXPECT_EQ(got[0], left * 100 + k);
    // And on a sub-communicator, between collectives there.
    std::int64_t hs = half->allreduce(static_cast<std::int64_t>(half->rank()), std::plus<>{});
    if (half->size() > 1) {
      const int hr = (half->rank() + 1) % half->size();
      const int hl = (half->rank() + half->size() - 1) % half->size();
      half->send(half->rank(), hr, cohort::Tag{1});
      int from = -1;
      half->recv(from, hl, cohort::Tag{1});
      EXPECT_EQ(from, hl);
    }
    EXPECT_EQ(hs, static_cast<std::int64_t>(half->size()) * (half->size() - 1) / 2);
    w.barrier();
  }
}

}  // namespace
