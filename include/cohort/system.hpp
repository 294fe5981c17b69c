/// @file cohort/system.hpp
/// What the machine offers this process, like Python's `os.cpu_count()` /
/// `len(os.sched_getaffinity(0))`, from hwloc.
///
/// Example:
/// @code
///   #include <cohort/system.hpp>
///   int workers = cohort::cpu_count();          // e.g. run a pool with one worker per cpu
///   for (int cpu : cohort::available_cpus()) std::printf("may run on cpu %d\n", cpu);
/// @endcode
///
/// Both count logical processors (hardware threads) the calling process may run on: its CPU
/// binding (sched_setaffinity, cgroups cpusets) intersected with the machine's allowed cpus.
/// Under cohortrun each rank is bound to its core by default, so inside a rank cpu_count() is
/// usually 1; call it in the launching program (or with `cohortrun --bind-to none`) for the machine.
#pragma once

#include <vector>

namespace cohort {

/// Number of logical cpus this process may use (at least 1).
[[nodiscard]] int cpu_count();

/// Operating-system indices of the logical cpus this process may use, ascending.
[[nodiscard]] std::vector<int> available_cpus();

}  // namespace cohort
