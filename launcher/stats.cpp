#include "launcher/stats.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <system_error>

#include <fmt/format.h>

#include "runtime/platform/process.hpp"
#include "runtime/transport/trace.hpp"

namespace cohort::launcher {
namespace {

std::uint64_t load(const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_acquire); }

double seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

std::string human_time(std::uint64_t ns) {
  if (ns == 0) return "0";
  if (ns < 1'000'000) return fmt::format("{:.1f} us", static_cast<double>(ns) / 1e3);
  if (ns < 1'000'000'000) return fmt::format("{:.1f} ms", static_cast<double>(ns) / 1e6);
  return fmt::format("{:.2f} s", seconds(ns));
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "";
  return fmt::format(" ({:.0f}%)", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

// Heat map level of a cell: 0 for nothing, else 1..9 by its share of the largest cell.
int level(std::uint64_t v, std::uint64_t max) {
  if (v == 0 || max == 0) return 0;
  auto l = static_cast<int>(std::ceil(9.0 * static_cast<double>(v) / static_cast<double>(max)));
  return std::clamp(l, 1, 9);
}

// White to dark blue (ColorBrewer "Blues" end points), t in [0, 1].
std::string blue(double t) {
  auto mix = [&](int a, int b) { return static_cast<int>(a + (b - a) * t + 0.5); };
  return fmt::format("#{:02x}{:02x}{:02x}", mix(0xf7, 0x08), mix(0xfb, 0x30), mix(0xff, 0x6b));
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

void write_file(const std::string& path, const std::string& text) {
  platform::FileDescriptor fd = platform::open_file(path, O_WRONLY | O_CREAT | O_TRUNC);
  if (!platform::write_all(fd.get(), text)) {
    throw std::system_error(errno, std::generic_category(), fmt::format("write {}", path));
  }
}

}  // namespace

std::string human_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  return v < 10 ? fmt::format("{:.1f} {}", v, units[u]) : fmt::format("{:.0f} {}", v, units[u]);
}

JobStats read_stats(std::span<std::byte> trace_area, const std::vector<RankRun>& runs) {
  JobStats js;
  if (trace_area.empty()) return js;
  const auto& h = *reinterpret_cast<const transport::TraceAreaHeader*>(trace_area.data());
  js.ranks = static_cast<int>(h.ranks);
  const auto n = static_cast<std::size_t>(js.ranks);
  js.bytes.assign(n * n, 0);
  js.messages.assign(n * n, 0);
  for (int r = 0; r < js.ranks; ++r) {
    transport::RankTrace t(trace_area, r);
    const transport::RankStats& s = t.stats();
    RankStatsRow row;
    row.rank = r;
    row.messages_sent = load(s.messages_sent);
    row.bytes_sent = load(s.bytes_sent);
    row.messages_received = load(s.messages_received);
    row.bytes_received = load(s.bytes_received);
    row.waits = load(s.waits);
    row.wait_ns = load(s.wait_ns);
    row.collectives = load(s.collectives);
    row.collective_ns = load(s.collective_ns);
    row.pool_chunks = load(s.pool_chunks);
    row.pool_items = load(s.pool_items);
    row.pool_busy_ns = load(s.pool_busy_ns);
    row.queue_puts = load(s.queue_puts);
    row.queue_gets = load(s.queue_gets);
    row.events = load(s.events);
    row.dropped = t.dropped();
    if (static_cast<std::size_t>(r) < runs.size()) {
      const RankRun& run = runs[static_cast<std::size_t>(r)];
      if (run.start_ns != 0 && run.end_ns > run.start_ns) row.elapsed_ns = run.end_ns - run.start_ns;
      row.max_rss_kib = run.max_rss_kib;
      row.exit = run.exit;
    }
    for (int to = 0; to < js.ranks; ++to) {
      std::size_t i = static_cast<std::size_t>(r) * n + static_cast<std::size_t>(to);
      js.bytes[i] = load(t.bytes_to(to));
      js.messages[i] = load(t.messages_to(to));
    }
    js.rows.push_back(std::move(row));
  }
  return js;
}

std::string format_stats(const JobStats& js, bool tty) {
  std::string out = fmt::format("cohortrun: statistics of {} rank{}\n", js.ranks, js.ranks == 1 ? "" : "s");
  // Per-rank table.
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"rank", "time", "sent", "received", "waiting", "collectives", "pool tasks",
                  "queue put/get", "peak RSS", "exit"});
  for (const RankStatsRow& r : js.rows) {
    rows.push_back({
        std::to_string(r.rank),
        human_time(r.elapsed_ns),
        fmt::format("{} msg, {}", r.messages_sent, human_bytes(r.bytes_sent)),
        fmt::format("{} msg, {}", r.messages_received, human_bytes(r.bytes_received)),
        human_time(r.wait_ns) + percent(r.wait_ns, r.elapsed_ns),
        r.collectives == 0 ? std::string("-")
                           : fmt::format("{} in {}{}", r.collectives, human_time(r.collective_ns),
                                         percent(r.collective_ns, r.elapsed_ns)),
        r.pool_chunks == 0 ? std::string("-")
                           : fmt::format("{} items, busy {}{}", r.pool_items, human_time(r.pool_busy_ns),
                                         percent(r.pool_busy_ns, r.elapsed_ns)),
        r.queue_puts + r.queue_gets == 0 ? std::string("-")
                                         : fmt::format("{}/{}", r.queue_puts, r.queue_gets),
        r.max_rss_kib > 0 ? fmt::format("{:.1f} MiB", static_cast<double>(r.max_rss_kib) / 1024.0)
                          : std::string("-"),
        r.exit.empty() ? std::string("-") : r.exit,
    });
  }
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line = "cohortrun: ";
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += c == 0 ? fmt::format("{:>{}}", row[c], width[c]) : fmt::format("  {:<{}}", row[c], width[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
  }
  for (const RankStatsRow& r : js.rows) {
    if (r.dropped != 0) {
      out += fmt::format("cohortrun: rank {}: {} of {} trace events dropped (buffer full; "
                         "raise --trace-events)\n", r.rank, r.dropped, r.events);
    }
  }
  // Heat map of the bytes matrix.
  std::uint64_t max = 0;
  for (std::uint64_t v : js.bytes) max = std::max(max, v);
  if (js.ranks > 64) {
    out += "cohortrun: bytes matrix: too many ranks to draw here; see --stats-dir\n";
    return out;
  }
  out += fmt::format("cohortrun: point-to-point bytes, sender (row) to receiver (column); "
                     "largest cell {}{}\n", human_bytes(max),
                     tty ? "" : "; 0 = none, 1-9 = ninths of the largest");
  static constexpr int kPalette[10] = {0, 17, 19, 21, 27, 33, 44, 184, 208, 196};
  std::string header = "cohortrun: to   ";
  for (int c = 0; c < js.ranks; ++c) header += fmt::format("{:>2}", c % 100);
  out += header + '\n';
  for (int r = 0; r < js.ranks; ++r) {
    std::string line = fmt::format("cohortrun: {:>4} ", r);
    for (int c = 0; c < js.ranks; ++c) {
      int l = level(js.bytes_at(r, c), max);
      if (!tty) {
        line += fmt::format(" {}", l);
      } else if (l == 0) {
        line += " \u00b7";
      } else {
        line += fmt::format("\x1b[38;5;{}m\u2588\u2588\x1b[0m", kPalette[l]);
      }
    }
    out += line + '\n';
  }
  if (tty) {
    std::string legend = "cohortrun: scale  \u00b7 none ";
    for (int l = 1; l <= 9; ++l) legend += fmt::format("\x1b[38;5;{}m\u2588\x1b[0m", kPalette[l]);
    out += legend + fmt::format(" {}\n", human_bytes(max));
  }
  return out;
}

std::string matrix_csv(const JobStats& js) {
  std::string out = "from\\to";
  for (int c = 0; c < js.ranks; ++c) out += fmt::format(",{}", c);
  out += '\n';
  for (int r = 0; r < js.ranks; ++r) {
    out += std::to_string(r);
    for (int c = 0; c < js.ranks; ++c) out += fmt::format(",{}", js.bytes_at(r, c));
    out += '\n';
  }
  return out;
}

std::string ranks_csv(const JobStats& js) {
  std::string out =
      "rank,elapsed_ns,messages_sent,bytes_sent,messages_received,bytes_received,waits,wait_ns,"
      "collectives,collective_ns,pool_chunks,pool_items,pool_busy_ns,queue_puts,queue_gets,"
      "max_rss_kib,trace_events,trace_events_dropped,exit\n";
  for (const RankStatsRow& r : js.rows) {
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"\n", r.rank,
                       r.elapsed_ns, r.messages_sent, r.bytes_sent, r.messages_received,
                       r.bytes_received, r.waits, r.wait_ns, r.collectives, r.collective_ns,
                       r.pool_chunks, r.pool_items, r.pool_busy_ns, r.queue_puts, r.queue_gets,
                       r.max_rss_kib, r.events, r.dropped, r.exit);
  }
  return out;
}

std::string matrix_svg(const JobStats& js) {
  const int n = std::max(js.ranks, 1);
  const int cell = std::clamp(560 / n, 4, 56);
  const int left = 70, top = 70;
  const int w = std::max(left + cell * n + 150, 520), h = top + cell * n + 40;
  std::uint64_t max = 0;
  for (std::uint64_t v : js.bytes) max = std::max(max, v);
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Bytes sent, sender to receiver "
      "({} ranks)</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">receiver rank</text>\n"
      "<text transform=\"translate(18,{}) rotate(-90)\" text-anchor=\"middle\">sender rank</text>\n",
      w, h, left, js.ranks, left + cell * n / 2, top - 30, top + cell * n / 2);
  const bool labels = n <= 32;
  for (int i = 0; i < js.ranks; ++i) {
    if (!labels && i % 8 != 0) continue;
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + i * cell + cell / 2, top - 8, i);
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", left - 6, top + i * cell + cell / 2 + 4, i);
  }
  for (int r = 0; r < js.ranks; ++r) {
    for (int c = 0; c < js.ranks; ++c) {
      std::uint64_t v = js.bytes_at(r, c);
      double t = max == 0 ? 0.0 : static_cast<double>(v) / static_cast<double>(max);
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"#ddd\">"
                       "<title>{} to {}: {} bytes</title></rect>\n",
                       left + c * cell, top + r * cell, cell, cell, blue(t), r, c, v);
      if (cell >= 48 && v != 0) {
        s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{}\">{}</text>\n",
                         left + c * cell + cell / 2, top + r * cell + cell / 2 + 4,
                         t > 0.5 ? "white" : "black", xml_escape(human_bytes(v)));
      }
    }
  }
  // Legend.
  const int lx = left + cell * n + 30, lh = std::max(cell * n, 100);
  for (int i = 0; i < 20; ++i) {
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"16\" height=\"{}\" fill=\"{}\"/>\n", lx,
                     top + lh * i / 20, lh / 20 + 1, blue(1.0 - i / 19.0));
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n<text x=\"{}\" y=\"{}\">0</text>\n</svg>\n",
                   lx + 22, top + 10, xml_escape(human_bytes(max)), lx + 22, top + lh);
  return s;
}

