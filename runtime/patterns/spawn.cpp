// cohort::spawn / cohort::Process: forked ranks supervised from the parent.
#include "cohort/spawn.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "runtime/patterns/spawn_frames.hpp"
#include "runtime/contract/contract.hpp"
#include "runtime/platform/fork.hpp"
#include "runtime/platform/placement.hpp"
#include "runtime/platform/process.hpp"
#include "runtime/platform/shared_memory.hpp"
#include "runtime/runtime.hpp"
#include "runtime/transport/segment.hpp"

namespace cohort {
namespace detail {

namespace {
constexpr char kResultFrame = kSpawnResultFrame;

/// This machine's topology, loaded once per process (a few ms) and only when binding needs it.
const platform::Topology& system_topology() {
  static const platform::Topology topology = platform::Topology::load_system();
  return topology;
}
constexpr char kErrorFrame = kSpawnErrorFrame;

void write_frame(int fd, char kind, const void* data, std::size_t bytes) {
  std::string frame = spawn_frame_header(kind, bytes);  // spawn_frames.hpp
  frame.append(static_cast<const char*>(data), bytes);
  (void)platform::write_all(fd, frame);
}
}  // namespace

void ResultSink::write_result(const void* data, std::size_t bytes) {
  write_frame(fd_, kResultFrame, data, bytes);
}
void ResultSink::write_error(const std::string& message) {
  write_frame(fd_, kErrorFrame, message.data(), message.size());
}

/// The parent's view of a spawned job: children, their pidfds and result pipes, the segment.
/// With more than one rank a supervisor thread reaps children as they end (so that their peers
/// learn it at once); a single rank is reaped lazily by whoever asks.
class JobState {
 public:
  JobState(int ranks, const RankBody& body, const SpawnOptions& options);
  ~JobState();
  JobState(const JobState&) = delete;
  JobState& operator=(const JobState&) = delete;

  struct Child {
    pid_t pid = -1;
    platform::FileDescriptor pidfd;
    platform::FileDescriptor results;  // read end
    bool results_done = false;
    std::vector<std::byte> frame;      // kind byte + payload
    std::optional<int> wait_status;
  };

  [[nodiscard]] int size() const noexcept { return static_cast<int>(children_.size()); }
  [[nodiscard]] pid_t pid(int rank) const { return children_.at(static_cast<std::size_t>(rank)).pid; }

  /// Waits until `rank` (or every rank, for -1) has ended and its results are read.
  bool wait(int rank, std::chrono::nanoseconds timeout);
  std::optional<int> exit_code(int rank);
  void signal(int rank, int sig);
  const std::vector<std::byte>& result(int rank) const { return results_.at(static_cast<std::size_t>(rank)); }
  bool has_result(int rank) const {
    const auto& frame = children_.at(static_cast<std::size_t>(rank)).frame;
    return !frame.empty() && static_cast<char>(frame[0]) == kResultFrame &&
           errors_.at(static_cast<std::size_t>(rank)).empty();
  }
  void check();

 private:
  bool done(int rank) const;
  void pump(std::chrono::milliseconds timeout);  // caller holds pump_mutex_
  void supervise();
  void on_exit(int rank, int wait_status);

