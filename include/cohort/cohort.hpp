/// @file cohort/cohort.hpp
/// Everything in one include.
///
/// Example:
/// @code
///   #include <cohort/cohort.hpp>
///   int main(int argc, char** argv) {
///     cohort::Environment env(argc, argv);
///     std::printf("rank %d of %d\n", env.world().rank(), env.world().size());
///   }
/// @endcode
#pragma once

#include "cohort/communicator.hpp"
#include "cohort/environment.hpp"
#include "cohort/errors.hpp"
#include "cohort/launch_contract.hpp"
#include "cohort/shared.hpp"
#include "cohort/sync.hpp"
#include "cohort/spawn.hpp"
#include "cohort/pool.hpp"
#include "cohort/queue.hpp"
#include "cohort/pipe.hpp"
#include "cohort/system.hpp"
