// cohortrun: starts the ranks and supervises them until the job ends.
//
// One thread, one event loop (epoll) over: a pidfd per rank, the ranks' output pipes (only when
// output is tagged or timestamped), a signalfd (SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2) and
// the deadlines (--timeout, the SIGTERM -> SIGKILL grace period).
#pragma once

#include <string>

#include "launcher/options.hpp"

namespace cohort::launcher {

/// Runs the job described by `options` (already validated; `program` is the resolved path of
/// options.command[0]). Returns cohortrun's exit status (see options.hpp). Writes its own
/// messages, one line each, on stderr.
int run_job(const Options& options, const std::string& program);

}  // namespace cohort::launcher