  std::vector<Child> children_;
  std::vector<std::vector<std::byte>> results_;
  std::vector<std::string> errors_;
  platform::FileDescriptor segment_fd_;
  platform::Mapping mapping_;
  transport::Segment segment_;
  platform::Poller poller_;
  std::mutex pump_mutex_;             // one thread pumps at a time
  mutable std::mutex state_mutex_;    // children_ status fields, results_, errors_
  std::condition_variable changed_;
  bool supervised_ = false;           // a supervisor thread reaps the children
  std::mutex join_mutex_;
  std::thread supervisor_;            // joined as soon as every child has ended (a finished,
                                      // unjoined thread would be inherited by later forks)
  void join_supervisor();
};

JobState::JobState(int ranks, const RankBody& body, const SpawnOptions& options) {
  if (ranks < 1 || ranks > contract::kMaxRanks) {
    throw InvalidArgument(fmt::format("cohort::spawn: {} ranks requested; give 1 to {}", ranks,
                                      contract::kMaxRanks));
  }
  // Placement as cohortrun does it (runtime/platform/placement.hpp): one rank per core while
  // they fit, no binding beyond. A single process is not pinned: it has no peers to place.
  const std::vector<unsigned> cpus = platform::current_affinity();
  platform::Placement placement;
  if (ranks > 1 && static_cast<std::size_t>(ranks) <= cpus.size()) {
    placement = platform::place(system_topology(), cpus, ranks,
                                options.bind ? platform::BindPolicy::automatic : platform::BindPolicy::none,
                                platform::MapPolicy::core);
  } else {
    placement.oversubscribed = static_cast<std::size_t>(ranks) > cpus.size();
    placement.ranks.resize(static_cast<std::size_t>(ranks));
  }
  const bool oversubscribed = placement.oversubscribed;
  const std::uint64_t job = platform::random_u64();
  auto layout = transport::segment_layout(ranks, options.shared_heap_bytes);
  segment_fd_ = platform::create_shared_memory("cohort-spawn", layout.total_bytes,
                                               layout.reserved_bytes());
  mapping_ = platform::Mapping(segment_fd_.get(), layout.total_bytes, "cohort::spawn segment");
  segment_ = transport::Segment::format(mapping_.bytes(), ranks, job, oversubscribed,
                                        options.shared_heap_bytes);
  children_.resize(static_cast<std::size_t>(ranks));
  results_.resize(static_cast<std::size_t>(ranks));
  errors_.resize(static_cast<std::size_t>(ranks));

  for (int r = 0; r < ranks; ++r) {
    Child& child = children_[static_cast<std::size_t>(r)];
    platform::Pipe pipe = platform::make_pipe("cohort::spawn result pipe");
    const std::vector<unsigned>& bound = placement.ranks[static_cast<std::size_t>(r)].cpus;
    platform::CpuMask mask(bound);
    std::string cpu_list = platform::format_cpu_list(bound);
    pid_t pid = platform::fork_child(true, mask.empty() ? nullptr : mask.data(), mask.bytes());
    if (pid == 0) {
      // The child: become rank r of the new job, run the body, report, and leave without
      // running the parent's atexit handlers or destructors.
      pipe.read.reset();
      EnvironmentAccess::forget_inherited();
      ResultSink sink(pipe.write.get());
      int code = 0;
      try {
        contract::LaunchInfo info{r, ranks, job, segment_fd_.get(), oversubscribed, cpu_list};
        auto env = EnvironmentAccess::attach(info);
        body(env->world(), sink);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "cohort: rank %d: uncaught exception: %s\n", r, e.what());
        sink.write_error(e.what());
        code = 1;
      } catch (...) {
        std::fprintf(stderr, "cohort: rank %d: uncaught exception of unknown type\n", r);
        sink.write_error("exception of unknown type");
        code = 1;
      }
      platform::exit_child(code);
    }
    child.pid = pid;
    child.pidfd = platform::open_pidfd(pid);
    child.results = std::move(pipe.read);
    segment_.slot(r).pid.store(pid, std::memory_order_relaxed);
    poller_.add(child.pidfd.get(), static_cast<std::uint64_t>(r) * 2);
    poller_.add(child.results.get(), static_cast<std::uint64_t>(r) * 2 + 1);
  }
  if (ranks > 1) {
    supervised_ = true;
    supervisor_ = std::thread([this] { supervise(); });
  }
}

JobState::~JobState() {
  (void)wait(-1, std::chrono::nanoseconds(-1));
  join_supervisor();
}

void JobState::join_supervisor() {
  std::lock_guard lock(join_mutex_);
  if (supervisor_.joinable()) supervisor_.join();
}

bool JobState::done(int rank) const {
  const Child& c = children_[static_cast<std::size_t>(rank)];
  return c.wait_status.has_value() && c.results_done;
}

void JobState::on_exit(int rank, int wait_status) {
  transport::RankSlot& slot = segment_.slot(rank);
  slot.exit_status.store(wait_status, std::memory_order_relaxed);
  slot.state.store(static_cast<std::uint32_t>(transport::RankState::exited), std::memory_order_release);
  segment_.wake_all();  // peers blocked on this rank re-check and raise PeerLost
}

void JobState::pump(std::chrono::milliseconds timeout) {
  std::vector<std::uint64_t> ready;
  {
    auto tags = poller_.wait(timeout);
    ready.assign(tags.begin(), tags.end());
  }
  for (std::uint64_t tag : ready) {
    int rank = static_cast<int>(tag / 2);
    Child& c = children_[static_cast<std::size_t>(rank)];
    if (tag % 2 == 1) {
      char buffer[65536];
      for (;;) {
        long n = platform::read_some(c.results.get(), buffer, "cohort::spawn result pipe");
        if (n < 0) break;  // nothing more for now
        if (n == 0) {
          poller_.remove(c.results.get());
          std::lock_guard lock(state_mutex_);
          c.results_done = true;
          try {
            SpawnOutcome o = parse_spawn_frames(c.frame);  // spawn_frames.hpp (fuzzed)
            if (!o.error.empty()) {
              errors_[static_cast<std::size_t>(rank)] = std::move(o.error);
            } else if (o.has_result) {
              results_[static_cast<std::size_t>(rank)].assign(o.result.begin(), o.result.end());
            }
          } catch (const DeserializeError& e) {
            errors_[static_cast<std::size_t>(rank)] = e.what();
          }
          break;
        }
        auto* bytes = reinterpret_cast<const std::byte*>(buffer);
        c.frame.insert(c.frame.end(), bytes, bytes + n);
      }
    } else if (auto info = platform::reap(c.pidfd.get())) {
      poller_.remove(c.pidfd.get());
      on_exit(rank, info->wait_status);
      std::lock_guard lock(state_mutex_);
      c.wait_status = info->wait_status;
    }
  }
  changed_.notify_all();
}

void JobState::supervise() {
  std::lock_guard pumping(pump_mutex_);
  for (;;) {
    bool all = true;
    {
      std::lock_guard lock(state_mutex_);
      for (int r = 0; r < size(); ++r) all = all && done(r);
    }
    if (all) return;
    pump(std::chrono::milliseconds(1000));
  }
}

bool JobState::wait(int rank, std::chrono::nanoseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const bool unlimited = timeout.count() < 0;
  const auto deadline = Clock::now() + (unlimited ? std::chrono::nanoseconds(0) : timeout);
  auto finished = [&] {
    if (rank >= 0) return done(rank);
    for (int r = 0; r < size(); ++r) {
      if (!done(r)) return false;
    }
    return true;
  };
  for (;;) {
    {
      std::unique_lock lock(state_mutex_);
      if (supervised_) {
        bool ok = unlimited ? (changed_.wait(lock, finished), true)
                            : changed_.wait_until(lock, deadline, finished);
        lock.unlock();
        if (ok && rank < 0) join_supervisor();  // every child has ended: so has the supervisor
        return ok;
      }
      if (finished()) return true;
    }
    if (!unlimited && Clock::now() >= deadline) return false;
    std::lock_guard pumping(pump_mutex_);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pump(unlimited ? std::chrono::milliseconds(1000)
                   : std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(1000)));
  }
}

