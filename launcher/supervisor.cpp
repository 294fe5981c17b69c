#include "launcher/supervisor.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cohort/launch_contract.hpp"
#include "launcher/output.hpp"
#include "launcher/placement.hpp"
#include "launcher/stats.hpp"
#include "launcher/trace_writer.hpp"
#include "launcher/wait_report.hpp"
#include "runtime/contract/contract.hpp"
#include "runtime/platform/process.hpp"
#include "runtime/platform/shared_memory.hpp"
#include "runtime/transport/segment.hpp"
#include "runtime/transport/trace.hpp"

extern char** environ;

namespace cohort::launcher {
namespace {

using Clock = std::chrono::steady_clock;

// Signals cohortrun handles through its signalfd (blocked from the start; ranks get the mask
// cohortrun started with). SIGPIPE is only blocked: a closed stdout gives EPIPE, not death.
constexpr std::array<int, 6> kHandledSignals = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT};
constexpr std::array<int, 7> kBlockedSignals = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGPIPE};

// Deadlock detection: the slots are sampled this often, and a deadlock is declared when every
// running rank has been blocked, unchanged, for the window (README.md, "When things go wrong").
constexpr std::chrono::milliseconds kSamplePeriod{200};
constexpr std::chrono::milliseconds kDeadlockWindow{800};

// epoll tags: kind in the high 32 bits, rank in the low ones.
enum class Kind : std::uint64_t { signals = 1, pidfd = 2, out = 3, err = 4 };
std::uint64_t make_tag(Kind kind, int rank) {
  return (static_cast<std::uint64_t>(kind) << 32) | static_cast<std::uint32_t>(rank);
}

void say(const std::string& line) {
  std::string l = "cohortrun: " + line + "\n";
  platform::write_all(STDERR_FILENO, l);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by {}{}", platform::signal_name(WTERMSIG(status)),
                       WCOREDUMP(status) ? " (core dumped)" : "");
  }
  return fmt::format("ended with wait status {:#x}", status);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return kExitSignalBase + WTERMSIG(status);
  return 1;
}

