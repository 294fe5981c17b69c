#include "launcher/trace_writer.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "runtime/transport/collective_kind.hpp"
#include "runtime/platform/process.hpp"
#include "runtime/transport/segment.hpp"
#include "runtime/transport/trace.hpp"

namespace cohort::launcher {
namespace {

using transport::TraceEvent;
using transport::TraceKind;

const char* wait_name(std::uint16_t op) {
  switch (static_cast<transport::WaitOp>(op)) {
    case transport::WaitOp::send: return "send";
    case transport::WaitOp::recv: return "recv";
    case transport::WaitOp::probe: return "probe";
    case transport::WaitOp::barrier: return "barrier";
    case transport::WaitOp::collective: return "collective";
    default: return "other";
  }
}

const char* category(TraceKind k) {
  switch (k) {
    case TraceKind::send:
    case TraceKind::isend:
    case TraceKind::recv:
    case TraceKind::recv_done:
    case TraceKind::probe: return "p2p";
    case TraceKind::wait: return "wait";
    case TraceKind::collective: return "collective";
    case TraceKind::pool_task: return "pool";
    case TraceKind::queue_put:
    case TraceKind::queue_get: return "queue";
  }
  return "other";
}

std::string event_name(const TraceEvent& e) {
  auto k = static_cast<TraceKind>(e.kind);
  switch (k) {
    case TraceKind::send:
    case TraceKind::isend: return fmt::format("{} to {}", transport::trace_kind_name(k), e.peer);
    case TraceKind::recv:
    case TraceKind::recv_done:
    case TraceKind::probe:
      return e.peer < 0 ? fmt::format("{} from any", transport::trace_kind_name(k))
                        : fmt::format("{} from {}", transport::trace_kind_name(k), e.peer);
    case TraceKind::wait:
      return e.peer < 0 ? fmt::format("wait ({})", wait_name(e.detail))
                        : fmt::format("wait ({}, rank {})", wait_name(e.detail), e.peer);
    case TraceKind::collective: return transport::collective_kind_name(e.detail);
    default: return transport::trace_kind_name(k);
  }
}

// Microseconds since the origin, to the nanosecond.
std::string micros(std::uint64_t ns, std::uint64_t origin) {
  std::uint64_t d = ns > origin ? ns - origin : 0;
  return fmt::format("{}.{:03}", d / 1000, d % 1000);
}

// An instant (begin == end) is drawn as a 1 ns slice, so that a flow can bind to it.
std::uint64_t drawn_end(const TraceEvent& e) { return std::max(e.end_ns, e.begin_ns + 1); }

// Flows (v1: "s" and "f" events) must bind to the same slices in every viewer:
//  - Chrome DevTools binds a flow event only to an event of the same cat, pid, tid and ts;
//  - Perfetto binds "s" (and "f" with "bp":"e") to the deepest slice open on the track at ts,
//    and drops an "f" that comes before its "s" in time;
//  - chrome://tracing (catapult) binds them to the slice that encloses ts.
// So a flow starts at the exact begin of its send (cat "p2p") and ends at the exact begin of a
// slice at the end of its receive: the "irecv done" instant, or a 1 ns "message received" mark
// nested at the end of a blocking receive (a receive may begin long before the send). Flow
// events come after every slice in the file: at equal ts, Perfetto orders the slice first
// (newer versions sort slices with a duration first, older ones keep file order).
std::uint64_t flow_key(int from, int to, int n, std::uint32_t seq) {
  return ((static_cast<std::uint64_t>(from) * static_cast<std::uint64_t>(n) + static_cast<std::uint64_t>(to)) << 32) | seq;
}

}  // namespace

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

TraceSummary trace_json(std::span<std::byte> area, const TraceJob& job,
                        const std::function<void(std::string_view)>& sink) {
  TraceSummary sum;
  const auto& h = *reinterpret_cast<const transport::TraceAreaHeader*>(area.data());
  const int n = static_cast<int>(h.ranks);
  const std::uint64_t origin = h.origin_ns;
  std::string buf;
  auto flush = [&](bool force) {
    if (force || buf.size() > (1u << 20)) {
      sink(buf);
      buf.clear();
    }
  };
  std::string dropped;
  std::string exits;
  for (int r = 0; r < n; ++r) {
    transport::RankTrace t(area, r);
    sum.dropped += t.dropped();
    dropped += fmt::format("{}{}", r == 0 ? "" : ",", t.dropped());
    std::string exit = static_cast<std::size_t>(r) < job.runs.size() ? job.runs[static_cast<std::size_t>(r)].exit : "";
    exits += fmt::format("{}\"{}\"", r == 0 ? "" : ",", json_escape(exit.empty() ? "running" : exit));
  }
  // No "displayTimeUnit": it is only a display hint in the format, but Perfetto versions of
  // 2020-2023 read "ns" there as the unit of every "ts" and "dur" (the trace came out 1000 times
  // too short); newer ones ignore it.
  buf += fmt::format(
      "{{\"otherData\":{{\"tool\":\"cohortrun --trace\",\"job\":\"{}\","
      "\"command\":\"{}\",\"ranks\":{},\"clock\":\"CLOCK_MONOTONIC, microseconds since the job "
      "segment was created\",\"events_per_rank\":{},\"when_full\":\"the first events_per_rank "
      "events of each rank are kept, later ones are dropped and counted\",\"dropped_events\":[{}],"
      "\"exits\":[{}]}},\n\"traceEvents\":[\n",
      json_escape(job.job), json_escape(job.command), n, h.events_per_rank, dropped, exits);
  buf += fmt::format("{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"args\":{{\"name\":\"cohort job {} ({} ranks)\"}}}}",
                     json_escape(job.job), n);
  for (int r = 0; r < n; ++r) {
    int pid = static_cast<std::size_t>(r) < job.runs.size() ? job.runs[static_cast<std::size_t>(r)].pid : -1;
    buf += fmt::format(",\n{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":{},\"args\":{{\"name\":\"rank {} (pid {})\"}}}}",
                       r + 1, r, pid);
    buf += fmt::format(",\n{{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,\"tid\":{},\"args\":{{\"sort_index\":{}}}}}",
                       r + 1, r);
  }
  // Sends by (sender, receiver, number): where each flow starts.
  struct Flow {
    int from_tid;
    std::uint64_t from_ns;
    int to_tid;
    std::uint64_t to_ns;
  };
  std::vector<Flow> flows;
  std::unordered_map<std::uint64_t, std::uint64_t> sends;
  for (int r = 0; r < n; ++r) {
    for (const TraceEvent& e : transport::RankTrace(area, r).events()) {
      auto k = static_cast<TraceKind>(e.kind);
      if ((k == TraceKind::send || k == TraceKind::isend) && e.seq != 0 && e.peer >= 0 && e.peer < n) {
        sends.emplace(flow_key(r, e.peer, n, e.seq), e.begin_ns);
      }
    }
  }
  for (int r = 0; r < n; ++r) {
    for (const TraceEvent& e : transport::RankTrace(area, r).events()) {
      auto k = static_cast<TraceKind>(e.kind);
      std::string args = fmt::format("\"rank\":{}", r);
      if (e.peer >= 0) args += fmt::format(",\"peer\":{}", e.peer);
      if (e.tag >= 0) args += fmt::format(",\"tag\":{}", e.tag);
      if (k == TraceKind::pool_task) args += fmt::format(",\"items\":{}", e.bytes);
      else if (k != TraceKind::wait) args += fmt::format(",\"bytes\":{}", e.bytes);
      if (e.seq != 0) args += fmt::format(",\"message\":{}", e.seq);
      if (k != TraceKind::pool_task) args += fmt::format(",\"communicator\":{}", e.comm);
      if ((e.flags & transport::kTraceFailed) != 0) args += ",\"failed\":true";
      buf += fmt::format(",\n{{\"ph\":\"X\",\"name\":\"{}\",\"cat\":\"{}\",\"pid\":1,\"tid\":{},\"ts\":{},\"dur\":{},\"args\":{{{}}}}}",
                         json_escape(event_name(e)), category(k), r + 1, micros(e.begin_ns, origin),
                         micros(drawn_end(e), e.begin_ns), args);
      ++sum.events;
      if ((k == TraceKind::recv || k == TraceKind::recv_done) && e.seq != 0 && e.peer >= 0 && e.peer < n) {
        auto it = sends.find(flow_key(e.peer, r, n, e.seq));
        if (it != sends.end()) {
          ++sum.flows;
          std::uint64_t end = e.begin_ns;  // an instant: the flow ends on it
          if (k == TraceKind::recv) {
            end = e.end_ns >= e.begin_ns + 2 ? e.end_ns - 1 : e.begin_ns;
            buf += fmt::format(",\n{{\"ph\":\"X\",\"name\":\"message received\",\"cat\":\"p2p\",\"pid\":1,\"tid\":{},\"ts\":{},\"dur\":0.001,\"args\":{{\"rank\":{},\"peer\":{},\"message\":{}}}}}",
                               r + 1, micros(end, origin), r, e.peer, e.seq);
          }
          flows.push_back(Flow{e.peer + 1, it->second, r + 1, end});
        }
      }
      flush(false);
    }
    if (static_cast<std::size_t>(r) < job.runs.size()) {
      const RankRun& run = job.runs[static_cast<std::size_t>(r)];
      if (run.end_ns != 0) {
        buf += fmt::format(",\n{{\"ph\":\"i\",\"s\":\"t\",\"name\":\"{}\",\"cat\":\"process\",\"pid\":1,\"tid\":{},\"ts\":{},\"args\":{{\"rank\":{}}}}}",
                           json_escape(run.exit), r + 1, micros(run.end_ns, origin), r);
        ++sum.events;
      }
    }
  }
  std::uint64_t id = 0;
  for (const Flow& f : flows) {
    ++id;
    buf += fmt::format(",\n{{\"ph\":\"s\",\"name\":\"message\",\"cat\":\"p2p\",\"id\":{},\"pid\":1,\"tid\":{},\"ts\":{}}}",
                       id, f.from_tid, micros(f.from_ns, origin));
    buf += fmt::format(",\n{{\"ph\":\"f\",\"bp\":\"e\",\"name\":\"message\",\"cat\":\"p2p\",\"id\":{},\"pid\":1,\"tid\":{},\"ts\":{}}}",
                       id, f.to_tid, micros(f.to_ns, origin));
    flush(false);
  }
  buf += "\n]}\n";
  flush(true);
  return sum;
}

TraceSummary write_trace(const std::string& path, std::span<std::byte> trace_area, const TraceJob& job) {
  platform::FileDescriptor fd = platform::open_file(path, O_WRONLY | O_CREAT | O_TRUNC);
  bool ok = true;
  TraceSummary sum = trace_json(trace_area, job, [&](std::string_view piece) {
    if (ok && !platform::write_all(fd.get(), piece)) ok = false;
  });
  if (!ok) throw std::system_error(errno, std::generic_category(), fmt::format("write {}", path));
  return sum;
}

}  // namespace cohort::launcher