std::optional<int> JobState::exit_code(int rank) {
  if (!supervised_) (void)wait(rank, std::chrono::nanoseconds(0));
  std::lock_guard lock(state_mutex_);
  const Child& c = children_.at(static_cast<std::size_t>(rank));
  if (!c.wait_status) return std::nullopt;
  int st = *c.wait_status;
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return WEXITSTATUS(st);
}

void JobState::signal(int rank, int sig) {
  std::lock_guard lock(state_mutex_);
  const Child& c = children_.at(static_cast<std::size_t>(rank));
  if (!c.wait_status) (void)platform::send_signal(c.pidfd.get(), sig);
}

void JobState::check() {
  (void)wait(-1, std::chrono::nanoseconds(-1));
  std::string report;
  int failed = 0;
  for (int r = 0; r < size(); ++r) {
    int st = *children_[static_cast<std::size_t>(r)].wait_status;
    const std::string& err = errors_[static_cast<std::size_t>(r)];
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && err.empty()) continue;
    ++failed;
    report += fmt::format("\n  rank {} (pid {}): ", r, children_[static_cast<std::size_t>(r)].pid);
    if (WIFSIGNALED(st)) {
      report += "killed by " + platform::signal_name(WTERMSIG(st));
    } else {
      report += fmt::format("exit code {}", WEXITSTATUS(st));
    }
    if (!err.empty()) report += ": " + err;
  }
  if (failed > 0) {
    throw SpawnError(fmt::format("cohort::spawn: {} of {} ranks failed:{}", failed, size(), report));
  }
}

}  // namespace detail