std::string format_ranks(const std::vector<int>& ranks) {
  std::vector<unsigned> u(ranks.begin(), ranks.end());
  return format_cpu_list(u);
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Stream {
  platform::FileDescriptor pipe;  // read end, when output is forwarded line by line
  int sink = -1;                  // where the lines go
  LineSplitter lines;
};

struct Rank {
  pid_t pid = -1;
  platform::FileDescriptor pidfd;
  bool running = false;  // spawned and not reaped yet
  platform::ExitInfo exit;
  std::optional<RankSnapshot> last_wait;  // its wait record when it died or the job was torn down
  std::uint64_t start_ns = 0;  // trace clock at spawn and at reaping (--trace, --stats)
  std::uint64_t end_ns = 0;
  Stream out;
  Stream err;
};

bool is_contract_variable(std::string_view name) {
  for (std::string_view v : {contract::kRank, contract::kSize, contract::kJob, contract::kSegmentFd,
                             contract::kOversubscribed, contract::kCpus, contract::kLauncherPid}) {
    if (name == v) return true;
  }
  return false;
}

class Job {
 public:
  Job(const Options& options, std::string program) : o_(options), program_(std::move(program)) {}

  int run();

 private:
  enum class Reason { none, failure, timeout, interrupt, launch_error, deadlock };

  bool prepare(const Placement& placement);
  void spawn_all(const Placement& placement);
  void loop();
  void on_ready(std::uint64_t tag);
  void on_exit(int r);
  void on_signal(int signal);
  void pump(int r, bool is_err, bool drain);
  void flush_all();
  void teardown(Reason reason);
  void signal_running(int signal);
  void end_leftovers();
  void wake_attached();
  std::vector<RankSnapshot> snapshots() const;
  void sample(Clock::time_point now);
  void hang_report(const char* why);
  void exit_table();
  void write_trace_and_stats();
  std::vector<int> running_ranks() const;
  int running_count() const;

  const Options& o_;
  std::string program_;
  int n_ = 0;
  std::uint64_t job_ = 0;
  platform::FileDescriptor segment_fd_;
  platform::Mapping mapping_;
  transport::Segment segment_;
  std::vector<Rank> ranks_;
  std::vector<platform::FileDescriptor> files_;  // --output-dir files
  platform::FileDescriptor dev_null_;
  bool piped_ = false;
  sigset_t child_mask_{};
  long open_files_limit_ = -1;
  std::optional<platform::SignalChannel> signals_;
  platform::Poller poller_;
  std::string out_buffer_;
  std::array<char, 65536> read_buffer_{};

  Reason reason_ = Reason::none;
  int first_failure_code_ = 0;
  int interrupt_signal_ = 0;
  bool killed_ = false;
  std::optional<Clock::time_point> timeout_deadline_;
  std::optional<Clock::time_point> kill_deadline_;
  std::optional<Clock::time_point> next_sample_;
  std::optional<Clock::time_point> next_hang_report_;
  DeadlockDetector detector_{kDeadlockWindow};
  std::vector<int> terminated_;
  Clock::time_point start_ = Clock::now();
};

int Job::run() {
  // Where the job may run, and how many cores that is.
  std::vector<unsigned> allowed = platform::current_affinity();
  auto t0 = Clock::now();
  Placement placement;
  std::string topo_note;
  if (o_.ranks > static_cast<int>(allowed.size()) &&
      (o_.bind == BindPolicy::automatic || o_.bind == BindPolicy::none)) {
    // More ranks than cpus, hence than cores: no binding, oversubscribed. The topology (a few
    // ms to load) is not needed.
    n_ = o_.ranks;
    placement.ranks.resize(static_cast<std::size_t>(n_));
    placement.cores = static_cast<int>(allowed.size());
    placement.oversubscribed = true;
    placement.binding = BindPolicy::none;
    topo_note = "topology not loaded (more ranks than cpus)";
  } else {
    Topology topology = Topology::load_system();
    topo_note = fmt::format("topology loaded in {:.2f} ms", ms_since(t0));
    int cores = count_cores(topology, allowed);
    n_ = o_.ranks > 0 ? o_.ranks : std::max(cores, 1);
    placement = place(topology, allowed, n_, o_.bind, o_.map);
  }
  if (o_.verbose) {
    say(fmt::format("{} ranks, {} cores allowed (cpus {}), binding {}, mapping {}{}; {}", n_, placement.cores, format_cpu_list(allowed),
                    to_string(placement.binding), to_string(o_.map),
                    placement.oversubscribed ? ", oversubscribed" : "", topo_note));
  }
  if (o_.report_bindings) {
    for (int r = 0; r < n_; ++r) {
      const RankPlacement& p = placement.ranks[static_cast<std::size_t>(r)];
      if (p.cpus.empty()) {
        say(fmt::format("rank {} not bound{}", r,
                        placement.oversubscribed && o_.bind == BindPolicy::automatic
                            ? fmt::format(" ({} ranks on {} cores: oversubscribed)", n_, placement.cores)
                            : std::string()));
      } else {
        say(fmt::format("rank {} bound to {}: cpus {}", r, p.where, format_cpu_list(p.cpus)));
      }
    }
  }
  if (!prepare(placement)) return kExitUsage;
  // Processes a rank starts that outlive it come back to cohortrun (end_leftovers).
  if (!platform::become_subreaper() && o_.verbose) {
    say("cannot become the ranks' child subreaper: processes they leave running are not ended");
  }
  spawn_all(placement);
  loop();
  end_leftovers();
  flush_all();
  write_trace_and_stats();

  if (!terminated_.empty()) {
    std::sort(terminated_.begin(), terminated_.end());
    say(fmt::format("rank{} {} terminated by cohortrun ({})", terminated_.size() > 1 ? "s" : "",
                    format_ranks(terminated_),
                    reason_ == Reason::timeout        ? "timeout"
                    : reason_ == Reason::interrupt    ? fmt::format("cohortrun got {}", platform::signal_name(interrupt_signal_))
                    : reason_ == Reason::launch_error ? "the job could not be started"
                    : reason_ == Reason::deadlock     ? "deadlock"
                                                      : "another rank failed"));
  }
  // One line per rank (a job of one rank has said it all in its failure line).
  if (n_ > 1 && (reason_ == Reason::failure || reason_ == Reason::deadlock || reason_ == Reason::timeout)) {
    exit_table();
  }
  if (o_.verbose) say(fmt::format("job ended after {:.1f} ms", ms_since(start_)));
  switch (reason_) {
    case Reason::none: return kExitOk;
    case Reason::failure: return first_failure_code_;
    case Reason::timeout: return kExitTimeout;
    case Reason::interrupt: return kExitSignalBase + interrupt_signal_;
    case Reason::launch_error: return kExitUsage;
    case Reason::deadlock: return kExitDeadlock;
  }
  return kExitOk;
}

bool Job::prepare(const Placement& placement) {
  // The segment first: if it does not fit, nothing is started.
  job_ = platform::random_u64();
  // --trace/--stats: a trace area, reserved with the rest so that recording never faults.
  transport::TraceConfig trace{!o_.trace_file.empty() || o_.stats,
                               o_.trace_file.empty() ? 0 : o_.trace_events};
  transport::SegmentLayout layout = transport::segment_layout(n_, o_.shared_heap_bytes, trace);
  auto t0 = Clock::now();
  try {
    segment_fd_ = platform::create_shared_memory(fmt::format("cohort-job-{}", contract::format_job(job_)),
                                                 layout.total_bytes, layout.reserved_bytes());
    mapping_ = platform::Mapping(segment_fd_.get(), layout.total_bytes, "job segment");
  } catch (const std::system_error& e) {
    say(fmt::format("cannot create the job segment: {} ranks need {} bytes ({:.1f} MiB) of shared "
                    "memory up front and the system refused ({}); free memory, raise the memory "
                    "limit of this cgroup/container, or run fewer ranks", n_, layout.reserved_bytes(),
                    static_cast<double>(layout.reserved_bytes()) / (1024.0 * 1024.0), e.what()));
    return false;
  }
  segment_ = transport::Segment::format(mapping_.bytes(), n_, job_, placement.oversubscribed,
                                        o_.shared_heap_bytes, trace);
  if (o_.verbose) {
    say(fmt::format("job {}: segment of {} bytes ({} needed up front, checked against available memory; memfd, fd {}) created in {:.2f} ms",
                    contract::format_job(job_), layout.total_bytes, layout.reserved_bytes(),
                    segment_fd_.get(), ms_since(t0)));
  }

  ranks_.resize(static_cast<std::size_t>(n_));
  piped_ = o_.tag_output || o_.timestamp_output;
  try {
    dev_null_ = platform::open_file("/dev/null", O_RDONLY);
    if (!o_.output_dir.empty()) {
      platform::make_directories(o_.output_dir);
      for (int r = 0; r < n_; ++r) {
        Rank& rank = ranks_[static_cast<std::size_t>(r)];
        for (const char* ext : {"out", "err"}) {
          files_.push_back(platform::open_file(fmt::format("{}/rank.{}.{}", o_.output_dir, r, ext),
                                               O_WRONLY | O_CREAT | O_TRUNC));
        }
        rank.out.sink = files_[files_.size() - 2].get();
        rank.err.sink = files_.back().get();
      }
    } else {
      for (Rank& rank : ranks_) {
        rank.out.sink = STDOUT_FILENO;
        rank.err.sink = STDERR_FILENO;
      }
    }
  } catch (const std::system_error& e) {
    say(fmt::format("cannot set up the ranks' output: {}", e.what()));
    return false;
  }

  open_files_limit_ = platform::raise_open_files_limit();
  child_mask_ = platform::block_signals(kBlockedSignals);
  signals_.emplace(kHandledSignals);
  poller_.add(signals_->fd(), make_tag(Kind::signals, 0));
  return true;
}

void Job::spawn_all(const Placement& placement) {
  // The environment every rank shares: cohortrun's, with -x applied, without stale COHORT_*.
  std::vector<std::string> base;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    std::string_view name = kv.substr(0, kv.find('='));
    if (is_contract_variable(name)) continue;
    bool overridden = false;
    for (const auto& [xname, xvalue] : o_.env) overridden |= xvalue.has_value() && xname == name;
    if (!overridden) base.emplace_back(kv);
  }
  for (const auto& [xname, xvalue] : o_.env) {
    if (xvalue) base.push_back(fmt::format("{}={}", xname, *xvalue));
    else if (std::getenv(xname.c_str()) == nullptr && o_.verbose) say(fmt::format("-x {}: not set, not exported", xname));
  }
  base.push_back(fmt::format("{}={}", contract::kLauncherPid, ::getpid()));

  std::vector<char*> argv;
  std::vector<std::string> args = o_.command;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  auto t0 = Clock::now();
  for (int r = 0; r < n_; ++r) {
    Rank& rank = ranks_[static_cast<std::size_t>(r)];
    const RankPlacement& where = placement.ranks[static_cast<std::size_t>(r)];
    contract::LaunchInfo info{r, n_, job_, segment_fd_.get(), placement.oversubscribed,
                              format_cpu_list(where.cpus)};
    std::vector<std::string> env = base;
    for (auto& [k, v] : contract::format(info)) env.push_back(k + "=" + v);
    std::vector<char*> envp;
    envp.reserve(env.size() + 1);
    for (std::string& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    platform::CpuMask mask(where.cpus);

    platform::SpawnRequest req;
    req.path = program_.c_str();
    req.argv = argv.data();
    req.envp = envp.data();
    req.stdin_fd = r == 0 ? -1 : dev_null_.get();
    req.keep_fd = segment_fd_.get();
    req.cpu_mask = mask.empty() ? nullptr : mask.data();
    req.cpu_mask_bytes = mask.bytes();
    req.signal_mask = &child_mask_;
    req.open_files_limit = open_files_limit_;
    bool watched = false;
    try {
      platform::Pipe out_pipe;
      platform::Pipe err_pipe;
      if (piped_) {
        out_pipe = platform::make_pipe(fmt::format("rank {} stdout", r));
        err_pipe = platform::make_pipe(fmt::format("rank {} stderr", r));
        req.stdout_fd = out_pipe.write.get();
        req.stderr_fd = err_pipe.write.get();
      } else if (!o_.output_dir.empty()) {
        req.stdout_fd = rank.out.sink;
        req.stderr_fd = rank.err.sink;
      }
      rank.start_ns = transport::trace_clock_ns();
      rank.pid = platform::spawn(req);
      rank.running = true;
      rank.pidfd = platform::open_pidfd(rank.pid);
      poller_.add(rank.pidfd.get(), make_tag(Kind::pidfd, r));
      watched = true;
      if (piped_) {
        std::string prefix = o_.tag_output ? fmt::format("[{}] ", r) : std::string();
        rank.out.pipe = std::move(out_pipe.read);
        rank.err.pipe = std::move(err_pipe.read);
        rank.out.lines = LineSplitter(prefix);
        rank.err.lines = LineSplitter(prefix);
        poller_.add(rank.out.pipe.get(), make_tag(Kind::out, r));
        poller_.add(rank.err.pipe.get(), make_tag(Kind::err, r));
      }
    } catch (const std::system_error& e) {
      if (rank.running && !watched) {  // started but not supervised: stop it here
        platform::kill_and_reap(rank.pid);
        rank.running = false;
      }
      say(fmt::format("cannot start rank {} of {}: {}; terminating the {} rank(s) already started",
                      r, n_, e.what(), r));
      teardown(Reason::launch_error);
      return;
    }
  }
  if (o_.verbose) say(fmt::format("started {} ranks in {:.2f} ms", n_, ms_since(t0)));
  if (o_.timeout_seconds > 0) {
    timeout_deadline_ = start_ + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(o_.timeout_seconds));
  }
  if (o_.deadlock_detection) next_sample_ = Clock::now() + kSamplePeriod;
  if (o_.hang_report_seconds > 0) {
    next_hang_report_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o_.hang_report_seconds));
  }
}

