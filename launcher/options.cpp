#include "launcher/options.hpp"

#include <CLI/CLI.hpp>

#include <string_view>

#include <fmt/format.h>

#include "cohort/launch_contract.hpp"

namespace cohort::launcher {
namespace {

constexpr const char* kFooter = R"(Exit status:
  0        every rank exited with 0
  N        the exit code of the first rank that failed (the others are terminated)
  128+N    the first rank that failed was killed by signal N (e.g. 139 for SIGSEGV),
           or cohortrun itself was interrupted by signal N (SIGINT: 130, SIGTERM: 143)
  124      --timeout expired; the ranks still running are named on stderr
  125      deadlock: every rank was blocked waiting for another and nothing changed for
           about a second; the wait-for graph is printed on stderr
  2        bad option or program, or the job could not be started (nothing was run)

Each rank gets COHORT_RANK, COHORT_SIZE, COHORT_JOB, COHORT_SEGMENT_FD, COHORT_OVERSUBSCRIBED,
COHORT_CPUS and COHORT_LAUNCHER_PID, and inherits cohortrun's environment otherwise.
Rank 0 reads cohortrun's stdin; the other ranks read /dev/null.
SIGINT/SIGTERM/SIGHUP: every rank gets SIGTERM, then SIGKILL after the grace period.
SIGUSR1/SIGUSR2: forwarded to every rank.
SIGQUIT (Ctrl-\): print where each rank waits (as --hang-report), once; the job goes on.
When a rank fails, a table of every rank (pid, state, exit, the call it was blocked in) follows.
Example: cohortrun -n 4 --tag-output ./hello)";

// Launcher options that take a value (so that their value is not mistaken for the program).
bool takes_value(std::string_view arg) {
  if (arg.find('=') != std::string_view::npos) return false;
  for (std::string_view o : {"-n", "-np", "--np", "--bind-to", "--map-by", "--output-dir", "-x",
                             "--export", "--timeout", "--grace", "--hang-report", "--shared-heap",
                             "--trace", "--trace-events", "--stats-dir"}) {
    if (arg == o) return true;
  }
  return false;
}

}  // namespace

