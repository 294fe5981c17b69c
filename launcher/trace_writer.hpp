// cohortrun --trace FILE: the job's events as one Chrome/Perfetto trace (JSON object format,
// https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU), read from the
// job segment's trace area after the job has ended (runtime/transport/trace.hpp).
//
// One process ("cohort job ..."), one track (thread) per rank, tid = rank + 1, named "rank R".
// Spans ("ph": "X") for sends, receives, probes, waits, collectives, pool tasks and queue
// operations; a zero-length span where a non-blocking receive completed; an instant where each
// rank's process ended. Flow arrows ("ph": "s" on the send, "ph": "f", "bp": "e" on the receive,
// same "id") pair each message's send with its receive: both sides number the messages of each
// (sender, receiver) pair, and rings are FIFO per pair. "otherData" says what was dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/stats.hpp"

namespace cohort::launcher {

struct TraceJob {
  std::string job;      // job id
  std::string command;  // the program and its arguments
  std::vector<RankRun> runs;
};

struct TraceSummary {
  std::uint64_t events = 0;   // spans and instants written (flows not counted)
  std::uint64_t flows = 0;    // send/receive pairs
  std::uint64_t dropped = 0;  // events lost to full buffers, all ranks
};

/// Writes the trace JSON of `trace_area` to `sink` in pieces.
TraceSummary trace_json(std::span<std::byte> trace_area, const TraceJob& job,
                        const std::function<void(std::string_view)>& sink);

/// Writes the trace to `path`. Throws std::system_error naming the file.
TraceSummary write_trace(const std::string& path, std::span<std::byte> trace_area, const TraceJob& job);

/// `s` as the inside of a JSON string.
std::string json_escape(std::string_view s);

}  // namespace cohort::launcher