int Job::running_count() const {
  int n = 0;
  for (const Rank& r : ranks_) n += r.running ? 1 : 0;
  return n;
}

std::vector<int> Job::running_ranks() const {
  std::vector<int> out;
  for (int r = 0; r < n_; ++r) {
    if (ranks_[static_cast<std::size_t>(r)].running) out.push_back(r);
  }
  return out;
}

void Job::loop() {
  while (running_count() > 0) {
    auto now = Clock::now();
    if (timeout_deadline_ && reason_ == Reason::none && now >= *timeout_deadline_) {
      std::vector<int> still = running_ranks();
      std::string pids;
      for (int r : still) {
        pids += fmt::format("{}{}", pids.empty() ? "" : ", ", ranks_[static_cast<std::size_t>(r)].pid);
      }
      say(fmt::format("timeout: the job ran longer than {} s; rank{} {} still running (pid{} {}); "
                      "terminating the job", o_.timeout_seconds, still.size() > 1 ? "s" : "",
                      format_ranks(still), still.size() > 1 ? "s" : "", pids));
      teardown(Reason::timeout);
    }
    if (kill_deadline_ && !killed_ && now >= *kill_deadline_) {
      if (o_.verbose) say(fmt::format("grace period over: SIGKILL to ranks {}", format_ranks(running_ranks())));
      signal_running(SIGKILL);
      killed_ = true;
    }
    if (reason_ == Reason::none && next_sample_ && now >= *next_sample_) {
      sample(now);
      next_sample_ = now + kSamplePeriod;
    }
    if (reason_ == Reason::none && next_hang_report_ && now >= *next_hang_report_) {
      hang_report("periodic");
      next_hang_report_ = now + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(o_.hang_report_seconds));
    }
    std::optional<Clock::time_point> next;
    auto sooner = [&](std::optional<Clock::time_point> t) {
      if (t) next = next ? std::min(*next, *t) : *t;
    };
    if (reason_ == Reason::none) {
      sooner(timeout_deadline_);
      sooner(next_sample_);
      sooner(next_hang_report_);
    }
    if (!killed_) sooner(kill_deadline_);
    std::chrono::milliseconds wait(-1);
    if (next) {
      wait = std::chrono::ceil<std::chrono::milliseconds>(*next - now);
      if (wait.count() < 0) wait = std::chrono::milliseconds(0);
    }
    for (std::uint64_t tag : poller_.wait(wait)) on_ready(tag);
  }
}

