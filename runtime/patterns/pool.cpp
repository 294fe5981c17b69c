// The engine behind pool_map & co: a shared chunk counter, per-rank claim records, result frames
// to the root over a private communicator, dead-worker handling and the progress bar.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "cohort/pool.hpp"
#include "cohort/shared.hpp"
#include "runtime/patterns/pool_frames.hpp"
#include "runtime/platform/process.hpp"
#include "runtime/runtime.hpp"
#include "runtime/transport/waiter.hpp"

namespace cohort::detail {
namespace {

constexpr Tag kChunkTag{1};
constexpr Tag kDoneTag{2};
constexpr Tag kEndTag{3};
constexpr Tag kAssignTag{4};  // dispatch mode: the root hands a worker its next chunk
constexpr int kAssignedAhead = 2;  // dispatch mode: chunks a worker holds (one computing, one next)

/// Written by its rank only; read by the root when the rank dies.
struct alignas(64) Claim {
  std::atomic<std::uint64_t> generation;  // the call it belongs to (+1; 0: none)
  std::atomic<std::uint64_t> first;
  std::atomic<std::uint64_t> last;
};

/// Shared per communicator: two chunk counters used by alternate calls (the root resets the one
/// the next call uses while every worker is provably past it), then one claim per rank.
struct alignas(64) PoolShared {
  std::atomic<std::uint64_t> next[2];
};

struct CachedPool {
  std::optional<Communicator> comm;  // private message space for pool traffic
  PoolShared* shared = nullptr;
  Claim* claims = nullptr;
  std::uint64_t calls = 0;
};

std::mutex g_cache_mutex;
std::map<std::uint32_t, CachedPool> g_cache;  // by the user communicator's context

void init_pool_shared(std::span<std::byte> block, const void*) {
  new (block.data()) PoolShared{};
}

class ProgressBar {
 public:
  ProgressBar(std::size_t total, bool enabled)
      : total_(total), enabled_(enabled), tty_(::isatty(STDERR_FILENO) == 1),
        start_(Clock::now()), last_(start_) {}

  void update(std::size_t done, bool final = false) {
    if (!enabled_) return;
    auto now = Clock::now();
    auto since = now - last_;
    if (!final && since < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(1))) return;
    if (!final && done == last_done_) return;
    last_ = now;
    last_done_ = done;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    int pct = total_ == 0 ? 100 : static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total_));
    if (tty_) {
      constexpr int kWidth = 30;
      int filled = pct * kWidth / 100;
      std::string bar(static_cast<std::size_t>(filled), '=');
      if (filled < kWidth) bar += '>';
      bar.resize(kWidth, ' ');
      std::fprintf(stderr, "\r[%s] %zu/%zu %3d%% %.0f items/s ETA %.0fs%s", bar.c_str(), done,
                   total_, pct, rate, eta, final ? "\n" : "");
    } else {
      std::fprintf(stderr, "pool: %zu/%zu items (%d%%), %.0f items/s, ETA %.0f s\n", done, total_,
                   pct, rate, eta);
    }
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::size_t total_;
  bool enabled_;
  bool tty_;
  Clock::time_point start_, last_;
  std::size_t last_done_ = SIZE_MAX;
};

}  // namespace

struct PoolContext {
  PoolContext(Communicator c, PoolShared* s, Claim* cl, std::uint64_t g, std::size_t n,
              std::size_t ch, int r)
      : comm(std::move(c)), shared(s), claims(cl), generation(g), items(n), chunk(ch), root(r) {}
  Communicator comm;  // the private one
  PoolShared* shared;
  Claim* claims;
  std::uint64_t generation;  // this call's number (1, 2, ...)
  std::size_t items;
  std::size_t chunk;
  int root;
  // Root only:
  std::vector<char> covered;
  std::size_t covered_count = 0;
  std::vector<char> finished;  // per rank: done, or dead and handled
  int unfinished = 0;
  bool root_claims_done = false;  // the counter is exhausted for the root too
  // Dispatch mode (no job segment shared by every rank: the MPI backend across nodes): the root
  // owns the counter and hands chunks out by message, kAssignedAhead per worker, each result
  // frame answered with the next chunk, and exactly one "none" (first == last == items) once the
  // worker holds nothing, so that no message is left over for the next call.
  bool dispatch = false;
  std::uint64_t next = 0;        // root: the next unassigned item
  std::vector<int> assigned;     // root: chunks a worker holds, per rank
  std::vector<char> none_sent;   // root: per rank

