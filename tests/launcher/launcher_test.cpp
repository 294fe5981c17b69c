// cohortrun's behaviour, observed from outside: each test runs build/bin/cohortrun on the helper
// programs (rank_behaviour, segment_watcher, sh) with its stdout and stderr in files.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "launcher/placement.hpp"
#include "runtime/platform/process.hpp"

namespace {

using namespace std::chrono_literals;
const std::string kCohortrun = COHORTRUN_PATH;
const std::string kRank = RANK_BEHAVIOUR_PATH;
const std::string kWatcher = SEGMENT_WATCHER_PATH;
const std::string kWaits = WAIT_BEHAVIOUR_PATH;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A line "<prefix><digits><suffix>".
bool has_line(const std::string& err, const std::string& prefix, const std::string& suffix) {
  for (const std::string& l : lines_of(err)) {
    if (l.size() <= prefix.size() + suffix.size() || l.compare(0, prefix.size(), prefix) != 0 || !ends_with(l, suffix)) continue;
    std::string middle = l.substr(prefix.size(), l.size() - prefix.size() - suffix.size());
    if (middle.find_first_not_of("0123456789") == std::string::npos) return true;
  }
  return false;
}

std::set<std::string> list_dir(const std::string& path) {
  std::set<std::string> names;
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.insert(n);
    }
    ::closedir(d);
  }
  return names;
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  // A zombie waiting for its reaper is gone as far as running goes.
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

struct Result {
  int status = -1;  // wait status
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{};
  [[nodiscard]] int code() const {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }
};

// A temporary directory per test, removed at the end.
class LauncherTest : public ::testing::Test {
 public:
  void SetUp() override {
    char tmpl[] = "/tmp/cohortrun_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (child_ > 0) {  // a test failed while cohortrun ran: do not leave it behind
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "cannot remove " << dir_;
  }

  // Starts cohortrun with `args`; stdout and stderr go to files in the test directory.
  void start(const std::vector<std::string>& args) {
    std::vector<std::string> all = {kCohortrun};
    all.insert(all.end(), args.begin(), args.end());
    started_ = std::chrono::steady_clock::now();
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      int out = ::open((dir_ + "/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open((dir_ + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(126);
    }
  }

  // Waits for cohortrun to end (at most `limit`; then it is killed and the test fails).
  Result wait(std::chrono::milliseconds limit = 20s) {
    Result r;
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      pid_t p = ::waitpid(child_, &r.status, WNOHANG);
      if (p == child_) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(child_, SIGKILL);
        ::waitpid(child_, &r.status, 0);
        ADD_FAILURE() << "cohortrun did not end within " << limit.count() << " ms";
        break;
      }
      std::this_thread::sleep_for(2ms);
    }
    child_ = -1;
    r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    r.out = read_file(dir_ + "/stdout");
    r.err = read_file(dir_ + "/stderr");
    return r;
  }

  Result run(const std::vector<std::string>& args, std::chrono::milliseconds limit = 20s) {
    start(args);
    return wait(limit);
  }

  // Waits until `count` ranks have created their ready file.
  bool wait_ready(int count, std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int n = 0;
      for (const auto& name : list_dir(dir_)) n += name.rfind("ready.", 0) == 0 && name.find(".tmp") == std::string::npos ? 1 : 0;
      if (n >= count) return true;
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }

  std::vector<pid_t> rank_pids(int count) {
    std::vector<pid_t> pids;
    for (int r = 0; r < count; ++r) {
      std::string text = read_file(dir_ + "/pid." + std::to_string(r));
      if (!text.empty()) pids.push_back(static_cast<pid_t>(std::stol(text)));
    }
    return pids;
  }

  void expect_all_gone(const std::vector<pid_t>& pids) {
    for (pid_t p : pids) EXPECT_TRUE(process_gone(p)) << "rank pid " << p << " survived cohortrun";
  }

  std::string pidfile() const { return "pidfile:" + dir_; }
  std::string ready() const { return "ready:" + dir_; }

  std::string dir_;
  pid_t child_ = -1;
  std::chrono::steady_clock::time_point started_;
};

