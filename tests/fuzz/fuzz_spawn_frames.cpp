// Fuzz: what a spawned child wrote on its result pipe, as the parent parses it
// (runtime/patterns/spawn_frames.hpp parse_spawn_frames).
#include "cohort/errors.hpp"
#include "runtime/patterns/spawn_frames.hpp"
#include "tests/fuzz/fuzz_target.hpp"

COHORT_FUZZ_TARGET(spawn_frames) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    cohort::detail::SpawnOutcome o = cohort::detail::parse_spawn_frames(bytes);
    if (o.has_result) {
      COHORT_FUZZ_CHECK(o.result.data() >= bytes.data() &&
                        o.result.data() + o.result.size() <= bytes.data() + bytes.size());
    }
    COHORT_FUZZ_CHECK(size == 0 || o.has_result || !o.error.empty());
  } catch (const cohort::DeserializeError&) {
  }
  return 0;
}