  /// Root, dispatch mode: gives worker `w` its next chunk, or its one "none".
  void assign(int w) {
    auto wi = static_cast<std::size_t>(w);
    std::array<std::uint64_t, 2> range = {items, items};
    if (next < items) {
      range[0] = next;
      range[1] = std::min<std::uint64_t>(next + chunk, items);
      next = range[1];
      ++assigned[wi];
    } else if (assigned[wi] != 0 || none_sent[wi] != 0) {
      return;
    } else {
      none_sent[wi] = 1;
    }
    comm.send(range, w, kAssignTag);
  }
  std::optional<ProgressBar> bar;
  // cohortrun --trace/--stats: the chunk this rank is computing (claimed, not yet handed in).
  std::uint64_t task_begin_ns = 0;
  std::size_t task_items = 0;

  /// Ends the open task, if any: a `pool task` event and the rank's pool counters.
  void end_task() noexcept {
    if (task_items == 0) return;
    const transport::RankTrace& t = comm.impl().runtime().trace();
    std::uint64_t end = transport::trace_clock_ns();
    transport::RankTrace::add(t.stats().pool_chunks, 1);
    transport::RankTrace::add(t.stats().pool_items, task_items);
    transport::RankTrace::add(t.stats().pool_busy_ns, end - task_begin_ns);
    if (t.events_on()) {
      t.record(transport::TraceEvent{task_begin_ns, end, task_items, 0, -1, -1, comm.impl().context(),
                                     static_cast<std::uint16_t>(transport::TraceKind::pool_task), 0, 0});
    }
    task_items = 0;
  }

  [[nodiscard]] std::atomic<std::uint64_t>& counter() const {
    return shared->next[generation % 2];
  }
  [[nodiscard]] const transport::Segment& segment() const {
    return comm.impl().runtime().segment();
  }
  [[nodiscard]] int world_rank(int r) const { return comm.impl().world_rank(r); }
};

PoolRun::PoolRun(Communicator& comm, std::size_t items, const PoolOptions& options)
    : options_(options), is_root_(comm.rank() == options.root) {
  if (options.root < 0 || options.root >= comm.size()) {
    throw InvalidArgument(fmt::format("pool: root {} is not a rank of a communicator of {}",
                                      options.root, comm.size()));
  }
  CachedPool* cached = nullptr;
  {
    std::lock_guard lock(g_cache_mutex);
    cached = &g_cache[comm.impl().context()];
  }
  const bool dispatch = !comm.impl().runtime().segment_shared();
  if (!cached->comm) {
    // First pool call on this communicator (collective, so on every rank in the same order).
    cached->comm = comm.dup();
  }
  if (!dispatch && cached->shared == nullptr) {
    std::span<std::byte> block =
        attach_shared(*cached->comm, sizeof(PoolShared), 64, &init_pool_shared, nullptr);
    cached->shared = reinterpret_cast<PoolShared*>(block.data());
    std::span<std::byte> claims = attach_shared(
        *cached->comm, sizeof(Claim) * static_cast<std::size_t>(comm.size()), 64, nullptr, nullptr);
    cached->claims = reinterpret_cast<Claim*>(claims.data());
  }
  ++cached->calls;
  const std::size_t ranks = static_cast<std::size_t>(comm.size());
  std::size_t chunk = options.chunk_size;
  if (chunk == 0) chunk = std::clamp<std::size_t>(items / (ranks * 8), 1, 1 << 16);
  ctx_ = std::make_unique<PoolContext>(*cached->comm, cached->shared, cached->claims,
                                       cached->calls, items, chunk, options.root);
  if (is_root_) {
    ctx_->covered.assign(items, 0);
    ctx_->finished.assign(ranks, 0);
    ctx_->finished[static_cast<std::size_t>(options.root)] = 1;
    ctx_->unfinished = comm.size() - 1;
    ctx_->bar.emplace(items, options.progress);
  }
  if (dispatch) {
    ctx_->dispatch = true;
    if (is_root_) {
      ctx_->assigned.assign(ranks, 0);
      ctx_->none_sent.assign(ranks, 0);
      for (int ahead = 0; ahead < kAssignedAhead; ++ahead) {
        for (int w = 0; w < comm.size(); ++w) {
          if (w != options.root) ctx_->assign(w);
        }
      }
    }
  }
}

PoolRun::~PoolRun() = default;