// ------------------------------------------------------------------------------ ProcessHandle

pid_t ProcessHandle::pid() const noexcept { return job_->pid(rank_); }
bool ProcessHandle::is_alive() const { return !exit_code().has_value(); }
std::optional<int> ProcessHandle::exit_code() const { return job_->exit_code(rank_); }
bool ProcessHandle::join(std::chrono::nanoseconds timeout) const { return job_->wait(rank_, timeout); }
void ProcessHandle::terminate() const { job_->signal(rank_, SIGTERM); }
void ProcessHandle::kill() const { job_->signal(rank_, SIGKILL); }

// ---------------------------------------------------------------------------------------- Job

namespace {
std::shared_ptr<detail::JobState> start_job(int ranks, detail::RankBody body, const SpawnOptions& options) {
#ifdef COHORT_BACKEND_MPI
  (void)ranks, (void)body, (void)options;
  throw Unsupported(
      "cohort::spawn (and cohort::Pool, which uses it) is not available on the MPI backend: it "
      "forks ranks that share memory with their parent, which cannot join an MPI job; start every "
      "rank with mpirun or srun and use pool_map / pool_imap instead");
#else
  return std::make_shared<detail::JobState>(ranks, std::move(body), options);
#endif
}
}  // namespace

Job::Job(int ranks, detail::RankBody body, const SpawnOptions& options)
    : state_(start_job(ranks, std::move(body), options)) {}

Job::~Job() = default;  // JobState's destructor joins (once the last handle is gone)

int Job::size() const noexcept { return state_->size(); }
bool Job::join(std::chrono::nanoseconds timeout) { return state_->wait(-1, timeout); }

std::vector<std::optional<int>> Job::exit_codes() const {
  std::vector<std::optional<int>> codes;
  for (int r = 0; r < size(); ++r) codes.push_back(state_->exit_code(r));
  return codes;
}

void Job::terminate() {
  for (int r = 0; r < size(); ++r) state_->signal(r, SIGTERM);
}

void Job::check() { state_->check(); }

const std::vector<std::byte>& Job::result_bytes(int rank) const { return state_->result(rank); }
bool Job::has_result(int rank) const { return state_->has_result(rank); }

// ------------------------------------------------------------------------------------ Process

void Process::start() {
  if (job_) throw Error("cohort::Process::start: the process was already started");
  job_.emplace(1, body_, options_);
}

ProcessHandle Process::handle() const {
  if (!job_) throw Error("cohort::Process: start() was not called");
  return job_->process(0);
}

bool Process::join(std::chrono::nanoseconds timeout) { return handle().join(timeout); }
bool Process::is_alive() const { return job_ && handle().is_alive(); }
pid_t Process::pid() const { return job_ ? handle().pid() : -1; }
std::optional<int> Process::exit_code() const {
  return job_ ? handle().exit_code() : std::nullopt;
}
void Process::terminate() { handle().terminate(); }
void Process::kill() { handle().kill(); }

}  // namespace cohort