void Job::on_ready(std::uint64_t tag) {
  auto kind = static_cast<Kind>(tag >> 32);
  int r = static_cast<int>(tag & 0xffffffffU);
  switch (kind) {
    case Kind::signals:
      while (auto s = signals_->next()) on_signal(*s);
      break;
    case Kind::pidfd: {
      Rank& rank = ranks_[static_cast<std::size_t>(r)];
      if (!rank.running) break;
      if (auto info = platform::reap(rank.pidfd.get())) {
        rank.exit = *info;
        rank.running = false;
        poller_.remove(rank.pidfd.get());
        on_exit(r);
      }
      break;
    }
    case Kind::out: pump(r, false, false); break;
    case Kind::err: pump(r, true, false); break;
  }
}

void Job::pump(int r, bool is_err, bool drain) {
  Rank& rank = ranks_[static_cast<std::size_t>(r)];
  Stream& s = is_err ? rank.err : rank.out;
  if (!s.pipe.valid()) return;
  do {
    long n = platform::read_some(s.pipe.get(), read_buffer_, is_err ? "rank stderr" : "rank stdout");
    if (n < 0) return;  // nothing more for now
    out_buffer_.clear();
    std::string stamp = o_.timestamp_output ? timestamp_prefix() : std::string();
    if (n == 0) {
      s.lines.finish(out_buffer_, stamp);
      poller_.remove(s.pipe.get());
      s.pipe.reset();
    } else {
      s.lines.feed(std::string_view(read_buffer_.data(), static_cast<std::size_t>(n)), out_buffer_, stamp);
    }
    if (!out_buffer_.empty() && s.sink >= 0 && !platform::write_all(s.sink, out_buffer_)) {
      s.sink = -1;  // the reader went away: drop this stream's output, keep the job running
    }
  } while (drain && s.pipe.valid());
}