std::optional<std::pair<std::size_t, std::size_t>> PoolRun::claim() {
  PoolContext& c = *ctx_;
  // A task lasts from its claim to the worker's send_chunk, or to the root's next claim.
  const bool traced = c.comm.impl().runtime().trace().on();
  if (traced) [[unlikely]] c.end_task();
  if (c.dispatch) {
    std::array<std::uint64_t, 2> range = {c.items, c.items};
    if (is_root_) {
      if (c.next < c.items) {
        range[0] = c.next;
        range[1] = std::min<std::uint64_t>(c.next + c.chunk, c.items);
        c.next = range[1];
      }
    } else {
      c.comm.recv(range, c.root, kAssignTag);
      if (range[0] > range[1] || range[1] > c.items) throw DeserializeError("pool: bad chunk assignment");
    }
    if (range[0] == range[1]) {
      if (is_root_) c.root_claims_done = true;
      else c.comm.send(std::uint64_t{1}, c.root, kDoneTag);
      return std::nullopt;
    }
    if (traced) [[unlikely]] {
      c.task_begin_ns = transport::trace_clock_ns();
      c.task_items = range[1] - range[0];
    }
    return std::pair<std::size_t, std::size_t>(range[0], range[1]);
  }
  Claim& mine = c.claims[c.comm.rank()];
  std::uint64_t first = c.counter().fetch_add(c.chunk, std::memory_order_relaxed);
  if (first >= c.items) {
    mine.generation.store(0, std::memory_order_release);
    if (is_root_) c.root_claims_done = true;
    if (!is_root_) {
      std::uint64_t done = 1;
      c.comm.send(done, c.root, kDoneTag);
    }
    return std::nullopt;
  }
  std::uint64_t last = std::min<std::uint64_t>(first + c.chunk, c.items);
  // Record the claim before working on it: if this rank dies, the root knows which items it held.
  mine.generation.store(0, std::memory_order_relaxed);
  mine.first.store(first, std::memory_order_relaxed);
  mine.last.store(last, std::memory_order_relaxed);
  mine.generation.store(c.generation, std::memory_order_release);
  if (traced) [[unlikely]] {
    c.task_begin_ns = transport::trace_clock_ns();
    c.task_items = last - first;
  }
  return std::pair<std::size_t, std::size_t>(first, last);
}

void PoolRun::send_chunk(std::size_t first, std::size_t last) {
  ctx_->end_task();
  std::vector<std::byte>& frame = writer_.bytes();
  std::uint64_t header[2] = {first, last};
  frame.insert(frame.begin(), reinterpret_cast<const std::byte*>(header),
               reinterpret_cast<const std::byte*>(header) + sizeof header);
  ctx_->comm.send(frame, ctx_->root, kChunkTag);
}

void PoolRun::computed_locally(std::size_t first, std::size_t last) {
  PoolContext& c = *ctx_;
  for (std::size_t i = first; i < last; ++i) {
    if (c.covered[i] != 0) {
      throw Error(fmt::format("pool: item {} delivered twice (internal error)", i));
    }
    c.covered[i] = 1;
  }
  c.covered_count += last - first;
}

bool PoolRun::complete() const noexcept {
  return ctx_->root_claims_done && ctx_->unfinished == 0 && ctx_->covered_count == ctx_->items;
}

