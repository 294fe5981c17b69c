// cohortrun: command-line options (CLI11), in the conventions mpirun users know.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "launcher/placement.hpp"

namespace cohort::launcher {

/// Exit codes of cohortrun (also in --help and README.md, "Launching jobs").
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;    // bad options or program, or the job could not be started
inline constexpr int kExitTimeout = 124;  // --timeout expired (as timeout(1))
inline constexpr int kExitDeadlock = 125;  // every rank blocked for good (README.md, "When things go wrong")
inline constexpr int kExitSignalBase = 128;  // + N: a rank (or cohortrun) killed by signal N

struct Options {
  int ranks = 0;  // 0: one per core the launcher may use
  BindPolicy bind = BindPolicy::automatic;
  MapPolicy map = MapPolicy::core;
  bool report_bindings = false;
  bool tag_output = false;
  bool timestamp_output = false;
  std::string output_dir;
  /// -x NAME=VALUE (value set) or -x NAME (exported from cohortrun's environment).
  std::vector<std::pair<std::string, std::optional<std::string>>> env;
  double timeout_seconds = 0;  // 0: none
  double grace_seconds = 1.0;  // SIGTERM -> SIGKILL delay when the job is torn down
  double hang_report_seconds = 0;  // 0: none; else print where each rank waits this often
  bool deadlock_detection = true;  // --no-deadlock-detection turns it off
  std::size_t shared_heap_bytes = std::size_t{64} << 20;  // --shared-heap (SharedArray, locks, ...)
  std::string trace_file;  // --trace FILE: Chrome/Perfetto trace JSON written when the job ends
  std::uint64_t trace_events = 65536;  // --trace-events: event buffer per rank (48 bytes each)
  bool stats = false;      // --stats (also implied by --stats-dir)
  std::string stats_dir;   // --stats-dir DIR: matrix.csv, ranks.csv, matrix.svg, ranks.svg
  bool verbose = false;
  std::vector<std::string> command;  // PROGRAM ARGS...
};

/// Parses the command line. Returns the options, or the exit code when cohortrun must stop now
/// (--help: 0, after printing the help to `out`; an error: kExitUsage, after one line naming the
/// problem and the usage line on `err`). Does not look the program up (see find_executable).
struct ParseResult {
  std::optional<Options> options;
  int exit_code = 0;
};
ParseResult parse_options(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

/// The one-line usage shown after an error.
inline constexpr const char* kUsageLine =
    "usage: cohortrun [-n N] [--bind-to core|numa|package|none] [--tag-output] [--timeout S] "
    "[-x NAME[=VALUE]] ... PROGRAM [ARGS...]   (cohortrun --help for all options)";

}  // namespace cohort::launcher
