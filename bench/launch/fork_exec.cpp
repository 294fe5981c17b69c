// The floor under any launcher on this machine: fork + execve N copies of PROGRAM one after the
// other, then wait for all of them (no pipes, no binding, no supervision, no shared memory).
//
//   fork_exec N PROGRAM [ARGS...]
//
// The launch suite times it next to `cohortrun -n N PROGRAM` and reports it under the table, so
// the launch_true ratio can be read against what fork and exec alone cost here. Not a test.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

extern char** environ;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fork_exec N PROGRAM [ARGS...]\n");
    return 2;
  }
  int n = std::atoi(argv[1]);
  for (int i = 0; i < n; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) {
      std::perror("fork");
      return 1;
    }
    if (pid == 0) {
      ::execve(argv[2], argv + 2, environ);
      ::_exit(127);
    }
  }
  int failed = 0;
  int status = 0;
  while (::wait(&status) > 0) failed += WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
  return failed == 0 ? 0 : 1;
}
