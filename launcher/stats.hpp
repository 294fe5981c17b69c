// cohortrun --stats / --stats-dir: what each rank did, read from the job segment's trace area
// after the job has ended (runtime/transport/trace.hpp), however the ranks ended.
//
// Pure functions from the area (and what the launcher saw of each process) to text, CSV and SVG,
// so that the tests can check them without processes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace cohort::launcher {

/// What the launcher saw of one rank's process.
struct RankRun {
  int pid = -1;
  std::uint64_t start_ns = 0;  // trace clock (steady_clock) when it was spawned, 0: never
  std::uint64_t end_ns = 0;    // when it was reaped, 0: still running
  int wait_status = 0;
  long max_rss_kib = 0;        // getrusage of the reaped child (wait4)
  std::string exit;            // "exited with code 0", "killed by SIGKILL", "" while running
};

/// One rank's line of the summary.
struct RankStatsRow {
  int rank = 0;
  std::uint64_t messages_sent = 0, bytes_sent = 0, messages_received = 0, bytes_received = 0;
  std::uint64_t waits = 0, wait_ns = 0, collectives = 0, collective_ns = 0;
  std::uint64_t pool_chunks = 0, pool_items = 0, pool_busy_ns = 0;
  std::uint64_t queue_puts = 0, queue_gets = 0;
  std::uint64_t events = 0, dropped = 0;
  std::uint64_t elapsed_ns = 0;  // spawn to exit, as the launcher saw it
  long max_rss_kib = 0;
  std::string exit;
};

/// The whole job.
struct JobStats {
  int ranks = 0;
  std::vector<RankStatsRow> rows;
  std::vector<std::uint64_t> bytes;     // ranks x ranks, row = sender, column = receiver
  std::vector<std::uint64_t> messages;  // ranks x ranks
  [[nodiscard]] std::uint64_t bytes_at(int from, int to) const {
    return bytes[static_cast<std::size_t>(from) * static_cast<std::size_t>(ranks) + static_cast<std::size_t>(to)];
  }
};

/// Reads the statistics from a formatted trace area. `runs` has one entry per rank.
JobStats read_stats(std::span<std::byte> trace_area, const std::vector<RankRun>& runs);

/// The per-rank table and the bytes matrix as a heat map: coloured blocks (ANSI 256 colours)
/// when `tty`, else one digit per cell (0 = nothing, 1..9 = share of the largest cell).
std::string format_stats(const JobStats& stats, bool tty);

std::string matrix_csv(const JobStats& stats);
std::string ranks_csv(const JobStats& stats);
std::string matrix_svg(const JobStats& stats);
std::string ranks_svg(const JobStats& stats);

/// Writes matrix.csv, ranks.csv, matrix.svg and ranks.svg into `dir` (created if needed).
/// Throws std::system_error naming the file.
void write_stats_dir(const std::string& dir, const JobStats& stats);

/// "1.5 KiB", "12 MiB"; "0" for nothing.
std::string human_bytes(std::uint64_t bytes);

}  // namespace cohort::launcher