void Job::flush_all() {
  if (!piped_) return;
  for (int r = 0; r < n_; ++r) {
    for (bool is_err : {false, true}) {
      pump(r, is_err, true);
      Stream& s = is_err ? ranks_[static_cast<std::size_t>(r)].err : ranks_[static_cast<std::size_t>(r)].out;
      if (s.pipe.valid()) {  // still held open by something the rank started: flush and stop
        out_buffer_.clear();
        s.lines.finish(out_buffer_, o_.timestamp_output ? timestamp_prefix() : std::string());
        if (!out_buffer_.empty() && s.sink >= 0) platform::write_all(s.sink, out_buffer_);
        s.pipe.reset();
      }
    }
  }
}

void Job::on_exit(int r) {
  Rank& rank = ranks_[static_cast<std::size_t>(r)];
  rank.end_ns = transport::trace_clock_ns();
  int status = rank.exit.wait_status;
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok && reason_ == Reason::none) {
    // Where every rank was before this exit is known: waking them below may end their waits.
    for (int q = 0; q < n_; ++q) {
      Rank& other = ranks_[static_cast<std::size_t>(q)];
      if ((other.running || q == r) && !other.last_wait) other.last_wait = take_snapshot(segment_, q, true);
    }
  }
  // Tell the peers first: they may be blocked on this rank.
  transport::RankSlot& slot = segment_.slot(r);
  slot.exit_status.store(status, std::memory_order_relaxed);
  slot.state.store(static_cast<std::uint32_t>(transport::RankState::exited), std::memory_order_release);
  wake_attached();
  if (piped_) {  // everything the rank wrote is in its pipes now
    pump(r, false, true);
    pump(r, true, true);
  }
  if (o_.verbose) {
    say(fmt::format("rank {} (pid {}) {}; peak RSS {:.1f} MiB", r, rank.pid, describe_status(status),
                    static_cast<double>(rank.exit.max_rss_kib) / 1024.0));
  }
  if (ok) return;
  bool by_us = reason_ != Reason::none && WIFSIGNALED(status) &&
               (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL);
  if (by_us) {
    terminated_.push_back(r);
    return;
  }
  if (!o_.verbose) say(fmt::format("rank {} (pid {}) {}", r, rank.pid, describe_status(status)));
  if (reason_ == Reason::none) {
    first_failure_code_ = exit_code_of(status);
    teardown(Reason::failure);
  }
}