int machine_cores() {
  auto topo = cohort::launcher::Topology::load_system();
  return cohort::launcher::count_cores(topo, cohort::platform::current_affinity());
}

// ---- exit codes -------------------------------------------------------------------------------

TEST_F(LauncherTest, ExitsZeroWhenEveryRankSucceeds) {
  Result r = run({"-n", "3", kRank, "sleep:10"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST_F(LauncherTest, ExitsWithTheFailingRanksCodeAndTerminatesTheOthers) {
  Result r = run({"-n", "4", kRank, pidfile(), "exit:7@2", "sleep:30000"});
  EXPECT_EQ(r.code(), 7) << r.err;
  EXPECT_TRUE(has_line(r.err, "cohortrun: rank 2 (pid ", ") exited with code 7"))
      << r.err;
  EXPECT_NE(r.err.find("ranks 0-1,3 terminated by cohortrun"), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, 15s);  // the others did not sleep their 30 s
  expect_all_gone(rank_pids(4));
}

TEST_F(LauncherTest, TheFirstFailureDecidesTheExitCode) {
  Result r = run({"-n", "3", kRank, "exit:5@2", "sleep:3000", "exit:9"});
  EXPECT_EQ(r.code(), 5) << r.err;
}

TEST_F(LauncherTest, CrashedRankGives128PlusSignal) {
  Result r = run({"-n", "3", "--grace", "0.5", kRank, pidfile(), "segv@1", "sleep:30000"});
  EXPECT_EQ(r.code(), 128 + SIGSEGV) << r.err;
  EXPECT_TRUE(has_line(r.err, "cohortrun: rank 1 (pid ", ") killed by SIGSEGV")) << r.err;
  EXPECT_LT(r.elapsed, 15s);
  expect_all_gone(rank_pids(3));
}

TEST_F(LauncherTest, AbortingRankEndsTheJob) {
  Result r = run({"-n", "2", kRank, pidfile(), "abort@0", "sleep:30000"});
  EXPECT_EQ(r.code(), 128 + SIGABRT) << r.err;
  EXPECT_NE(r.err.find("killed by SIGABRT"), std::string::npos) << r.err;
  expect_all_gone(rank_pids(2));
}

TEST_F(LauncherTest, RanksIgnoringSigtermAreKilledAfterTheGracePeriod) {
  Result r = run({"-n", "3", "--grace", "0.3", kRank, pidfile(), "ignore:TERM", "exit:1@0", "sleep:30000"});
  EXPECT_EQ(r.code(), 1) << r.err;
  EXPECT_NE(r.err.find("ranks 1-2 terminated by cohortrun"), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, 15s);
  expect_all_gone(rank_pids(3));
}

// ---- timeout ----------------------------------------------------------------------------------

TEST_F(LauncherTest, TimeoutExits124NamingTheRanksStillRunning) {
  Result r = run({"-n", "4", "--timeout", "0.5", kRank, pidfile(), "sleep:30000@1", "sleep:30000@3"});
  EXPECT_EQ(r.code(), 124) << r.err;
  EXPECT_NE(r.err.find("cohortrun: timeout"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ranks 1,3 still running"), std::string::npos) << r.err;
  expect_all_gone(rank_pids(4));
}

TEST_F(LauncherTest, JobFinishingBeforeTheTimeoutIsNotAffected) {
  Result r = run({"-n", "2", "--timeout", "30", kRank, "sleep:10"});
  EXPECT_EQ(r.code(), 0) << r.err;
}

// ---- signals ----------------------------------------------------------------------------------

void interrupt_test(LauncherTest& t, int signal) {
  t.start({"-n", "3", kRank, t.pidfile(), t.ready(), "sleep:30000"});
  ASSERT_TRUE(t.wait_ready(3));
  ASSERT_EQ(::kill(t.child_, signal), 0);
  Result r = t.wait();
  EXPECT_EQ(r.code(), 128 + signal) << r.err;
  EXPECT_NE(r.err.find("got " + cohort::platform::signal_name(signal)), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, 15s);
  t.expect_all_gone(t.rank_pids(3));
}

TEST_F(LauncherTest, SigintEndsEveryRank) { interrupt_test(*this, SIGINT); }
TEST_F(LauncherTest, SigtermEndsEveryRank) { interrupt_test(*this, SIGTERM); }

TEST_F(LauncherTest, Sigusr1IsForwardedToEveryRank) {
  start({"-n", "2", "--tag-output", kRank, ready(), "wait_usr1:15000"});
  ASSERT_TRUE(wait_ready(2));
  ASSERT_EQ(::kill(child_, SIGUSR1), 0);
  Result r = wait();
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_NE(r.out.find("[0] rank 0 got SIGUSR1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[1] rank 1 got SIGUSR1\n"), std::string::npos) << r.out;
}

TEST_F(LauncherTest, KilledLauncherTakesItsRanksAlong) {
  // Become the reaper of orphans so that the ranks, once reparented, are ours to check.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  start({"-n", "3", kRank, pidfile(), ready(), "sleep:30000"});
  ASSERT_TRUE(wait_ready(3));
  std::vector<pid_t> pids = rank_pids(3);
  ASSERT_EQ(pids.size(), 3u);
  ASSERT_EQ(::kill(child_, SIGKILL), 0);
  Result r = wait();
  EXPECT_EQ(r.code(), 128 + SIGKILL);
  for (pid_t p : pids) {
    int status = 0;
    pid_t got = 0;
    for (int i = 0; i < 5000 && got == 0; ++i) {
      got = ::waitpid(p, &status, WNOHANG);
      if (got == 0) std::this_thread::sleep_for(2ms);
    }
    ASSERT_EQ(got, p) << "rank pid " << p << " outlived the SIGKILLed launcher";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

// ---- bad input --------------------------------------------------------------------------------

void expect_rejected(LauncherTest& t, const std::vector<std::string>& args, const std::string& fragment) {
  Result r = t.run(args);
  EXPECT_EQ(r.code(), 2) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("usage: cohortrun"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(list_dir(t.dir_).count("pid.0") == 0) << "a rank was started for " << args[0];
}

TEST_F(LauncherTest, BadOptionsStartNothing) {
  expect_rejected(*this, {"--no-such-option", kRank, pidfile()}, "no-such-option");
  expect_rejected(*this, {"-n", "0", kRank, pidfile()}, "number of ranks");
  expect_rejected(*this, {"-n", "-2", kRank, pidfile()}, "cohortrun:");
  expect_rejected(*this, {"--bind-to", "elbow", kRank, pidfile()}, "unknown binding");
  expect_rejected(*this, {"--timeout", "-1", kRank, pidfile()}, "cohortrun:");
}

TEST_F(LauncherTest, MissingOrUnusableProgramIsReportedOnce) {
  expect_rejected(*this, {"-n", "3", "no-such-program-cohort"}, "cannot run 'no-such-program-cohort': not found");
  expect_rejected(*this, {"-n", "3", dir_ + "/missing"}, "not found");
  std::string plain = dir_ + "/plain";
  { std::ofstream(plain) << "#!/bin/sh\n"; }
  ::chmod(plain.c_str(), 0644);
  expect_rejected(*this, {"-n", "3", plain}, "not executable");
  expect_rejected(*this, {"-n", "3", dir_}, "is a directory");
  Result r = run({"-n", "3", "no-such-program-cohort"});
  EXPECT_EQ(lines_of(r.err).size(), 2u) << r.err;  // one error line + the usage line
}

TEST_F(LauncherTest, SegmentThatDoesNotFitIsReportedBeforeAnythingStarts) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers need more address space than the limit this test sets";
#else
  // 300 ranks need hundreds of MiB of segment; 150 MB of address space cannot map it.
  Result r = run({"-n", "1", "sh", "-c",
                  "ulimit -v 150000 && exec \"$0\" \"$@\"", kCohortrun, "-n", "300", kRank, pidfile()});
  EXPECT_EQ(r.code(), 2) << r.err;
  EXPECT_NE(r.err.find("cannot create the job segment: 300 ranks need"), std::string::npos) << r.err;
  // The inner cohortrun says it once; the outer one reports its rank's exit code.
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
  EXPECT_TRUE(list_dir(dir_).count("pid.0") == 0);
#endif
}

// ---- output -----------------------------------------------------------------------------------

// "[T] rR lI abc..." -> tag T, rank R, line I; false if the line is not exactly that shape.
// (sscanf, not std::regex: 160 000 lines through std::regex take most of a minute under ASan.)
bool parse_tagged(const std::string& l, int& tag, int& rank, int& index, std::size_t& body_at) {
  int pos = -1;
  if (std::sscanf(l.c_str(), "[%d] r%d l%d %n", &tag, &rank, &index, &pos) != 3 || pos < 0) return false;
  body_at = l.find(" r") + 1;
  for (std::size_t i = static_cast<std::size_t>(pos); i < l.size(); ++i) {
    if (l[i] < 'a' || l[i] > 'z') return false;
  }
  return static_cast<std::size_t>(pos) < l.size();
}

TEST_F(LauncherTest, TaggedOutputKeepsEveryLineIntactUnderHeavyConcurrentOutput) {
  constexpr int kRanks = 8;
  constexpr int kLines = 20000;
  constexpr int kLength = 150;
  Result r = run({"-n", std::to_string(kRanks), "--tag-output", kRank,
                  "print:" + std::to_string(kLines) + ":" + std::to_string(kLength), "eprint:200:300"},
                 50s);
  ASSERT_EQ(r.code(), 0) << r.err.substr(0, 2000);
  std::vector<int> next(kRanks, 0);  // rank -> next expected line number
  std::size_t count = 0;
  for (const std::string& l : lines_of(r.out)) {
    int tag = -1;
    int rank = -1;
    int index = -1;
    std::size_t body = 0;
    ASSERT_TRUE(parse_tagged(l, tag, rank, index, body)) << "mangled line: " << l.substr(0, 300);
    ASSERT_EQ(tag, rank) << "line tagged with the wrong rank: " << l.substr(0, 300);
    ASSERT_TRUE(rank >= 0 && rank < kRanks) << l.substr(0, 300);
    ASSERT_EQ(index, next[static_cast<std::size_t>(rank)]) << "rank " << rank << " lines out of order or lost";
    ++next[static_cast<std::size_t>(rank)];
    ASSERT_EQ(l.size() - body, static_cast<std::size_t>(kLength)) << l.substr(0, 300);
    ++count;
  }
  EXPECT_EQ(count, static_cast<std::size_t>(kRanks * kLines));
  std::size_t err_lines = 0;
  for (const std::string& l : lines_of(r.err)) {
    int tag = -1;
    int rank = -1;
    int index = -1;
    std::size_t body = 0;
    ASSERT_TRUE(parse_tagged(l, tag, rank, index, body)) << "mangled stderr line: " << l.substr(0, 300);
    ASSERT_EQ(tag, rank);
    ASSERT_EQ(l.size() - body, 300u);
    ++err_lines;
  }
  EXPECT_EQ(err_lines, static_cast<std::size_t>(kRanks * 200));
}

TEST_F(LauncherTest, PartialLastLineIsFlushedAtExit) {
  Result r = run({"-n", "2", "--tag-output", kRank, "partial:no-newline"});
  EXPECT_EQ(r.code(), 0) << r.err;
  std::vector<std::string> lines = lines_of(r.out);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"[0] no-newline", "[1] no-newline"})) << r.out;
  EXPECT_EQ(r.out.back(), '\n');
}

TEST_F(LauncherTest, OutputOfAFailedRankIsNotLost) {
  Result r = run({"-n", "2", "--tag-output", kRank, "print:3:20@1", "partial:last-words@1", "exit:3@1",
                  "sleep:30000"});
  EXPECT_EQ(r.code(), 3);
  EXPECT_NE(r.out.find("[1] r1 l2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[1] last-words\n"), std::string::npos) << r.out;
}

TEST_F(LauncherTest, TimestampedOutput) {
  Result r = run({"-n", "1", "--tag-output", "--timestamp-output", kRank, "print:2:20"});
  EXPECT_EQ(r.code(), 0) << r.err;
  std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const auto& l : lines) {
    // "[HH:MM:SS.uuuuuu] [0] r0 lI abc..."
    const std::string shape = "[00:00:00.000000] ";
    bool ok = l.size() > shape.size();
    for (std::size_t i = 0; ok && i < shape.size(); ++i) {
      ok = shape[i] == '0' ? l[i] >= '0' && l[i] <= '9' : l[i] == shape[i];
    }
    std::string rest = ok ? l.substr(shape.size()) : std::string();
    EXPECT_TRUE(ok && (rest.rfind("[0] r0 l0 ", 0) == 0 || rest.rfind("[0] r0 l1 ", 0) == 0)) << l;
  }
}

TEST_F(LauncherTest, OutputDirHoldsOneFilePerRankAndStream) {
  std::string out_dir = dir_ + "/out/nested";
  Result r = run({"-n", "3", "--output-dir", out_dir, kRank, "print:4:30", "eprint:2:30"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "");
  for (int rank = 0; rank < 3; ++rank) {
    std::vector<std::string> out = lines_of(read_file(out_dir + "/rank." + std::to_string(rank) + ".out"));
    std::vector<std::string> err = lines_of(read_file(out_dir + "/rank." + std::to_string(rank) + ".err"));
    ASSERT_EQ(out.size(), 4u) << "rank " << rank;
    ASSERT_EQ(err.size(), 2u) << "rank " << rank;
    EXPECT_EQ(out[3].rfind("r" + std::to_string(rank) + " l3 ", 0), 0u) << out[3];
  }
}

TEST_F(LauncherTest, OutputDirWithTags) {
  std::string out_dir = dir_ + "/tagged";
  Result r = run({"-n", "2", "--output-dir", out_dir, "--tag-output", kRank, "print:2:20", "partial:end"});
  EXPECT_EQ(r.code(), 0) << r.err;
  std::vector<std::string> out = lines_of(read_file(out_dir + "/rank.1.out"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].rfind("[1] r1 l0 ", 0), 0u) << out[0];
  EXPECT_EQ(out[2], "[1] end");
}

// ---- environment ------------------------------------------------------------------------------

TEST_F(LauncherTest, ShellSeesTheContract) {
  Result r = run({"-n", "3", "--tag-output", "sh", "-c",
                  "echo \"$COHORT_RANK $COHORT_SIZE $COHORT_JOB $COHORT_LAUNCHER_PID\"; "
                  "test -e /proc/self/fd/$COHORT_SEGMENT_FD && echo segment-open"});
  EXPECT_EQ(r.code(), 0) << r.err;
  std::set<std::string> jobs;
  int ranks = 0;
  int open = 0;
  for (const auto& l : lines_of(r.out)) {
    // "[T] R 3 JOB PID" (sscanf: std::regex trips g++ 12's -Wmaybe-uninitialized under ASan)
    int tag = -1, rank = -1, size = -1, end = -1;
    char job[17] = {};
    long pid = 0;
    if (std::sscanf(l.c_str(), "[%d] %d %d %16[0-9a-f] %ld%n", &tag, &rank, &size, job, &pid, &end) == 5 &&
        end == static_cast<int>(l.size()) && std::string(job).size() == 16 && size == 3 && tag >= 0 && tag <= 2) {
      EXPECT_EQ(tag, rank);
      jobs.insert(job);
      ++ranks;
    } else if (l.find("segment-open") != std::string::npos) {
      ++open;
    } else {
      ADD_FAILURE() << "unexpected line: " << l;
    }
  }
  EXPECT_EQ(ranks, 3);
  EXPECT_EQ(open, 3);
  EXPECT_EQ(jobs.size(), 1u);
}

TEST_F(LauncherTest, ExportSetsAndForwardsVariables) {
  ::setenv("COHORT_TEST_INHERITED", "from-parent", 1);
  Result r = run({"-n", "1", "-x", "COHORT_TEST_SET=42", "-x", "COHORT_TEST_INHERITED", "-x",
                  "COHORT_TEST_EQ=a=b", kRank, "env:COHORT_TEST_SET", "env:COHORT_TEST_INHERITED",
                  "env:COHORT_TEST_EQ", "env:COHORT_SIZE"});
  ::unsetenv("COHORT_TEST_INHERITED");
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "COHORT_TEST_SET=42\nCOHORT_TEST_INHERITED=from-parent\nCOHORT_TEST_EQ=a=b\nCOHORT_SIZE=1\n");
}

TEST_F(LauncherTest, DefaultRankCountIsTheNumberOfCores) {
  Result r = run({kRank, "env:COHORT_SIZE@0"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "COHORT_SIZE=" + std::to_string(machine_cores()) + "\n");
}

TEST_F(LauncherTest, BindingsAreReportedAndApplied) {
  Result r = run({"-n", "1", "--report-bindings", kRank, "affinity", "env:COHORT_CPUS", "env:COHORT_OVERSUBSCRIBED"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.err.rfind("cohortrun: rank 0 bound to core 0", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(": cpus "), std::string::npos) << r.err;
  std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[1].rfind("COHORT_CPUS=", 0), 0u);
  EXPECT_NE(lines[1], "COHORT_CPUS=");
  EXPECT_EQ(lines[2], "COHORT_OVERSUBSCRIBED=0");
}

TEST_F(LauncherTest, OversubscribedJobIsToldAndNotBound) {
  int n = machine_cores() + 1;
  Result r = run({"-n", std::to_string(n), "--report-bindings", kRank, "env:COHORT_OVERSUBSCRIBED@0",
                  "env:COHORT_CPUS@0"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "COHORT_OVERSUBSCRIBED=1\nCOHORT_CPUS=\n");
  EXPECT_NE(r.err.find("rank 0 not bound"), std::string::npos) << r.err;
}

TEST_F(LauncherTest, ProgramArgumentsAreLeftAlone) {
  Result r = run({"-np", "1", "sh", "-c", "echo \"$@\"", "sh", "-np", "3", "--tag-output"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "-np 3 --tag-output\n");
}

// ---- the job segment --------------------------------------------------------------------------

TEST_F(LauncherTest, ExitedRankIsMarkedInTheSegment) {
  Result r = run({"-n", "2", kWatcher, "exited"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "rank 1 exited status 0\n");
}

TEST_F(LauncherTest, FailureSetsTheAbortFlag) {
  Result r = run({"-n", "2", "--grace", "5", kWatcher, "abort"});
  EXPECT_EQ(r.code(), 3) << r.err;
  EXPECT_EQ(r.out, "abort seen\n");
}

// The pids a shell rank wrote into child.<rank> files: the commands it started in the background.
std::vector<pid_t> background_pids(const std::string& dir, int ranks) {
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    std::string text = read_file(dir + "/child." + std::to_string(r));
    if (!text.empty()) pids.push_back(static_cast<pid_t>(std::stol(text)));
  }
  return pids;
}

TEST_F(LauncherTest, ProcessesTheRanksLeaveRunningEndWithTheJob) {
  // Each rank starts a command in the background and exits at once; the command, re-parented to
  // cohortrun (its child subreaper), ends with the job instead of running on.
  auto r = run({"-n", "2", "sh", "-c", "sleep 60 & echo $! > " + dir_ + "/child.$COHORT_RANK"});
  EXPECT_EQ(r.code(), 0) << r.err;
  std::vector<pid_t> left = background_pids(dir_, 2);
  ASSERT_EQ(left.size(), 2u) << r.err;
  for (pid_t p : left) EXPECT_TRUE(process_gone(p)) << "pid " << p << " survived cohortrun";
  EXPECT_NE(r.err.find("2 processes started by the ranks still running after them"), std::string::npos)
      << r.err;
  EXPECT_LT(r.elapsed, 10s);
}

TEST_F(LauncherTest, ProcessesOfTerminatedRanksEndWithTheJob) {
  // Shell ranks wait for their command; the job times out, cohortrun terminates the shells, and
  // their commands (which a SIGTERM to the shell does not reach) end too.
  auto r = run({"--timeout", "1", "-n", "2", "sh", "-c",
                "sleep 60 & echo $! > " + dir_ + "/child.$COHORT_RANK; wait"});
  EXPECT_EQ(r.code(), 124) << r.err;
  std::vector<pid_t> left = background_pids(dir_, 2);
  ASSERT_EQ(left.size(), 2u) << r.err;
  for (pid_t p : left) EXPECT_TRUE(process_gone(p)) << "pid " << p << " survived cohortrun";
  EXPECT_NE(r.err.find("started by the ranks still running after them"), std::string::npos) << r.err;
}

TEST_F(LauncherTest, NothingIsLeftInDevShm) {
  std::set<std::string> before = list_dir("/dev/shm");
  Result r = run({"-n", "3", kRank, "segv@2", "sleep:30000"});
  EXPECT_EQ(r.code(), 128 + SIGSEGV);
  Result ok = run({"-n", "2", kWatcher, "exited"});
  EXPECT_EQ(ok.code(), 0);
  std::set<std::string> after = list_dir("/dev/shm");
  for (const auto& name : after) {
    EXPECT_TRUE(before.count(name) == 1 || name.find("cohort") == std::string::npos)
        << "/dev/shm/" << name << " left behind";
  }
}

// ---- deadlocks and hang reports (README.md, "When things go wrong") -------------------------------------------

// The exit table's line for `rank`: "cohortrun:    1  21539  terminated  SIGTERM  recv(...)".
struct TableRow {
  bool found = false;
  std::string state;
  std::string rest;  // exit and "blocked in", words separated by one space
};
TableRow table_row(const std::string& err, int rank) {
  for (const std::string& l : lines_of(err)) {
    std::istringstream in(l);
    std::string tag, r, pid, state;
    if (!(in >> tag >> r >> pid >> state) || tag != "cohortrun:" || r != std::to_string(rank) ||
        pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::string rest;
    for (std::string word; in >> word;) rest += (rest.empty() ? "" : " ") + word;
    return {true, state, rest};
  }
  return {};
}

TEST_F(LauncherTest, DeadlockIsReportedWithTheWaitForGraphAndExits125) {
  Result r = run({"-n", "3", "--timeout", "20", kWaits, "ring_deadlock"});
  EXPECT_EQ(r.code(), 125) << r.err;
  EXPECT_NE(r.err.find("cohortrun: deadlock: every running rank is blocked"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cohortrun: rank 0: recv(source 1, tag 5)\ncohortrun: rank 1: recv(source 2, tag 5)\n"
                       "cohortrun: rank 2: recv(source 0, tag 5)\ncohortrun: cycle: 0 -> 1 -> 2 -> 0\n"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ranks 0-2 terminated by cohortrun (deadlock)"), std::string::npos) << r.err;
  TableRow row = table_row(r.err, 1);
  EXPECT_EQ(row.state, "terminated") << r.err;
  EXPECT_EQ(row.rest, "SIGTERM recv(source 2, tag 5)") << r.err;
}

TEST_F(LauncherTest, DeadlockDetectionCanBeTurnedOff) {
  Result r = run({"-n", "2", "--no-deadlock-detection", "--timeout", "2", kWaits, "ring_deadlock"});
  EXPECT_EQ(r.code(), 124) << r.err;
  EXPECT_EQ(r.err.find("deadlock:"), std::string::npos) << r.err;
  // The timeout's table says where each rank was.
  TableRow row = table_row(r.err, 0);
  EXPECT_EQ(row.state, "terminated") << r.err;
  EXPECT_EQ(row.rest, "SIGTERM recv(source 1, tag 5)") << r.err;
}

// No false positives: a rank that computes for 3 s while its peer waits is not a deadlock, nor is
// a ring whose ranks are in recv nearly all the time, nor a barrier waiting for a slow rank.
TEST_F(LauncherTest, WaitingForAComputingRankIsNotADeadlock) {
  Result r = run({"-n", "2", "--timeout", "30", kWaits, "slow_sender", "3000"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "rank 0 got 42\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(LauncherTest, BusyTokenRingIsNotADeadlock) {
  Result r = run({"-n", "4", "--timeout", "30", kWaits, "token_ring", "2500"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "ring: some rounds\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(LauncherTest, SlowRingIsNotADeadlock) {
  Result r = run({"-n", "3", "--timeout", "30", kWaits, "paced_ring", "2000", "150"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST_F(LauncherTest, BarrierWaitingForASlowRankIsNotADeadlock) {
  Result r = run({"-n", "3", "--timeout", "30", kWaits, "slow_barrier", "2000"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "barrier passed\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(LauncherTest, HangReportSaysWhereEachRankWaits) {
  Result r = run({"-n", "3", "--hang-report", "0.4", "--timeout", "30", kWaits, "slow_sender", "1500"});
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_NE(r.err.find("cohortrun: hang report (periodic, "), std::string::npos) << r.err;
  EXPECT_TRUE(has_line(r.err, "cohortrun: rank 0 (pid ", "): blocked in recv(source 1, tag 9)")) << r.err;
  EXPECT_TRUE(has_line(r.err, "cohortrun: rank 1 (pid ", "): running")) << r.err;
  EXPECT_TRUE(has_line(r.err, "cohortrun: rank 2 (pid ", "): exited with code 0")) << r.err;
}

TEST_F(LauncherTest, SigquitPrintsAHangReportAndTheJobGoesOn) {
  start({"-n", "2", "--timeout", "30", kWaits, "slow_sender", "3000"});
  // Ask until rank 0 is seen blocked (it may still be starting at the first request).
  bool seen = false;
  for (int i = 0; i < 12 && !seen; ++i) {
    std::this_thread::sleep_for(200ms);
    ASSERT_EQ(::kill(child_, SIGQUIT), 0);
    std::this_thread::sleep_for(50ms);
    seen = read_file(dir_ + "/stderr").find("blocked in recv(source 1, tag 9)") != std::string::npos;
  }
  Result r = wait();
  EXPECT_TRUE(seen) << r.err;
  EXPECT_EQ(r.code(), 0) << r.err;
  EXPECT_EQ(r.out, "rank 0 got 42\n");
  EXPECT_NE(r.err.find("cohortrun: hang report (SIGQUIT, "), std::string::npos) << r.err;
}

TEST_F(LauncherTest, FailureTableNamesTheCallEachRankWasBlockedIn) {
  // Rank 1 fails (exit 6) after 300 ms; rank 0 waits for it in recv(source 1, tag 9).
  Result r = run({"-n", "3", "--timeout", "30", kWaits, "slow_sender", "300", "fail"});
  EXPECT_EQ(r.code(), 6) << r.err;
  EXPECT_NE(r.err.find(" pid  state "), std::string::npos) << r.err;  // the table's header
  EXPECT_TRUE(ends_with(table_row(r.err, 0).rest, " recv(source 1, tag 9)")) << r.err;
  EXPECT_EQ(table_row(r.err, 1).state, "failed") << r.err;
  EXPECT_EQ(table_row(r.err, 1).rest, "code 6 -") << r.err;
  EXPECT_EQ(table_row(r.err, 2).state, "exited") << r.err;
  EXPECT_EQ(table_row(r.err, 2).rest, "code 0 -") << r.err;
}

TEST_F(LauncherTest, UncaughtExceptionInARankEndsTheJobWithItsMessage) {
  Result r = run({"-n", "2", "--timeout", "30", kWaits, "throw"});
  EXPECT_EQ(r.code(), 128 + SIGABRT) << r.err;
  EXPECT_NE(r.err.find("cohort: rank 1: uncaught exception: rank 1 gave up\n"), std::string::npos) << r.err;
  EXPECT_TRUE(has_line(r.err, "cohortrun: rank 1 (pid ", ") killed by SIGABRT")) << r.err;
  EXPECT_TRUE(ends_with(table_row(r.err, 0).rest, " recv(source 1, tag 9)")) << r.err;
}

}  // namespace
