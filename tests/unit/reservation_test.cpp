// platform::Reservation: address space reserved without memory, pages handed back on release.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstddef>
#include <string>
#include <system_error>
#include <utility>

#include "runtime/platform/shared_memory.hpp"

namespace {

using cohort::platform::Reservation;

TEST(Reservation, ReservesMoreThanItCommitsAndReleasesWholePages) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  constexpr std::size_t kBytes = std::size_t{1} << 31;  // 2 GiB of address space, a few pages used
  Reservation r(kBytes, "reservation test");
  ASSERT_NE(r.data(), nullptr);
  EXPECT_EQ(r.size(), kBytes);
  std::byte* p = r.data();
  for (std::size_t at : {std::size_t{0}, page, 2 * page, 3 * page, kBytes - 1}) p[at] = std::byte{7};
  // [page / 2, 3 * page + 1): only the whole pages inside, page 1 and page 2, are released.
  r.release(page / 2, 3 * page + 1 - page / 2);
  EXPECT_EQ(p[0], std::byte{7});
  EXPECT_EQ(p[page], std::byte{0});
  EXPECT_EQ(p[2 * page], std::byte{0});
  EXPECT_EQ(p[3 * page], std::byte{7});
  EXPECT_EQ(p[kBytes - 1], std::byte{7});
  r.release(kBytes - page, 10 * page);  // clipped to the reservation
  EXPECT_EQ(p[kBytes - 1], std::byte{0});
  p[page] = std::byte{9};  // usable again after a release
  EXPECT_EQ(p[page], std::byte{9});

  Reservation moved(std::move(r));
  EXPECT_EQ(r.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(moved.data(), p);
  EXPECT_EQ(moved.data()[page], std::byte{9});
}

TEST(Reservation, FailureNamesTheObject) {
  try {
    Reservation r(~std::size_t{0} - 4096, "an impossible reservation");
    ADD_FAILURE() << "reserving nearly 2^64 bytes did not fail";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("an impossible reservation"), std::string::npos) << e.what();
  }
}

}  // namespace
