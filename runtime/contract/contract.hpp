// The launcher <-> rank contract: pure parsing and formatting of the COHORT_* variables,
// shared by the launcher and the runtime. See include/cohort/launch_contract.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cohort/launch_contract.hpp"

namespace cohort::contract {

/// What a rank learns from its environment.
struct LaunchInfo {
  int rank = 0;
  int size = 1;
  std::uint64_t job = 0;
  int segment_fd = -1;
  bool oversubscribed = false;
  std::string cpus;  // informative
};

/// Looks a variable up; returns nullptr when unset.
using Lookup = std::function<const char*(const char*)>;

/// Parses the contract. Returns nullopt when none of the required variables is set (singleton);
/// throws cohort::ContractError naming the variable when the set is partial or malformed.
std::optional<LaunchInfo> parse(const Lookup& lookup);

/// Parses the process environment (getenv).
std::optional<LaunchInfo> parse_environment();

/// The variables for one rank, as NAME=VALUE pairs.
std::vector<std::pair<std::string, std::string>> format(const LaunchInfo& info);

/// 16 lowercase hex digits.
std::string format_job(std::uint64_t job);

}  // namespace cohort::contract
