// Access to the Environment created by the rank-aware test main.
#pragma once

#include <cohort/environment.hpp>

namespace cohort::testing {
/// The job's Environment (created by tests/support/rank_main.cpp before any test runs).
Environment& env();
}  // namespace cohort::testing
