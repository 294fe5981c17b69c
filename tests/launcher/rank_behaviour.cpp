// rank_behaviour: a test rank that does what its arguments say, in order. Not Cohort-linked (the
// launcher must run any program); it reads COHORT_RANK itself.
//
//   ACTION[@RANK]...   an action with @RANK only runs on that rank
//   exit:CODE          exit with CODE
//   segv | abort       crash
//   sleep:MS           sleep MS milliseconds
//   print:LINES:LEN    print LINES lines "r<rank> l<i> xxxx..." of LEN characters, each line
//                      written in several small write(2)s (so lines are not written atomically)
//   eprint:LINES:LEN   the same on stderr
//   partial:TEXT       write TEXT without a newline
//   env:NAME           print "NAME=value" (or "NAME unset")
//   pidfile:DIR        write this process's pid to DIR/pid.<rank>
//   ready:DIR          create DIR/ready.<rank>
//   ignore:SIG         ignore signal SIG (TERM, INT, USR1)
//   wait_usr1:MS       wait up to MS ms for SIGUSR1; print "rank R got SIGUSR1" and go on, or exit 3
//   affinity           print "cpus=<count>"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

volatile std::sig_atomic_t g_usr1 = 0;
void on_usr1(int) { g_usr1 = 1; }

void write_raw(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) std::_Exit(5);
    off += static_cast<std::size_t>(n);
  }
}

void print_lines(int fd, int rank, long lines, long len) {
  for (long i = 0; i < lines; ++i) {
    std::string line = "r" + std::to_string(rank) + " l" + std::to_string(i) + " ";
    while (static_cast<long>(line.size()) < len) line.push_back(static_cast<char>('a' + (line.size() % 26)));
    line.push_back('\n');
    // Three pieces: the launcher must reassemble them.
    std::size_t a = line.size() / 3;
    std::size_t b = 2 * line.size() / 3;
    write_raw(fd, line.substr(0, a));
    write_raw(fd, line.substr(a, b - a));
    write_raw(fd, line.substr(b));
  }
}

int signal_number(const std::string& name) {
  if (name == "TERM") return SIGTERM;
  if (name == "INT") return SIGINT;
  if (name == "USR1") return SIGUSR1;
  std::fprintf(stderr, "rank_behaviour: unknown signal %s\n", name.c_str());
  std::_Exit(4);
}

}  // namespace

int main(int argc, char** argv) {
  const char* rank_env = std::getenv("COHORT_RANK");
  int rank = rank_env != nullptr ? std::atoi(rank_env) : 0;
  std::signal(SIGUSR1, on_usr1);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto at = arg.find('@');
    if (at != std::string::npos) {
      if (std::atoi(arg.c_str() + at + 1) != rank) continue;
      arg.resize(at);
    }
    std::string verb = arg.substr(0, arg.find(':'));
    std::string rest = arg.find(':') == std::string::npos ? "" : arg.substr(arg.find(':') + 1);
    if (verb == "exit") {
      std::fflush(stdout);
      std::_Exit(std::atoi(rest.c_str()));
    } else if (verb == "segv") {
      std::signal(SIGSEGV, SIG_DFL);
      ::raise(SIGSEGV);
    } else if (verb == "abort") {
      std::abort();
    } else if (verb == "sleep") {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(rest.c_str())));
    } else if (verb == "print" || verb == "eprint") {
      long lines = std::atol(rest.c_str());
      long len = std::atol(rest.substr(rest.find(':') + 1).c_str());
      print_lines(verb == "print" ? 1 : 2, rank, lines, len);
    } else if (verb == "partial") {
      write_raw(1, rest);
    } else if (verb == "env") {
      const char* v = std::getenv(rest.c_str());
      write_raw(1, v != nullptr ? rest + "=" + v + "\n" : rest + " unset\n");
    } else if (verb == "pidfile" || verb == "ready") {
      std::string path = rest + (verb == "pidfile" ? "/pid." : "/ready.") + std::to_string(rank);
      std::string tmp = path + ".tmp";
      int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) return 6;
      write_raw(fd, std::to_string(::getpid()) + "\n");
      ::close(fd);
      ::rename(tmp.c_str(), path.c_str());
    } else if (verb == "ignore") {
      std::signal(signal_number(rest), SIG_IGN);
    } else if (verb == "wait_usr1") {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::atol(rest.c_str()));
      while (g_usr1 == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (g_usr1 == 0) return 3;
      write_raw(1, "rank " + std::to_string(rank) + " got SIGUSR1\n");
    } else if (verb == "affinity") {
      cpu_set_t set;
      CPU_ZERO(&set);
      ::sched_getaffinity(0, sizeof set, &set);
      write_raw(1, "cpus=" + std::to_string(CPU_COUNT(&set)) + "\n");
    } else {
      std::fprintf(stderr, "rank_behaviour: unknown action %s\n", arg.c_str());
      return 4;
    }
  }
  return 0;
}
