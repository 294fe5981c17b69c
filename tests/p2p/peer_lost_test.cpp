// A blocked receive or send whose peer has ended throws PeerLost naming it, once no matching
// message remains; an any-source receive only when every other rank has ended. Runs under
// cohortrun; ranks other than 0 send one message each and end at once.
#include <cstdio>
#include <string>
#include <vector>

#include <cohort/cohort.hpp>

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "peer_lost_test: FAILED: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main(int argc, char** argv) {
  cohort::Environment env(argc, argv);
  auto& c = env.world();
  if (c.size() < 2) return 0;
  if (c.rank() != 0) {
    c.send(c.rank(), 0, cohort::Tag{1});  // sent before ending: must still be received
    return 0;                             // ~Environment: this rank is finished
  }
  // The message rank 1 sent before it ended is received, then nothing more can come.
  check(c.recv<int>(1, cohort::Tag{1}) == 1, "message sent before the peer ended");
  try {
    (void)c.recv<int>(1, cohort::Tag{1});
    check(false, "recv from an ended rank returned");
  } catch (const cohort::PeerLost& e) {
    check(e.peer() == 1, "PeerLost names rank 1");
    check(std::string(e.what()).find("rank 1") != std::string::npos, "message names rank 1");
  }
  // Any-source: the other ranks' messages are still there, then PeerLost.
  for (int r = 2; r < c.size(); ++r) (void)c.recv<int>(cohort::any_source, cohort::Tag{1});
  try {
    (void)c.recv<int>(cohort::any_source, cohort::Tag{1});
    check(false, "any-source recv with every other rank ended returned");
  } catch (const cohort::PeerLost&) {
  }
  // Non-blocking receive, then a large send that can never be consumed.
  int x = 0;
  auto r = c.irecv(x, 1, cohort::Tag{2});
  try {
    r.wait();
    check(false, "wait on a receive from an ended rank returned");
  } catch (const cohort::PeerLost& e) {
    check(e.peer() == 1, "request PeerLost names rank 1");
  }
  try {
    c.send(std::vector<char>(64 << 20, 'x'), 1, cohort::Tag{3});
    check(false, "a 64 MiB send to an ended rank returned");
  } catch (const cohort::PeerLost& e) {
    check(e.peer() == 1, "send PeerLost names rank 1");
  }
  if (failures == 0) std::printf("peer_lost_test: OK\n");
  return failures == 0 ? 0 : 1;
}
