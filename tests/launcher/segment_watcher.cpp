// segment_watcher: a Cohort-linked rank that checks what cohortrun writes into the job segment.
//   segment_watcher exited   rank 1 leaves with _Exit(0) (no clean detach); rank 0 waits until
//                            the launcher marks it exited and prints "rank 1 exited status 0"
//   segment_watcher abort    rank 1 exits with 3; rank 0 ignores SIGTERM, waits for the
//                            segment's abort flag and prints "abort seen", then exits 0
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <cohort/cohort.hpp>

#include "runtime/runtime.hpp"

namespace {
void say(const std::string& s) {
  std::string line = s + "\n";
  if (::write(1, line.data(), line.size()) < 0) std::_Exit(5);
}
template <class Pred>
bool wait_for(Pred pred) {
  for (int i = 0; i < 10000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}
}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "exited";
  if (mode == "abort") std::signal(SIGTERM, SIG_IGN);
  cohort::Environment env(argc, argv);
  const auto& seg = cohort::detail::Runtime::current()->segment();
  int rank = env.world().rank();
  if (rank == 1) {
    // Rank 0 must be attached (its SIGTERM ignored) before this rank leaves.
    if (!wait_for([&] { return seg.slot(0).state.load() != 0; })) return 9;
    std::_Exit(mode == "abort" ? 3 : 0);
  }
  if (rank != 0) return 0;
  if (mode == "exited") {
    if (!wait_for([&] { return !seg.alive(1); })) return 7;
    auto state = static_cast<cohort::transport::RankState>(seg.slot(1).state.load());
    say(std::string("rank 1 ") + (state == cohort::transport::RankState::exited ? "exited" : "?") +
        " status " + std::to_string(seg.slot(1).exit_status.load()));
    return 0;
  }
  if (!wait_for([&] { return seg.header().abort.load() != 0; })) return 8;
  say("abort seen");
  return 0;
}
