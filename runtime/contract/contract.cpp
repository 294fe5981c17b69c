#include "runtime/contract/contract.hpp"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "cohort/errors.hpp"

namespace cohort::contract {
namespace {

template <class Int>
Int parse_integer(const char* name, const char* text, Int min, Int max, int base = 10) {
  std::string_view s(text);
  Int value{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || value < min || value > max) {
    throw ContractError(fmt::format(
        "cohort: environment variable {}='{}' is malformed (expected {} from {} to {}); "
        "start the program with cohortrun or unset every COHORT_* variable to run it alone",
        name, s, base == 16 ? "a hex number" : "an integer", min, max));
  }
  return value;
}

}  // namespace

std::optional<LaunchInfo> parse(const Lookup& lookup) {
  const char* required[] = {kRank, kSize, kJob, kSegmentFd};
  int present = 0;
  for (const char* name : required) present += lookup(name) != nullptr ? 1 : 0;
  if (present == 0) return std::nullopt;
  for (const char* name : required) {
    if (lookup(name) == nullptr) {
      throw ContractError(fmt::format(
          "cohort: environment variable {} is missing while other COHORT_* variables are set; "
          "start the program with cohortrun or unset every COHORT_* variable to run it alone",
          name));
    }
  }
  LaunchInfo info;
  info.size = parse_integer<int>(kSize, lookup(kSize), 1, kMaxRanks);
  info.rank = parse_integer<int>(kRank, lookup(kRank), 0, info.size - 1);
  std::string_view job(lookup(kJob));
  if (job.size() != 16) {
    throw ContractError(fmt::format(
        "cohort: environment variable {}='{}' is malformed (expected 16 hex digits)", kJob, job));
  }
  info.job = parse_integer<std::uint64_t>(kJob, lookup(kJob), 0, UINT64_MAX, 16);
  info.segment_fd = parse_integer<int>(kSegmentFd, lookup(kSegmentFd), 0, 1 << 20);
  if (const char* o = lookup(kOversubscribed)) {
    info.oversubscribed = parse_integer<int>(kOversubscribed, o, 0, 1) == 1;
  }
  if (const char* c = lookup(kCpus)) info.cpus = c;
  return info;
}

std::optional<LaunchInfo> parse_environment() {
  return parse([](const char* name) { return std::getenv(name); });
}

std::string format_job(std::uint64_t job) { return fmt::format("{:016x}", job); }

std::vector<std::pair<std::string, std::string>> format(const LaunchInfo& info) {
  return {
      {kRank, std::to_string(info.rank)},
      {kSize, std::to_string(info.size)},
      {kJob, format_job(info.job)},
      {kSegmentFd, std::to_string(info.segment_fd)},
      {kOversubscribed, info.oversubscribed ? "1" : "0"},
      {kCpus, info.cpus},
  };
}

}  // namespace cohort::contract
