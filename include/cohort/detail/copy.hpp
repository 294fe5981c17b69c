/// @file cohort/detail/copy.hpp
/// Internal: the bulk copy behind every payload copy, in the library and in the headers that
/// copy payloads themselves (the cereal archives, pool results).
///
/// copy_bytes() is std::memcpy with one case routed around. On AMD Zen cores glibc's memcpy
/// (2.36, Debian 12) copies with `rep movsb` from ~2 KiB up to about L2 size, and `rep movsb`
/// runs 15-20x slower when the destination lies 1-63 bytes past the source modulo 4 KiB
/// (measured on the Zen 4 reference machine, 64 KiB: ~2 GB/s instead of ~40; at 512 KiB and up
/// glibc takes another path and the case is gone). That distance is common, not exotic: two
/// std::vectors of a power-of-two byte size allocated one after the other sit 16 bytes past a
/// multiple of 4 KiB (malloc's chunk header), so `reduce(in, out)` at the root copied its
/// 64 KiB input into its output at 2 GB/s (np=2 64 KiB reduce 51 us, 3.7x Open MPI). The
/// same bug in other projects: microsoft/STL#5658, python/cpython#137121; newer glibc releases
/// avoid `rep movsb` for such distances themselves.
///
/// In that case copy_bytes() copies with 16-byte vector loads and stores instead (20-40 GB/s at
/// the same distances); everywhere else it is exactly std::memcpy. Same contract as memcpy (no
/// overlap), except that an empty copy may pass null pointers.
///
///   cohort::detail::copy_bytes(out.data(), in.data(), in.size() * sizeof(double));
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cohort::detail {

/// Copies from this size on may take glibc's `rep movsb` path (its threshold is 2 KiB or more,
/// depending on the cpu; smaller copies use vector moves and are never slow).
inline constexpr std::size_t kRepMovsbMinBytes = 1024;

/// True for a copy of `bytes` whose destination is 1-63 bytes past its source modulo 4 KiB:
/// the case glibc's memcpy makes slow (see the file comment). Pure, for tests.
constexpr bool memcpy_aliasing_case(std::uintptr_t dst, std::uintptr_t src,
                                    std::size_t bytes) noexcept {
  return bytes >= kRepMovsbMinBytes && ((dst - src) & 4095u) - 1u < 63u;
}

/// The vector copy of the aliasing case (in libcohort, runtime/transport/copy.cpp; out of
/// line: the hot path stays one compare).
void copy_vectors(std::byte* dst, const std::byte* src, std::size_t bytes) noexcept;

/// std::memcpy(dst, src, bytes), fast at every distance between dst and src; `bytes` may be 0
/// with null pointers. The ranges must not overlap.
inline void copy_bytes(void* dst, const void* src, std::size_t bytes) noexcept {
  if (bytes == 0) return;
#if defined(__x86_64__)
  if (memcpy_aliasing_case(reinterpret_cast<std::uintptr_t>(dst),
                           reinterpret_cast<std::uintptr_t>(src), bytes)) [[unlikely]] {
    copy_vectors(static_cast<std::byte*>(dst), static_cast<const std::byte*>(src), bytes);
    return;
  }
#endif
  std::memcpy(dst, src, bytes);
}

}  // namespace cohort::detail
