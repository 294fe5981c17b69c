// The job segment is private to the job's user: a process of another user cannot open it through
// /proc/<rank pid>/fd/<COHORT_SEGMENT_FD> (the only path to a memfd), and nothing appears in
// /dev/shm. Needs root (to create a user and to become it); skipped otherwise.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
constexpr const char* kUser = "cohort-test";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> dev_shm() {
  std::set<std::string> names;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) names.insert(e->d_name);
    ::closedir(d);
  }
  return names;
}

// The segment fd a process got from cohortrun (its COHORT_SEGMENT_FD), or -1.
int segment_fd_of(pid_t pid) {
  std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
  const std::string key = "COHORT_SEGMENT_FD=";
  for (std::size_t at = 0; at < env.size();) {
    std::size_t end = env.find('\0', at);
    if (end == std::string::npos) end = env.size();
    if (env.compare(at, key.size(), key) == 0) return std::atoi(env.c_str() + at + key.size());
    at = end + 1;
  }
  return -1;
}

// Opens `path` as uid/gid (no supplementary groups) in a child; returns 0 or the errno.
int open_as(uid_t uid, gid_t gid, const std::string& path) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return -1;
  pid_t child = ::fork();
  if (child == 0) {
    int result = 0;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0) {
      result = -2;
    } else {
      int fd = ::open(path.c_str(), O_RDWR);
      result = fd >= 0 ? 0 : errno;
      if (fd < 0 && errno != EACCES && errno != EPERM) {
        fd = ::open(path.c_str(), O_RDONLY);  // and read-only, which asks for less
        result = fd >= 0 ? 0 : errno;
      }
    }
    if (::write(pipefd[1], &result, sizeof result) != sizeof result) ::_exit(2);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  int result = -3;
  if (::read(pipefd[0], &result, sizeof result) != sizeof result) result = -3;
  ::close(pipefd[0]);
  ::waitpid(child, nullptr, 0);
  return result;
}

TEST(SegmentSecurity, AnotherUserCannotOpenTheJobSegment) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (to create a test user and become it); run as root, as CI does";
  if (::getpwnam(kUser) == nullptr) {
    if (std::system("command -v useradd >/dev/null 2>&1") != 0) GTEST_SKIP() << "useradd is not available";
    std::string cmd = std::string("useradd --system --no-create-home --shell /usr/sbin/nologin ") + kUser +
                      " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0 && ::getpwnam(kUser) == nullptr) {
      GTEST_SKIP() << "useradd " << kUser << " failed";
    }
  }
  const passwd* pw = ::getpwnam(kUser);
  ASSERT_NE(pw, nullptr);
  ASSERT_NE(pw->pw_uid, 0u);
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;

  char tmpl[] = "/tmp/cohort_security.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::set<std::string> shm_before = dev_shm();

  pid_t launcher = ::fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    std::string pidfile = "pidfile:" + dir;
    std::string ready = "ready:" + dir;
    ::execl(COHORTRUN_PATH, COHORTRUN_PATH, "-n", "2", "--timeout", "30", RANK_BEHAVIOUR_PATH,
            pidfile.c_str(), ready.c_str(), "sleep:20000", static_cast<char*>(nullptr));
    ::_exit(126);
  }
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!(::access((dir + "/ready.0").c_str(), F_OK) == 0 && ::access((dir + "/ready.1").c_str(), F_OK) == 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  std::string pid_text = read_file(dir + "/pid.1");
  ASSERT_FALSE(pid_text.empty()) << "the ranks did not start";
  const pid_t rank = static_cast<pid_t>(std::stol(pid_text));
  const int fd = segment_fd_of(rank);
  ASSERT_GE(fd, 0) << "rank 1 has no COHORT_SEGMENT_FD";
  const std::string path = "/proc/" + std::to_string(rank) + "/fd/" + std::to_string(fd);

  // The job's own user can open it, and it is the memfd: no name, no link anywhere.
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  EXPECT_EQ(st.st_nlink, 0u) << "the segment has a name in some file system";
  EXPECT_EQ(st.st_uid, 0u);
  std::string target(256, '\0');
  ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
  ASSERT_GT(n, 0);
  target.resize(static_cast<std::size_t>(n));
  EXPECT_EQ(target.rfind("/memfd:cohort-job-", 0), 0u) << target;
  EXPECT_EQ(open_as(0, 0, path), 0) << "root (the job's user) cannot open " << path;

  // The user switch works (so a refusal below is the segment's, not the harness's).
  ASSERT_EQ(open_as(uid, gid, "/dev/null"), 0);

  // Another user cannot: /proc/<pid>/fd needs ptrace access to the rank, which it lacks.
  int err = open_as(uid, gid, path);
  EXPECT_TRUE(err == EACCES || err == EPERM)
      << "user " << kUser << " (uid " << uid << ") opening " << path << ": "
      << (err == 0 ? std::string("succeeded") : err > 0 ? std::strerror(err) : "could not switch user");
  // Nor through the launcher's own descriptor table.
  const std::string launcher_fds = "/proc/" + std::to_string(launcher) + "/fd";
  if (DIR* d = ::opendir(launcher_fds.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string link(256, '\0');
      ssize_t len = ::readlink((launcher_fds + "/" + name).c_str(), link.data(), link.size());
      if (len > 0 && link.compare(0, static_cast<std::size_t>(len), "/memfd:cohort-job-", 0, 18) == 0) {
        int e2 = open_as(uid, gid, launcher_fds + "/" + name);
        EXPECT_TRUE(e2 == EACCES || e2 == EPERM) << launcher_fds << "/" << name << ": " << e2;
      }
    }
    ::closedir(d);
  }

  // Nothing in /dev/shm while the job runs.
  for (const std::string& name : dev_shm()) {
    EXPECT_TRUE(shm_before.count(name) == 1 || name.find("cohort") == std::string::npos)
        << "/dev/shm/" << name << " appeared while the job ran";
  }

  ::kill(launcher, SIGTERM);
  int status = 0;
  ::waitpid(launcher, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM) << status;
  std::string cmd = "rm -rf '" + dir + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

}  // namespace