ParseResult parse_options(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  // CLI11 only has single-character short options: spell mpirun's "-np" as "--np", but only
  // among the launcher's own options (the program's arguments are left alone).
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);  // CLI11 wants them reversed
  for (std::size_t k = args.size(); k-- > 0;) {
    std::string& a = args[k];
    if (a == "--" || a.empty() || a[0] != '-') break;
    if (a == "-np") a = "--np";
    else if (a.rfind("-np=", 0) == 0) a = "-" + a;
    if (takes_value(a) && k > 0) --k;
  }

  Options o;
  std::string bind = "auto";
  std::string map = "core";
  std::vector<std::string> exports;
  CLI::App app("cohortrun: start a Cohort job of N ranks (or N copies of any program) on this node.",
               "cohortrun");
  app.prefix_command();
  app.footer(kFooter);
  app.get_formatter()->column_width(28);
  app.add_option("-n,--np", o.ranks,
                 "Number of ranks (also -np). Default: one per core cohortrun may use (its "
                 "affinity mask). More ranks than cores is allowed (oversubscribed).");
  app.add_option("--bind-to", bind,
                 "Bind each rank to a core, its NUMA node or package, or not at all. Default: "
                 "core while ranks <= cores, none when oversubscribed.");
  app.add_option("--map-by", map,
                 "Order in which ranks take cores: core (consecutive, default), numa or package "
                 "(round-robin over NUMA nodes or packages).");
  app.add_flag("--report-bindings", o.report_bindings, "Print each rank's binding on stderr.");
  app.add_flag("--tag-output", o.tag_output, "Prefix each output line with its rank: [3] ...");
  app.add_flag("--timestamp-output", o.timestamp_output,
               "Prefix each output line with the time it was read.");
  app.add_option("--output-dir", o.output_dir,
                 "Write rank R's stdout and stderr to DIR/rank.R.out and DIR/rank.R.err.");
  app.add_option("-x,--export", exports,
                 "Set NAME=VALUE in every rank, or export NAME from cohortrun's environment "
                 "(repeatable; the environment is inherited anyway).")
      ->allow_extra_args(false);
  app.add_option("--timeout", o.timeout_seconds,
                 "Terminate the job after SECONDS and exit with 124, naming the ranks still running.");
  app.add_option("--grace", o.grace_seconds,
                 "Seconds between SIGTERM and SIGKILL when the job is torn down (default 1).");
  app.add_option("--hang-report", o.hang_report_seconds,
                 "Every SECONDS, print each rank's state and the call it is blocked in "
                 "(SIGQUIT to cohortrun prints it once).");
  app.add_option("--shared-heap", o.shared_heap_bytes,
                 "Size of the job's shared heap for SharedArray, SharedValue, locks and queues "
                 "(e.g. 256M, 2G; default 64M). Committed only as it is used.")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--trace", o.trace_file,
                 "Record each rank's messages, collectives, pool tasks, queue operations and waits "
                 "and write them as a Chrome/Perfetto trace (JSON; open in ui.perfetto.dev or "
                 "chrome://tracing) to FILE when the job ends, however it ends.");
  app.add_option("--trace-events", o.trace_events,
                 "Events kept per rank (default 65536, 48 bytes each, part of the job segment); later "
                 "ones are counted as dropped.");
  app.add_flag("--stats", o.stats,
               "At the end, print per-rank statistics (messages, bytes, time waiting and in "
               "collectives, pool load, peak memory) and the rank x rank bytes matrix on stderr.");
  app.add_option("--stats-dir", o.stats_dir,
                 "As --stats, and write matrix.csv, ranks.csv, matrix.svg and ranks.svg to DIR.");
  bool no_deadlock_detection = false;
  app.add_flag("--no-deadlock-detection", no_deadlock_detection,
               "Do not end the job (exit 125) when every rank is blocked for good.");
  app.add_flag("-v,--verbose", o.verbose, "Say what cohortrun does (timings, segment, exits, peak memory).");

  auto fail = [&](const std::string& message) {
    err << "cohortrun: " << message << '\n' << kUsageLine << '\n';
    return ParseResult{std::nullopt, kExitUsage};
  };

  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return ParseResult{std::nullopt, kExitOk};
  } catch (const CLI::ParseError& e) {
    return fail(e.what());
  }

  o.command = app.remaining();
  if (!o.command.empty() && o.command.front() == "--") o.command.erase(o.command.begin());
  if (o.command.empty()) return fail("no program given");
  if (o.command.front().size() > 1 && o.command.front()[0] == '-') {
    return fail(fmt::format("unknown option '{}'", o.command.front()));
  }
  if (app.count("--np") > 0 && (o.ranks < 1 || o.ranks > contract::kMaxRanks)) {
    return fail(fmt::format("-n {}: the number of ranks must be from 1 to {}", o.ranks,
                            contract::kMaxRanks));
  }
  if (bind == "auto") {
    o.bind = BindPolicy::automatic;
  } else if (auto b = parse_bind_policy(bind)) {
    o.bind = *b;
  } else {
    return fail(fmt::format("--bind-to {}: unknown binding (use core, numa, package or none)", bind));
  }
  if (auto m = parse_map_policy(map)) {
    o.map = *m;
  } else {
    return fail(fmt::format("--map-by {}: unknown mapping (use core, numa or package)", map));
  }
  if (app.count("--timeout") > 0 && !(o.timeout_seconds > 0)) {
    return fail(fmt::format("--timeout {}: the timeout must be a positive number of seconds",
                            o.timeout_seconds));
  }
  o.deadlock_detection = !no_deadlock_detection;
  if (app.count("--hang-report") > 0 && !(o.hang_report_seconds > 0)) {
    return fail(fmt::format("--hang-report {}: the period must be a positive number of seconds",
                            o.hang_report_seconds));
  }
  if (!(o.grace_seconds >= 0)) return fail("--grace: the grace period must be >= 0 seconds");
  if (app.count("--trace") > 0 && o.trace_file.empty()) return fail("--trace: empty file name");
  if (app.count("--stats-dir") > 0 && o.stats_dir.empty()) return fail("--stats-dir: empty directory name");
  if (!o.stats_dir.empty()) o.stats = true;
  if (app.count("--trace-events") > 0 && (o.trace_events < 1 || o.trace_events > (std::uint64_t{1} << 26))) {
    return fail(fmt::format("--trace-events {}: must be from 1 to {} per rank", o.trace_events,
                            std::uint64_t{1} << 26));
  }
  if (app.count("--output-dir") > 0 && o.output_dir.empty()) return fail("--output-dir: empty directory name");
  for (const std::string& x : exports) {
    auto eq = x.find('=');
    std::string name = x.substr(0, eq);
    if (name.empty() || name.find_first_of(" \t\n") != std::string::npos) {
      return fail(fmt::format("-x {}: expected NAME or NAME=VALUE", x));
    }
    if (eq == std::string::npos) o.env.emplace_back(name, std::nullopt);
    else o.env.emplace_back(name, x.substr(eq + 1));
  }
  return ParseResult{std::move(o), kExitOk};
}

}  // namespace cohort::launcher
