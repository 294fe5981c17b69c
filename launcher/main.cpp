// cohortrun: the Cohort launcher. See README.md, "Launching jobs" and `cohortrun --help`.
#include <exception>
#include <iostream>
#include <string>

#include "launcher/options.hpp"
#include "launcher/supervisor.hpp"
#include "runtime/platform/process.hpp"

int main(int argc, char** argv) {
  using namespace cohort::launcher;
  ParseResult parsed = parse_options(argc, argv, std::cout, std::cerr);
  if (!parsed.options) return parsed.exit_code;
  const Options& options = *parsed.options;
  std::string why;
  auto program = cohort::platform::find_executable(options.command.front(), why);
  if (!program) {
    std::cerr << "cohortrun: cannot run '" << options.command.front() << "': " << why << '\n'
              << kUsageLine << '\n';
    return kExitUsage;
  }
  try {
    return run_job(options, *program);
  } catch (const std::exception& e) {
    std::cerr << "cohortrun: " << e.what() << '\n';
    return kExitUsage;
  }
}
