// Fuzz: pool_map's frames as the root and the workers read them (runtime/patterns/pool_frames.hpp
// parse_chunk_header and parse_end_frame, cohort/pool.hpp FrameReader as deliver_frame uses it).
#include <string>
#include <vector>

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include "cohort/pool.hpp"
#include "runtime/patterns/pool_frames.hpp"
#include "tests/fuzz/fuzz_target.hpp"

namespace {

template <class R>
void read_results(std::span<const std::byte> frame, std::size_t count) {
  cohort::detail::FrameReader reader(frame);
  if (reader.get_mode() == cohort::detail::kDenseChunk) {
    if constexpr (cohort::detail::RawValue<R>) {
      for (std::size_t i = 0; i < count; ++i) (void)reader.template get_raw<R>();
    }
  } else {
    for (std::size_t i = 0; i < count; ++i) (void)reader.template get_outcome<R>();
  }
  reader.expect_end();
}

}  // namespace

COHORT_FUZZ_TARGET(pool_frames) {
  cohort::fuzz::Input in(data, size);
  const auto which = in.take<std::uint8_t>();
  const auto items = in.take<std::uint16_t>();
  std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(in.rest()), in.left());
  try {
    if (which % 5 == 4) {
      cohort::detail::EndFrame end = cohort::detail::parse_end_frame(frame);
      COHORT_FUZZ_CHECK(end.report.size() + end.rest.size() + 8 == frame.size());
      return 0;
    }
    cohort::detail::ChunkHeader h = cohort::detail::parse_chunk_header(frame, items);
    COHORT_FUZZ_CHECK(h.first <= h.last && h.last <= items);
    auto results = frame.subspan(h.offset);
    const std::size_t count = static_cast<std::size_t>(h.last - h.first);
    switch (which % 5) {
      case 0: read_results<int>(results, count); break;
      case 1: read_results<double>(results, count); break;
      case 2: read_results<std::string>(results, count); break;
      default: read_results<std::vector<std::string>>(results, count); break;
    }
  } catch (const cohort::DeserializeError&) {
  }
  return 0;
}