void Job::on_signal(int signal) {
  if (signal == SIGQUIT) {
    hang_report("SIGQUIT");
    return;
  }
  if (signal == SIGUSR1 || signal == SIGUSR2) {
    if (o_.verbose) say(fmt::format("forwarding {} to the ranks", platform::signal_name(signal)));
    signal_running(signal);
    return;
  }
  if (reason_ != Reason::none) {  // second interrupt: no more grace
    if (!killed_) {
      say(fmt::format("got {} again: killing the ranks now", platform::signal_name(signal)));
      signal_running(SIGKILL);
      killed_ = true;
    }
    return;
  }
  interrupt_signal_ = signal;
  say(fmt::format("got {}: terminating the job ({} rank{} running)", platform::signal_name(signal),
                  running_count(), running_count() == 1 ? "" : "s"));
  teardown(Reason::interrupt);
}

void Job::teardown(Reason reason) {
  if (reason_ != Reason::none) return;
  reason_ = reason;
  if (mapping_.data() != nullptr) {
    // Where each rank was, before the abort makes them leave their waits.
    for (int r = 0; r < n_; ++r) {
      Rank& rank = ranks_[static_cast<std::size_t>(r)];
      if (rank.running && !rank.last_wait) rank.last_wait = take_snapshot(segment_, r, true);
    }
    segment_.header().abort.store(1, std::memory_order_release);
    segment_.wake_all();
  }
  signal_running(SIGTERM);
  kill_deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(o_.grace_seconds));
}

void Job::wake_attached() {
  // Only attached ranks can be asleep on their doorbell: a job of programs that never attach
  // (`cohortrun -n 32 /bin/true`) is spared n^2 futex calls. A rank attaching right now
  // re-checks its peers within its sleep slice anyway.
  for (int r = 0; r < n_; ++r) {
    if (segment_.slot(r).state.load(std::memory_order_acquire) ==
        static_cast<std::uint32_t>(transport::RankState::attached)) {
      segment_.wake_all();
      return;
    }
  }
}

