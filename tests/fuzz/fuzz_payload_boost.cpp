// Fuzz target payload_boost: defined in fuzz_payload.cpp (this file selects it for libFuzzer).
#define COHORT_FUZZ_ONLY_BOOST 1
#include "tests/fuzz/fuzz_payload.cpp"  // NOLINT: one source, two libFuzzer entry points
