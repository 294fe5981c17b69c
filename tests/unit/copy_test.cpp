// copy_bytes (cohort/detail/copy.hpp, runtime/transport/copy.hpp): memcpy with glibc's slow `rep movsb` case
// (destination 1-63 bytes past the source modulo 4 KiB, AMD Zen) taken by a vector loop. The
// speed is measured in bench/, never here; these tests pin which copies take the vector path
// and that every path copies exactly the bytes asked for, no more.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/transport/copy.hpp"

namespace cohort::transport {
namespace {

TEST(CopyBytes, AliasingCaseIsDestination1To63BytesPastSourceModulo4KiB) {
  constexpr std::uintptr_t src = 0x10000;
  for (std::uintptr_t d = 0; d < 3 * 4096; ++d) {
    const std::uintptr_t m = d % 4096;
    EXPECT_EQ(memcpy_aliasing_case(src + d, src, 65536), m >= 1 && m <= 63) << "distance " << d;
  }
  // Behind the source by a small amount is not the case (glibc copies that fine)...
  EXPECT_FALSE(memcpy_aliasing_case(src - 16, src, 65536));
  // ... but a whole number of pages plus a little behind is the same distance modulo 4 KiB.
  EXPECT_TRUE(memcpy_aliasing_case(src - 4096 + 16, src, 65536));
  // Small copies never take `rep movsb`.
  EXPECT_FALSE(memcpy_aliasing_case(src + 16, src, kRepMovsbMinBytes - 1));
  EXPECT_TRUE(memcpy_aliasing_case(src + 16, src, kRepMovsbMinBytes));
}

// Copies every length around the vector loop's 64-byte step and the size threshold, at every
// distance of the window and just outside it, and checks the copy and the bytes around it.
TEST(CopyBytes, CopiesExactlyTheRangeAtEveryDistanceAndLength) {
  std::vector<std::byte> mem(5 * 65536);
  const std::size_t src_at = 4096;
  std::vector<std::size_t> lengths = {0, 1, 63, 64, 65, 127, 128, kRepMovsbMinBytes - 1,
                                      kRepMovsbMinBytes, kRepMovsbMinBytes + 1, 4095, 4096, 4097,
                                      65536 - 1, 65536 + 63};
  int vector_cases = 0;
  for (std::size_t dist : {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{63},
                           std::size_t{64}, std::size_t{4096 + 1}, std::size_t{65536 + 16},
                           std::size_t{65536 + 63}, std::size_t{65536 + 64}}) {
    for (std::size_t n : lengths) {
      const std::size_t dst_at = src_at + 2 * 65536 + dist;  // past the source and its guard
      ASSERT_LE(dst_at + n + 64, mem.size());
      for (std::size_t i = 0; i < mem.size(); ++i) {
        mem[i] = static_cast<std::byte>((i * 7 + 3) & 0xff);
      }
      std::byte* dst = mem.data() + dst_at;
      const std::byte* src = mem.data() + src_at;
      if (memcpy_aliasing_case(reinterpret_cast<std::uintptr_t>(dst),
                               reinterpret_cast<std::uintptr_t>(src), n)) {
        ++vector_cases;
      }
      const std::vector<std::byte> before(mem);
      copy_bytes(dst, src, n);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(dst[i], src[i]) << "byte " << i << " of " << n << " at distance " << dist;
      }
      for (std::size_t i = 0; i < 64; ++i) {
        ASSERT_EQ(mem[dst_at + n + i], before[dst_at + n + i]) << "wrote past the end, n " << n;
        ASSERT_EQ(mem[dst_at - 1 - i], before[dst_at - 1 - i]) << "wrote before the start, n " << n;
      }
    }
  }
  // dst - src is 2 * 65536 + dist, the same as dist modulo 4 KiB: distances 1, 16, 63, 4097,
  // 65552 and 65599 are in the window, so the vector path ran.
  EXPECT_GT(vector_cases, 0);
}

TEST(CopyBytes, EmptyCopyAcceptsNullPointers) {
  copy_bytes(nullptr, nullptr, 0);
  SUCCEED();
}

}  // namespace
}  // namespace cohort::transport
