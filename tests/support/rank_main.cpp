// GoogleTest main for multi-rank tests: creates the Environment before the tests run, prefixes
// failures with the rank, and exits non-zero on any rank's failure (so cohortrun fails the job).
#include <gtest/gtest.h>

#include <cohort/cohort.hpp>

#include "tests/support/rank_env.hpp"

namespace cohort::testing {
namespace {
Environment* g_env = nullptr;
}
Environment& env() { return *g_env; }
}  // namespace cohort::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  cohort::Environment env(argc, argv);
  cohort::testing::g_env = &env;
  if (env.world().rank() != 0) {
    // Only rank 0 prints the progress listing; every rank still prints its failures.
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    struct FailurePrinter : ::testing::EmptyTestEventListener {
      int rank;
      explicit FailurePrinter(int r) : rank(r) {}
      void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (r.failed()) {
          std::fprintf(stderr, "rank %d: %s:%d: failure\n%s\n", rank,
                       r.file_name() ? r.file_name() : "?", r.line_number(), r.summary());
        }
      }
    };
    listeners.Append(new FailurePrinter(env.world().rank()));
  }
  return RUN_ALL_TESTS();
}