std::string ranks_svg(const JobStats& js) {
  const int n = std::max(js.ranks, 1);
  const int bar = std::clamp(480 / n, 6, 32);
  const int left = 70, top = 60, width = 560;
  const int h = top + (bar + 6) * n + 60;
  std::uint64_t longest = 1;
  for (const RankStatsRow& r : js.rows) longest = std::max(longest, r.elapsed_ns);
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Where each rank's time went "
      "(longest {})</text>\n", left + width + 200, h, left, xml_escape(human_time(longest)));
  struct Part {
    const char* name;
    const char* colour;
  };
  const Part parts[4] = {{"collectives", "#4878d0"}, {"waiting", "#ee854a"},
                         {"pool tasks", "#d65f5f"}, {"the rest (computing, ...)", "#6acc64"}};
  for (const RankStatsRow& r : js.rows) {
    int y = top + r.rank * (bar + 6);
    // Pool tasks neither wait nor run collectives, so the parts do not overlap.
    std::uint64_t used = r.collective_ns + r.wait_ns + r.pool_busy_ns;
    std::uint64_t rest = r.elapsed_ns > used ? r.elapsed_ns - used : 0;
    std::uint64_t values[4] = {r.collective_ns, r.wait_ns, r.pool_busy_ns, rest};
    double x = left;
    for (int p = 0; p < 4; ++p) {
      double w = static_cast<double>(width) * static_cast<double>(values[p]) / static_cast<double>(longest);
      if (w > 0) {
        s += fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\">"
                         "<title>rank {}: {} {}</title></rect>\n",
                         x, y, w, bar, parts[p].colour, r.rank, parts[p].name, xml_escape(human_time(values[p])));
      }
      x += w;
    }
    if (r.pool_chunks != 0) {
      s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"10\">pool: {} items, busy {}</text>\n",
                       x + 4, y + bar / 2 + 4, r.pool_items, xml_escape(human_time(r.pool_busy_ns)));
    }
    if (js.ranks <= 32 || r.rank % 8 == 0) {
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">rank {}</text>\n", left - 6, y + bar / 2 + 4, r.rank);
    }
  }
  int ly = h - 30;
  int lx = left;
  for (const Part& p : parts) {
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" "
                     "y=\"{}\">{}</text>\n", lx, ly, p.colour, lx + 16, ly + 10, p.name);
    lx += 170;
  }
  return s + "</svg>\n";
}

void write_stats_dir(const std::string& dir, const JobStats& js) {
  platform::make_directories(dir);
  write_file(dir + "/matrix.csv", matrix_csv(js));
  write_file(dir + "/ranks.csv", ranks_csv(js));
  write_file(dir + "/matrix.svg", matrix_svg(js));
  write_file(dir + "/ranks.svg", ranks_svg(js));
}

}  // namespace cohort::launcher
