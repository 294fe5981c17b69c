// Requests that outlive their Environment: waiting on (or testing, or destroying) one afterwards
// is a clear cohort::Error, never a use of the ended runtime (ASan would see one). Runs under
// cohortrun -n 2: rank 0 keeps a receive nobody matches, a large send nobody receives, and one
// that completed; rank 1 only ends.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <cohort/cohort.hpp>

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "outlive_test: FAILED: %s\n", what);
    ++failures;
  }
}
bool says_environment_ended(const std::exception& e) {
  return std::string(e.what()).find("Environment ended before this request completed") != std::string::npos;
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<cohort::Request> reqs;
  std::vector<double> big(1 << 20, 1.0);  // 8 MiB: streamed, cannot complete unreceived
  int in = 0;
  cohort::Request done;
  {
    auto env = std::make_unique<cohort::Environment>(argc, argv);
    auto& c = env->world();
    if (c.size() != 2) {
      std::fprintf(stderr, "outlive_test: run with 2 ranks\n");
      return 2;
    }
    if (c.rank() == 1) return 0;
    reqs.push_back(c.irecv(in, 1, cohort::Tag{7}));       // never sent
    reqs.push_back(c.isend(std::span(std::as_const(big)), 1, cohort::Tag{8}));  // never received
    done = c.isend(42, 0, cohort::Tag{9});                // to itself: completes at once
    int got = 0;
    (void)c.recv(got, 0, cohort::Tag{9});
    check(got == 42, "message to itself");
  }
  // The Environment has ended; the requests remain.
  try {
    (void)reqs[0].wait();
    check(false, "wait on an unmatched receive returned");
  } catch (const cohort::Error& e) {
    check(says_environment_ended(e), "receive: the error says the Environment ended");
    check(std::string(e.what()).find("irecv from rank 1") != std::string::npos, "receive: names the peer");
  }
  check(!reqs[0].active(), "a failed request is inactive afterwards");
  try {
    (void)cohort::test_all(reqs);
    check(false, "test_all on an unfinished send returned");
  } catch (const cohort::Error& e) {
    check(says_environment_ended(e), "send: the error says the Environment ended");
    check(std::string(e.what()).find("isend to rank 1") != std::string::npos, "send: names the peer");
  }
  try {
    (void)done.wait();  // completed before the end: its status, no error
  } catch (const std::exception& e) {
    check(false, "a completed request fails after the end");
  }
  if (failures == 0) std::printf("outlive_test: OK\n");
  return failures == 0 ? 0 : 1;
}