std::vector<RankSnapshot> Job::snapshots() const {
  std::vector<RankSnapshot> out;
  out.reserve(ranks_.size());
  for (int r = 0; r < n_; ++r) out.push_back(take_snapshot(segment_, r, ranks_[static_cast<std::size_t>(r)].running));
  return out;
}

void Job::sample(Clock::time_point now) {
  if (mapping_.data() == nullptr) return;
  std::vector<RankSnapshot> now_ranks = snapshots();
  for (RankSnapshot& s : now_ranks) {
    const Rank& rank = ranks_[static_cast<std::size_t>(s.rank)];
    if (s.process_running && is_stuck(s)) s.runnable = platform::process_state(rank.pid) == 'R';
  }
  if (!detector_.observe(now_ranks, now)) return;
  std::string text = fmt::format(
      "cohortrun: deadlock: every running rank is blocked and nothing has changed for {:.1f} s:\n",
      std::chrono::duration<double>(kDeadlockWindow).count());
  for (const RankSnapshot& s : now_ranks) {
    if (s.process_running) text += fmt::format("cohortrun: rank {}: {}\n", s.rank, describe_wait(s));
  }
  std::vector<int> cycle = find_cycle(now_ranks);
  if (!cycle.empty()) text += fmt::format("cohortrun: cycle: {}\n", format_cycle(cycle));
  text += fmt::format("cohortrun: terminating the job (exit {})\n", kExitDeadlock);
  platform::write_all(STDERR_FILENO, text);
  teardown(Reason::deadlock);
}

void Job::hang_report(const char* why) {
  if (mapping_.data() == nullptr) return;
  std::string text = fmt::format("cohortrun: hang report ({}, {:.1f} s after start):\n", why,
                                 ms_since(start_) / 1000.0);
  for (const RankSnapshot& s : snapshots()) {
    const Rank& rank = ranks_[static_cast<std::size_t>(s.rank)];
    std::string state = s.process_running ? state_text(s) : describe_status(rank.exit.wait_status);
    std::string where = describe_wait(s);
    text += fmt::format("cohortrun: rank {} (pid {}): {}{}\n", s.rank, rank.pid, state,
                        is_blocked(s) ? " in " + where : std::string());
  }
  platform::write_all(STDERR_FILENO, text);
}

void Job::exit_table() {
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"rank", "pid", "state", "exit", "blocked in"});
  for (int r = 0; r < n_; ++r) {
    const Rank& rank = ranks_[static_cast<std::size_t>(r)];
    int status = rank.exit.wait_status;
    bool ok = !rank.running && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    bool terminated = std::find(terminated_.begin(), terminated_.end(), r) != terminated_.end();
    std::string state = rank.running ? "running" : ok ? "exited" : terminated ? "terminated" : "failed";
    std::string exit = rank.running ? "-" : WIFEXITED(status) ? fmt::format("code {}", WEXITSTATUS(status))
                                            : WIFSIGNALED(status) ? platform::signal_name(WTERMSIG(status))
                                                                  : fmt::format("status {:#x}", status);
    std::string where = rank.last_wait && rank.last_wait->state == transport::RankState::attached
                            ? describe_wait(*rank.last_wait)
                            : std::string();
    rows.push_back({std::to_string(r), std::to_string(rank.pid), state, exit, where.empty() ? "-" : where});
  }
  std::array<std::size_t, 5> width{};
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string text;
  for (const auto& row : rows) {
    text += fmt::format("cohortrun: {:>{}}  {:>{}}  {:<{}}  {:<{}}  {}\n", row[0], width[0], row[1],
                        width[1], row[2], width[2], row[3], width[3], row[4]);
  }
  platform::write_all(STDERR_FILENO, text);
}

