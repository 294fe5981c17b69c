// Fuzz: the launcher <-> rank contract as a rank parses its environment
// (runtime/contract/contract.hpp parse). The input is the variables' values, separated by '\n';
// a value of "-" means unset.
#include <array>
#include <string>

#include "cohort/errors.hpp"
#include "runtime/contract/contract.hpp"
#include "tests/fuzz/fuzz_target.hpp"

COHORT_FUZZ_TARGET(contract) {
  using namespace cohort;
  using namespace cohort::contract;
  constexpr std::array<const char*, 6> kNames = {kRank, kSize, kJob, kSegmentFd, kOversubscribed, kCpus};
  std::array<std::string, kNames.size()> values;
  std::array<bool, kNames.size()> set{};
  std::string text(reinterpret_cast<const char*>(data), size);
  std::size_t at = 0;
  for (std::size_t i = 0; i < kNames.size() && at <= text.size(); ++i) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    values[i] = text.substr(at, end - at);
    set[i] = values[i] != "-";
    at = end + 1;
  }
  auto lookup = [&](const char* name) -> const char* {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
      if (std::string_view(name) == kNames[i]) return set[i] ? values[i].c_str() : nullptr;
    }
    return nullptr;
  };
  try {
    auto info = contract::parse(lookup);
    if (info) {
      COHORT_FUZZ_CHECK(info->size >= 1 && info->size <= kMaxRanks);
      COHORT_FUZZ_CHECK(info->rank >= 0 && info->rank < info->size);
      COHORT_FUZZ_CHECK(info->segment_fd >= 0);
      // What format() writes, parse() reads back the same.
      auto again = contract::parse([&, vars = contract::format(*info)](const char* name) -> const char* {
        for (const auto& [k, v] : vars) {
          if (k == name) return v.c_str();
        }
        return nullptr;
      });
      COHORT_FUZZ_CHECK(again && again->rank == info->rank && again->size == info->size &&
                        again->job == info->job && again->segment_fd == info->segment_fd);
    }
  } catch (const ContractError&) {
  }
  return 0;
}
