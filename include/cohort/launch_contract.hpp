/// @file cohort/launch_contract.hpp
/// The contract between `cohortrun` and each rank: environment variables in every rank.
///
/// `cohortrun -n 3 sh -c 'echo $COHORT_RANK of $COHORT_SIZE'` prints `0 of 3`, `1 of 3`, `2 of 3`.
///
/// | variable                | meaning                                                        |
/// |-------------------------|----------------------------------------------------------------|
/// | COHORT_RANK             | this rank, 0 .. COHORT_SIZE-1                                  |
/// | COHORT_SIZE             | number of ranks in the job (>= 1)                              |
/// | COHORT_JOB              | job id: 16 lowercase hex digits, unique per job                |
/// | COHORT_SEGMENT_FD       | inherited descriptor of the job's shared-memory segment (memfd) |
/// | COHORT_OVERSUBSCRIBED   | 1 when ranks outnumber the cores the job may use, else 0       |
/// | COHORT_CPUS             | cpus this rank is bound to (list like "0-3,8"), empty if unbound|
/// | COHORT_LAUNCHER_PID     | pid of cohortrun (informative)                                 |
///
/// Rules: a program started with none of RANK, SIZE, JOB and SEGMENT_FD runs as a singleton of
/// size 1 with a private segment. A partial or malformed set is a hard error (cohort::ContractError)
/// naming the variable. The segment is a memfd: it has no name in /dev/shm, only the job's processes
/// (and their user, through /proc) can open it, and it disappears with the last process holding it.
/// The segment starts with a header whose magic, version and size are published last; a rank waits
/// for them before using the segment. After attaching, a rank marks the descriptor close-on-exec so
/// that programs it runs do not inherit the job.
#pragma once

namespace cohort::contract {

inline constexpr const char* kRank = "COHORT_RANK";
inline constexpr const char* kSize = "COHORT_SIZE";
inline constexpr const char* kJob = "COHORT_JOB";
inline constexpr const char* kSegmentFd = "COHORT_SEGMENT_FD";
inline constexpr const char* kOversubscribed = "COHORT_OVERSUBSCRIBED";
inline constexpr const char* kCpus = "COHORT_CPUS";
inline constexpr const char* kLauncherPid = "COHORT_LAUNCHER_PID";

/// Largest job cohortrun accepts.
inline constexpr int kMaxRanks = 1024;

}  // namespace cohort::contract
