// cohortrun: line-based output forwarding. Each rank's stdout and stderr arrive through pipes in
// arbitrary chunks; a LineSplitter turns them into whole lines, each with its prefix ("[3] ",
// a timestamp), so that the launcher writes whole lines only and ranks never interleave mid-line.
// Pure: no I/O, unit-testable.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cohort::launcher {

class LineSplitter {
 public:
  /// A line longer than this is cut (written with a newline) rather than buffered further.
  static constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;

  LineSplitter() = default;
  explicit LineSplitter(std::string prefix) : prefix_(std::move(prefix)) {}

  /// Appends every complete line of `data` (after what was kept from earlier calls) to `out`,
  /// each as `stamp` + prefix + line + '\n'; keeps the unfinished last line for later.
  void feed(std::string_view data, std::string& out, std::string_view stamp = {});

  /// End of stream: appends the unfinished line, if any, with a newline.
  void finish(std::string& out, std::string_view stamp = {});

  [[nodiscard]] std::size_t pending_bytes() const noexcept { return partial_.size(); }

 private:
  void emit(std::string_view line, std::string& out, std::string_view stamp) const;

  std::string prefix_;
  std::string partial_;
};

/// "[20:01:02.123456] " (local wall-clock time, microseconds).
std::string timestamp_prefix();

}  // namespace cohort::launcher