PoolRun::Event PoolRun::next_event(bool block) {
  PoolContext& c = *ctx_;
  Event ev;
  for (;;) {
    // 1. Messages from workers.
    while (auto st = c.comm.iprobe(any_source, any_tag)) {
      if (st->tag == kDoneTag) {
        std::uint64_t done = 0;
        c.comm.recv(done, st->source, kDoneTag);
        if (!c.finished[static_cast<std::size_t>(st->source)]) {
          c.finished[static_cast<std::size_t>(st->source)] = 1;
          --c.unfinished;
        }
        continue;
      }
      c.comm.recv(ev.frame, st->source, st->tag);
      ChunkHeader header = parse_chunk_header(ev.frame, c.items);  // pool_frames.hpp (fuzzed)
      ev.kind = Event::chunk;
      ev.first = header.first;
      ev.last = header.last;
      ev.offset = header.offset;
      computed_locally(ev.first, ev.last);
      if (c.dispatch) {
        --c.assigned[static_cast<std::size_t>(st->source)];
        c.assign(st->source);
      }
      return ev;
    }
    if (c.dispatch) {  // no shared liveness to watch: MPI ends the job when a rank dies
      if (!block || complete()) return ev;
      (void)c.comm.probe(any_source, any_tag);
      continue;
    }
    // 2. Workers that died before saying they were done.
    for (int r = 0; r < c.comm.size(); ++r) {
      if (c.finished[static_cast<std::size_t>(r)] || c.segment().alive(c.world_rank(r))) continue;
      // Its last messages may have arrived after the probe above: look once more.
      if (c.comm.iprobe(r, any_tag)) break;
      c.finished[static_cast<std::size_t>(r)] = 1;
      --c.unfinished;
      const Claim& claim = c.claims[r];
      if (claim.generation.load(std::memory_order_acquire) != c.generation) continue;
      std::size_t first = claim.first.load(std::memory_order_relaxed);
      std::size_t last = claim.last.load(std::memory_order_relaxed);
      if (first >= last || last > c.items || c.covered[first]) continue;
      const transport::RankSlot& slot = c.segment().slot(c.world_rank(r));
      std::string how = "left the pool";
      if (slot.state.load() == static_cast<std::uint32_t>(transport::RankState::exited)) {
        int st = slot.exit_status.load();
        how = WIFSIGNALED(st) ? fmt::format("was killed by {}", platform::signal_name(WTERMSIG(st)))
                              : fmt::format("exited with code {}", WEXITSTATUS(st));
      }
      ev.kind = options_.retry_lost_items ? Event::rerun : Event::lost;
      ev.first = first;
      ev.last = last;
      ev.reason = fmt::format("pool worker rank {} {} while running this item", r, how);
      computed_locally(first, last);
      return ev;
    }
    // 3. Every worker accounted for: items nobody holds (a worker died between taking them from
    //    the counter and recording its claim) are run here.
    if (c.root_claims_done && c.unfinished == 0 && c.covered_count < c.items) {
      std::size_t first = 0;
      while (c.covered[first]) ++first;
      std::size_t last = first;
      while (last < c.items && !c.covered[last]) ++last;
      ev.kind = Event::rerun;
      ev.first = first;
      ev.last = last;
      computed_locally(first, last);
      return ev;
    }
    if (!block || complete()) return ev;  // none
    // 4. Sleep until a message arrives or a rank dies (its supervisor wakes every rank).
    transport::Waiter& waiter = c.comm.impl().runtime().waiter();
    auto ready = [&] {
      if (c.comm.iprobe(any_source, any_tag)) return true;
      for (int r = 0; r < c.comm.size(); ++r) {
        if (!c.finished[static_cast<std::size_t>(r)] && !c.segment().alive(c.world_rank(r))) return true;
      }
      return false;
    };
    waiter.wait(ready,
                transport::WaitFor{transport::WaitOp::recv, -1, kChunkTag.value(), c.comm.impl().context()},
                [] { return -1; }, [](int) {});
  }
}

void PoolRun::progress(std::size_t done) {
  if (ctx_->bar) ctx_->bar->update(done, done == ctx_->items && complete());
}

std::pair<std::string, std::vector<std::byte>> PoolRun::finish(std::string report,
                                                               std::vector<std::byte> results) {
  PoolContext& c = *ctx_;
  c.end_task();
  if (is_root_) {
    // Every worker is past this call's counter: reset the one the next call will use.
    if (c.shared != nullptr) c.shared->next[(c.generation + 1) % 2].store(0, std::memory_order_relaxed);
    std::vector<std::byte> end;
    auto len = static_cast<std::uint64_t>(report.size());
    auto* p = reinterpret_cast<const std::byte*>(&len);
    end.insert(end.end(), p, p + sizeof len);
    end.insert(end.end(), reinterpret_cast<const std::byte*>(report.data()),
               reinterpret_cast<const std::byte*>(report.data()) + report.size());
    if (options_.everywhere) end.insert(end.end(), results.begin(), results.end());
    for (int r = 0; r < c.comm.size(); ++r) {
      if (r != c.root && c.segment().alive(c.world_rank(r))) c.comm.send(end, r, kEndTag);
    }
    return {std::move(report), std::move(results)};
  }
  std::vector<std::byte> end;
  c.comm.recv(end, c.root, kEndTag);
  EndFrame f = parse_end_frame(end);  // pool_frames.hpp (fuzzed)
  return {std::move(f.report), std::vector<std::byte>(f.rest.begin(), f.rest.end())};
}

std::string pool_failure_report(const std::vector<std::pair<std::size_t, std::string>>& failures,
                                std::size_t items) {
  if (failures.empty()) return {};
  std::string out = fmt::format("pool: {} of {} items failed:", failures.size(), items);
  std::size_t shown = 0;
  for (const auto& [index, message] : failures) {
    if (++shown > 20) {
      out += fmt::format("\n  ... and {} more", failures.size() - 20);
      break;
    }
    out += fmt::format("\n  item {}: {}", index, message);
  }
  return out;
}

void throw_pool_error(PoolSummary&& summary) {
  throw PoolError(std::move(summary.failures), summary.report);
}

}  // namespace cohort::detail

namespace cohort {

Pool::Pool(int processes, SpawnOptions spawn)
    : processes_(processes > 0 ? processes : static_cast<int>(platform::current_affinity().size())),
      spawn_(spawn) {}

}  // namespace cohort
