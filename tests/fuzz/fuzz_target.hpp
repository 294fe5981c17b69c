// A fuzz target is one function over bytes. In the COHORT_FUZZ=ON clang build it is libFuzzer's
// entry point (one executable per target, tests/fuzz/CMakeLists.txt); in every other build it is
// an ordinary function that tests/fuzz/replay_test.cpp calls on the committed seed corpus and crash
// reproducers, so g++, ASan and TSan builds check them too.
//
// The rule every target checks: bad input gives a typed cohort error (DeserializeError,
// ContractError) or a documented decoder exception, never a crash, a hang, a sanitizer report or a
// silently wrong value. A target returns 0; anything else escapes (and fails the run).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>

#ifdef COHORT_LIBFUZZER
#define COHORT_FUZZ_TARGET(name) \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
#else
#define COHORT_FUZZ_TARGET(name) int cohort_fuzz_##name(const std::uint8_t* data, std::size_t size)
#endif

/// A property that must hold for every input (a silently wrong value otherwise).
#define COHORT_FUZZ_CHECK(cond)                                                  \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

namespace cohort::fuzz {

/// Reads fuzz input in pieces; missing bytes read as zero.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
  template <class T>
  T take() noexcept {
    T v{};
    auto* out = reinterpret_cast<unsigned char*>(&v);
    for (std::size_t i = 0; i < sizeof v && at_ < size_; ++i) out[i] = data_[at_++];
    return v;
  }
  [[nodiscard]] const std::uint8_t* rest() const noexcept { return data_ + at_; }
  [[nodiscard]] std::size_t left() const noexcept { return size_ - at_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

}  // namespace cohort::fuzz
