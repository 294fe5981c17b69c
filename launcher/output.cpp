#include "launcher/output.hpp"

#include <chrono>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace cohort::launcher {

void LineSplitter::emit(std::string_view line, std::string& out, std::string_view stamp) const {
  out.append(stamp);
  out.append(prefix_);
  out.append(line);
  out.push_back('\n');
}

void LineSplitter::feed(std::string_view data, std::string& out, std::string_view stamp) {
  while (!data.empty()) {
    std::size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(data);
      if (partial_.size() >= kMaxLineBytes) {
        emit(partial_, out, stamp);
        partial_.clear();
      }
      return;
    }
    if (partial_.empty()) {
      emit(data.substr(0, nl), out, stamp);
    } else {
      partial_.append(data.substr(0, nl));
      emit(partial_, out, stamp);
      partial_.clear();
    }
    data.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish(std::string& out, std::string_view stamp) {
  if (partial_.empty()) return;
  emit(partial_, out, stamp);
  partial_.clear();
}

std::string timestamp_prefix() {
  auto now = std::chrono::system_clock::now();
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  return fmt::format("[{:%H:%M:%S}.{:06}] ", fmt::localtime(t), micros);
}

}  // namespace cohort::launcher
