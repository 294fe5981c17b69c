// Minimal bootstrap launcher (replaced by the full cohortrun).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/contract/contract.hpp"
#include "runtime/platform/shared_memory.hpp"
#include "runtime/transport/segment.hpp"

int main(int argc, char** argv) {
  int n = 1;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-n" && i + 1 < argc) n = std::atoi(argv[++i]);
    else if (a == "--tag-output") continue;
    else if (a == "--timeout" && i + 1 < argc) ++i;
    else break;
  }
  using namespace cohort;
  auto layout = transport::segment_layout(n);
  auto fd = platform::create_shared_memory("cohort-job", layout.total_bytes, layout.reserved_bytes());
  platform::Mapping map(fd.get(), layout.total_bytes, "job");
  transport::Segment::format(map.bytes(), n, 1234, false);
  for (int r = 0; r < n; ++r) {
    if (::fork() == 0) {
      platform::keep_across_exec(fd.get());
      contract::LaunchInfo info{r, n, 1234, fd.get(), false, ""};
      for (auto& [k, v] : contract::format(info)) ::setenv(k.c_str(), v.c_str(), 1);
      ::execvp(argv[i], argv + i);
      std::_Exit(127);
    }
  }
  int rc = 0;
  for (int r = 0; r < n; ++r) {
    int st = 0;
    ::wait(&st);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
  }
  return rc;
}