// After the job, however it ended: the ranks' trace blocks are in the segment, which the
// launcher still maps (a rank killed mid-event loses only that event).
void Job::write_trace_and_stats() {
  if (mapping_.data() == nullptr || segment_.trace_area().empty()) return;
  std::vector<RankRun> runs;
  for (const Rank& rank : ranks_) {
    RankRun run;
    run.pid = rank.pid;
    run.start_ns = rank.start_ns;
    run.end_ns = rank.running ? 0 : rank.end_ns;
    run.wait_status = rank.exit.wait_status;
    run.max_rss_kib = rank.exit.max_rss_kib;
    if (!rank.running && rank.pid > 0) run.exit = describe_status(rank.exit.wait_status);
    runs.push_back(std::move(run));
  }
  if (!o_.trace_file.empty()) {
    TraceJob job{contract::format_job(job_), {}, runs};
    for (const std::string& a : o_.command) job.command += (job.command.empty() ? "" : " ") + a;
    try {
      TraceSummary sum = write_trace(o_.trace_file, segment_.trace_area(), job);
      say(fmt::format("trace: {} events, {} messages paired, written to {}{}", sum.events, sum.flows,
                      o_.trace_file,
                      sum.dropped != 0 ? fmt::format(" ({} events dropped: buffers full; raise "
                                                     "--trace-events)", sum.dropped)
                                       : std::string()));
    } catch (const std::system_error& e) {
      say(fmt::format("cannot write the trace: {}", e.what()));
    }
  }
  if (o_.stats) {
    JobStats stats = read_stats(segment_.trace_area(), runs);
    platform::write_all(STDERR_FILENO, format_stats(stats, ::isatty(STDERR_FILENO) == 1));
    if (!o_.stats_dir.empty()) {
      try {
        write_stats_dir(o_.stats_dir, stats);
        say(fmt::format("statistics written to {}/ (matrix.csv, ranks.csv, matrix.svg, ranks.svg)",
                        o_.stats_dir));
      } catch (const std::system_error& e) {
        say(fmt::format("cannot write the statistics: {}", e.what()));
      }
    }
  }
}

void Job::signal_running(int signal) {
  for (Rank& rank : ranks_) {
    if (rank.running) platform::send_signal(rank.pidfd.get(), signal);
  }
}

// Once every rank has ended: the processes the ranks started that are still running (a shell
// rank's commands, a daemon, the children of a rank cohortrun terminated) have been re-parented
// to cohortrun, their child subreaper. They belong to the job and end with it, as mpirun ends
// each rank's process group: SIGTERM, the grace period, then SIGKILL, and they are reaped. (Only
// a process that cohortrun's own death orphans escapes; the ranks themselves die with it.)
void Job::end_leftovers() {
  platform::reap_ended_children();  // ranks are reaped through their pidfds: these are others
  if (!platform::has_children()) return;  // the usual case, without reading /proc
  std::vector<pid_t> left = platform::living_children();
  if (left.empty()) return;
  std::string pids;
  for (std::size_t i = 0; i < left.size() && i < 8; ++i) pids += fmt::format("{}{}", i ? ", " : "", left[i]);
  if (left.size() > 8) pids += ", ...";
  say(fmt::format("{} process{} started by the ranks still running after them (pid{} {}): "
                  "terminating {} (SIGTERM, SIGKILL after {} s)",
                  left.size(), left.size() > 1 ? "es" : "", left.size() > 1 ? "s" : "", pids,
                  left.size() > 1 ? "them" : "it", o_.grace_seconds));
  // Scan, then signal, then reap: a child is not reaped between being listed and signalled, so
  // its pid cannot have been reused. Each gets one SIGTERM (a second could cut its clean-up
  // short); processes those children leave are re-parented here too and get theirs.
  std::vector<pid_t> told;
  auto terminate_new = [&] {
    for (pid_t pid : left) {
      if (std::find(told.begin(), told.end(), pid) != told.end()) continue;
      ::kill(pid, SIGTERM);
      told.push_back(pid);
    }
  };
  terminate_new();
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o_.grace_seconds));
  for (;;) {
    platform::reap_ended_children();
    left = platform::living_children();
    if (left.empty()) return;
    if (Clock::now() >= deadline) break;
    terminate_new();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // SIGKILL what is left, and what their ends re-parent here, a bounded number of rounds.
  for (int round = 0; round < 100 && !left.empty(); ++round) {
    for (pid_t pid : left) ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    platform::reap_ended_children();
    left = platform::living_children();
  }
  if (!left.empty()) say(fmt::format("{} process(es) started by the ranks could not be ended", left.size()));
}

}  // namespace

int run_job(const Options& options, const std::string& program) {
  Job job(options, program);
  return job.run();
}

}  // namespace cohort::launcher
