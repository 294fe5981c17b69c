/// @file cohort/pool.hpp
/// Parallel map over the ranks of a communicator (Python's `Pool.map`, collectively), and a
/// `Pool` for ordinary programs that forks its workers.
///
/// Example (SPMD, under cohortrun or cohort::spawn; every rank calls it with the same inputs):
/// @code
///   std::vector<int> xs(100000);
///   std::iota(xs.begin(), xs.end(), 0);
///   std::vector<long> squares = cohort::pool_map(world, xs, [](int x) { return long(x) * x; });
///   // squares is filled at rank 0 (PoolOptions::everywhere for every rank), in input order.
///
///   cohort::PoolOptions o;  o.chunk_size = 1;  o.progress = true;
///   cohort::pool_imap_unordered(world, xs, work, [](std::size_t i, const long& r) { ... }, o);
///   auto sums = cohort::pool_starmap(world, pairs, [](int a, int b) { return a + b; });
///   auto outcomes = cohort::pool_map_outcomes(world, xs, may_throw);  // per-item value or error
/// @endcode
/// Example (an ordinary program):
/// @code
///   cohort::Pool pool(4);                                  // 4 worker processes per call
///   auto squares = pool.map(xs, [](int x) { return long(x) * x; });
///   auto answer = pool.apply_async([] { return 6 * 7; });  // a future-like handle
///   int v = answer.get();
/// @endcode
///
/// How it works: no function crosses address spaces (every rank runs the same program), items are
/// dealt out dynamically in chunks from a shared counter (automatic chunk size: about 8 chunks per
/// rank, or PoolOptions::chunk_size), results travel to the root by point-to-point messages on a
/// private communicator and are put back in input order. Every rank, the root included, works.
/// A task that throws does not stop the others: pool_map then throws cohort::PoolError listing
/// each failing index and its message (on every rank), pool_map_outcomes returns per-item results.
/// A worker that dies while the pool runs never hangs it: the items it was running are reported
/// failed ("rank 3 died (killed by SIGKILL) while running this item"), or re-run by the root with
/// PoolOptions::retry_lost_items; items it had not started are re-run. (Under cohortrun's default
/// policy a dead rank ends the whole job; under cohort::spawn the pool carries on.)
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/communicator.hpp"
#include "cohort/detail/copy.hpp"
#include "cohort/errors.hpp"
#include "cohort/serialization.hpp"
#include "cohort/spawn.hpp"

namespace cohort {

/// How a pool map runs.
struct PoolOptions {
  /// Items per chunk; 0 chooses automatically (about 8 chunks per rank).
  std::size_t chunk_size = 0;
  /// The rank that collects the results (and prints the progress bar).
  int root = 0;
  /// Return the results on every rank, not only at the root.
  bool everywhere = false;
  /// A progress bar on stderr at the root (count, rate, ETA; plain lines when not a terminal).
  bool progress = false;
  /// Re-run, on the root, the items a dying worker was running (default: report them failed).
  bool retry_lost_items = false;
};

/// One or more items failed. what() lists each failing index with its message.
class PoolError : public Error {
 public:
  PoolError(std::vector<std::pair<std::size_t, std::string>> failures, const std::string& what)
      : Error(what), failures_(std::move(failures)) {}
  /// (index, message) of each failed item, by index (complete at the root and with `everywhere`;
  /// elsewhere the message carries the summary).
  [[nodiscard]] const std::vector<std::pair<std::size_t, std::string>>& failures() const noexcept {
    return failures_;
  }

 private:
  std::vector<std::pair<std::size_t, std::string>> failures_;
};

/// The result of one item: a value, or the message of the exception it threw.
template <class R>
struct Outcome {
  std::optional<R> value;
  std::string error;
  [[nodiscard]] bool ok() const noexcept { return value.has_value(); }
};

namespace detail {

struct PoolContext;

/// Item encoding in result frames: [u8 ok][u32 bytes][payload] (payload: the value's bytes, or
/// its cereal/Boost encoding, or the error message).
class FrameWriter {
 public:
  void reset() { bytes_.clear(); }
  void put(const void* p, std::size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  template <class R>
  void put_value(const R& r) {
    if constexpr (RawValue<R>) {
      put_item(true, &r, sizeof(R));
    } else if constexpr (RawContainer<R>) {
      put_item(true, r.data(), r.size() * sizeof(typename R::value_type));
    } else {
      thread_local std::vector<std::byte> scratch;
      encode(r, scratch);
      put_item(true, scratch.data(), scratch.size());
    }
  }
  void put_error(const std::string& message) { put_item(false, message.data(), message.size()); }
  [[nodiscard]] std::vector<std::byte>& bytes() noexcept { return bytes_; }

 private:
  void put_item(bool ok, const void* p, std::size_t n) {
    std::uint8_t flag = ok ? 1 : 0;
    auto len = static_cast<std::uint32_t>(n);
    put(&flag, 1);
    put(&len, sizeof len);
    put(p, n);
  }
  std::vector<std::byte> bytes_;
};

class FrameReader {
 public:
  explicit FrameReader(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}
  template <class R>
  Outcome<R> get_outcome() {
    std::uint8_t flag = 0;
    std::uint32_t len = 0;
    get(&flag, 1);
    get(&len, sizeof len);
    need(len);
    std::span<const std::byte> payload = bytes_.subspan(pos_, len);
    pos_ += len;
    Outcome<R> out;
    if (flag == 0) {
      out.error.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
    } else if constexpr (RawValue<R>) {
      if (len != sizeof(R)) corrupt();
      R r;
      std::memcpy(&r, payload.data(), sizeof(R));
      out.value = std::move(r);
    } else if constexpr (RawContainer<R>) {
      using V = typename R::value_type;
      if (len % sizeof(V) != 0) corrupt();
      R r(len / sizeof(V), V{});
      copy_bytes(r.data(), payload.data(), len);
      out.value = std::move(r);
    } else {
      R r{};
      try {
        decode(payload, r);
      } catch (const std::exception& e) {
        throw DeserializeError(std::string("pool: a result could not be decoded: ") + e.what());
      }
      out.value = std::move(r);
    }
    return out;
  }
  /// Dense frames: `count` raw values back to back.
  template <class R>
  R get_raw() {
    R r;
    get(&r, sizeof(R));
    return r;
  }
  std::uint8_t get_mode() {
    std::uint8_t m = 0;
    get(&m, 1);
    if (m > 1) corrupt();  // kItemChunk or kDenseChunk
    return m;
  }
  /// Throws unless every byte was read (a frame longer than its items is corrupt).
  void expect_end() const {
    if (pos_ != bytes_.size()) corrupt();
  }

 private:
  void get(void* p, std::size_t n) {
    need(n);
    std::memcpy(p, bytes_.data() + pos_, n);
    pos_ += n;
  }
  void need(std::size_t n) const {
    if (bytes_.size() - pos_ < n) corrupt();
  }
  [[noreturn]] static void corrupt() { throw DeserializeError("pool: corrupt result frame"); }
  std::span<const std::byte> bytes_;
  std::size_t pos_ = 0;
};

/// Chunk frames start with a mode byte: every item succeeded and R is raw (the values follow
/// back to back), or per-item encoding.
inline constexpr std::uint8_t kDenseChunk = 1;
inline constexpr std::uint8_t kItemChunk = 0;

/// The non-template engine behind every pool function (runtime/patterns/pool.cpp). Collective:
/// every rank of the communicator constructs one per call, with the same item count.
class PoolRun {
 public:
  PoolRun(Communicator& comm, std::size_t items, const PoolOptions& options);
  ~PoolRun();
  PoolRun(const PoolRun&) = delete;
  PoolRun& operator=(const PoolRun&) = delete;

  [[nodiscard]] bool is_root() const noexcept { return is_root_; }

  /// Claims the next chunk [first, last) from the shared counter; nullopt when none is left
  /// (a worker then tells the root it is done).
  std::optional<std::pair<std::size_t, std::size_t>> claim();
  /// Worker: sends writer()'s items for the claimed chunk to the root.
  void send_chunk(std::size_t first, std::size_t last);
  /// Root: records that it computed [first, last) itself.
  void computed_locally(std::size_t first, std::size_t last);
  [[nodiscard]] FrameWriter& writer() noexcept { return writer_; }

  /// What the root learns: a worker's chunk (items [first, last) in `frame` from `offset`), a
  /// dead worker's unfinished chunk (`reason`), items nobody claimed (run them), or nothing.
  struct Event {
    enum Kind { none, chunk, lost, rerun } kind = none;
    std::size_t first = 0, last = 0, offset = 0;
    std::string reason;
    std::vector<std::byte> frame;
  };
  /// Root: the next event; waits for one when `block` (returns `none` only when complete()).
  Event next_event(bool block);
  /// Root: every item has a result or an error and every worker is done or gone.
  [[nodiscard]] bool complete() const noexcept;
  /// Root: updates the progress bar (items done).
  void progress(std::size_t done);

  /// Ends the call on every rank: the root sends `report` (empty: no failure) and `results`
  /// (with options.everywhere) to the workers; returns them everywhere.
  std::pair<std::string, std::vector<std::byte>> finish(std::string report,
                                                        std::vector<std::byte> results);

 private:
  std::unique_ptr<PoolContext> ctx_;
  PoolOptions options_;
  bool is_root_;
  FrameWriter writer_;
};

/// "3 of 100 items failed:\n  item 5: message\n ..." (at most 20 listed), or "" if none.
std::string pool_failure_report(const std::vector<std::pair<std::size_t, std::string>>& failures,
                                std::size_t items);

/// What a pool call ended with, on every rank.
struct PoolSummary {
  std::vector<std::pair<std::size_t, std::string>> failures;  // root, or everywhere
  std::string report;                                         // every rank; "" if none failed
};

/// Runs `compute(i)` for i in [0, n) over the ranks. At the root, `sink(i, Outcome<R>&&)` gets
/// each item once, as results arrive, or in input order when `ordered`. With options.everywhere,
/// `everywhere(std::vector<Outcome<R>>&&)` gets every outcome in order on the non-root ranks.
template <class R, class Compute, class Sink, class Everywhere>
PoolSummary pool_run(Communicator& comm, std::size_t n, Compute&& compute, Sink&& sink,
                     Everywhere&& everywhere, bool ordered, const PoolOptions& options) {
  check_transmittable<R>();
  PoolRun run(comm, n, options);
  auto outcome_of = [&](std::size_t i) {
    Outcome<R> o;
    try {
      o.value.emplace(compute(i));
    } catch (const std::exception& e) {
      o.error = e.what();
    } catch (...) {
      o.error = "exception of unknown type";
    }
    return o;
  };
  // A worker's chunk: dense while every item succeeds (raw R), else item by item.
  auto encode_chunk = [&](std::size_t first, std::size_t last, FrameWriter& w) {
    w.reset();
    if constexpr (RawValue<R>) {
      w.put(&kDenseChunk, 1);
      for (std::size_t i = first; i < last; ++i) {
        Outcome<R> o = outcome_of(i);
        if (o.ok()) {
          w.put(&*o.value, sizeof(R));
          continue;
        }
        // Switch to per-item encoding: re-encode what is already there.
        std::vector<std::byte> dense(w.bytes().begin() + 1, w.bytes().end());
        w.reset();
        w.put(&kItemChunk, 1);
        for (std::size_t k = 0; k < i - first; ++k) {
          R r;
          std::memcpy(&r, dense.data() + k * sizeof(R), sizeof(R));
          w.put_value<R>(r);
        }
        w.put_error(o.error);
        for (std::size_t j = i + 1; j < last; ++j) {
          Outcome<R> oj = outcome_of(j);
          if (oj.ok()) w.put_value<R>(*oj.value);
          else w.put_error(oj.error);
        }
        return;
      }
    } else {
      w.put(&kItemChunk, 1);
      for (std::size_t i = first; i < last; ++i) {
        Outcome<R> o = outcome_of(i);
        if (o.ok()) w.put_value<R>(*o.value);
        else w.put_error(o.error);
      }
    }
  };
  PoolSummary summary;
  std::vector<std::optional<Outcome<R>>> waiting;  // ordered: arrived ahead of their turn
  std::size_t next_in_order = 0, done = 0;
  FrameWriter results_writer;  // everywhere: outcomes in order, for the other ranks
  auto emit = [&](std::size_t i, Outcome<R>&& o) {
    if (!o.ok()) summary.failures.emplace_back(i, o.error);
    if (options.everywhere) {
      if (o.ok()) results_writer.put_value<R>(*o.value);
      else results_writer.put_error(o.error);
    }
    sink(i, std::move(o));
  };
  auto deliver = [&](std::size_t i, Outcome<R>&& o) {
    ++done;
    if (!ordered && !options.everywhere) {
      emit(i, std::move(o));
      return;
    }
    waiting[i] = std::move(o);
    while (next_in_order < n && waiting[next_in_order]) {
      emit(next_in_order, std::move(*waiting[next_in_order]));
      waiting[next_in_order].reset();
      ++next_in_order;
    }
  };
  auto deliver_frame = [&](std::span<const std::byte> frame, std::size_t first, std::size_t last) {
    FrameReader reader(frame);
    if (reader.get_mode() == kDenseChunk) {
      if constexpr (RawValue<R>) {
        for (std::size_t i = first; i < last; ++i) {
          Outcome<R> o;
          o.value.emplace(reader.template get_raw<R>());
          deliver(i, std::move(o));
        }
        reader.expect_end();
        return;
      } else {
        throw DeserializeError("pool: dense frame for a serialized result type");
      }
    }
    for (std::size_t i = first; i < last; ++i) deliver(i, reader.template get_outcome<R>());
    reader.expect_end();
  };
  auto absorb = [&](PoolRun::Event& ev) {
    if (ev.kind == PoolRun::Event::chunk) {
      deliver_frame(std::span<const std::byte>(ev.frame).subspan(ev.offset), ev.first, ev.last);
    } else if (ev.kind == PoolRun::Event::rerun ||
               (ev.kind == PoolRun::Event::lost && options.retry_lost_items)) {
      for (std::size_t i = ev.first; i < ev.last; ++i) deliver(i, outcome_of(i));
    } else if (ev.kind == PoolRun::Event::lost) {
      for (std::size_t i = ev.first; i < ev.last; ++i) {
        Outcome<R> o;
        o.error = ev.reason;
        deliver(i, std::move(o));
      }
    }
  };
  if (run.is_root() && (ordered || options.everywhere)) waiting.resize(n);
  // Every rank works; the root also takes in arriving results between its own chunks.
  while (auto range = run.claim()) {
    if (run.is_root()) {
      run.computed_locally(range->first, range->second);
      for (std::size_t i = range->first; i < range->second; ++i) deliver(i, outcome_of(i));
      for (PoolRun::Event ev = run.next_event(false); ev.kind != PoolRun::Event::none;
           ev = run.next_event(false)) {
        absorb(ev);
      }
      run.progress(done);
    } else {
      encode_chunk(range->first, range->second, run.writer());
      run.send_chunk(range->first, range->second);
    }
  }
  if (run.is_root()) {
    while (!run.complete()) {
      PoolRun::Event ev = run.next_event(true);
      absorb(ev);
      run.progress(done);
    }
    std::sort(summary.failures.begin(), summary.failures.end());
    summary.report = pool_failure_report(summary.failures, n);
  }
  auto [report, frame] = run.finish(summary.report, std::move(results_writer.bytes()));
  summary.report = std::move(report);
  if (options.everywhere && !run.is_root()) {
    FrameReader reader(frame);
    std::vector<Outcome<R>> all;
    all.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      all.push_back(reader.template get_outcome<R>());
      if (!all.back().ok()) summary.failures.emplace_back(i, all.back().error);
    }
    everywhere(std::move(all));
  }
  return summary;
}

template <class Fn, class In>
using pool_result_t = std::remove_cvref_t<std::invoke_result_t<Fn&, const In&>>;

template <class Fn, class Tuple>
using star_result_t = std::remove_cvref_t<decltype(std::apply(std::declval<Fn&>(), std::declval<const Tuple&>()))>;

[[noreturn]] void throw_pool_error(PoolSummary&& summary);

template <class R, class Compute>
std::vector<R> pool_collect(Communicator& comm, std::size_t n, Compute&& compute,
                            const PoolOptions& options) {
  std::vector<std::optional<R>> slots;
  if (comm.rank() == options.root) slots.resize(n);
  std::vector<R> out;
  PoolSummary summary = pool_run<R>(
      comm, n, std::forward<Compute>(compute),
      [&](std::size_t i, Outcome<R>&& o) {
        if (o.ok()) slots[i] = std::move(o.value);
      },
      [&](std::vector<Outcome<R>>&& all) {
        for (auto& o : all) {
          if (o.ok()) out.push_back(std::move(*o.value));
        }
      },
      false, options);
  if (!summary.report.empty()) throw_pool_error(std::move(summary));
  if (comm.rank() == options.root) {
    out.reserve(n);
    for (auto& s : slots) out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace detail

/// Applies `fn` to every input over the communicator's ranks; results in input order at the root
/// (every rank with options.everywhere; elsewhere an empty vector). Collective: every rank calls
/// it with the same inputs. Throws cohort::PoolError on every rank when items failed (after every
/// item ran).
template <class In, class Fn>
auto pool_map(Communicator& comm, const std::vector<In>& inputs, Fn fn,
              const PoolOptions& options = {}) {
  using R = detail::pool_result_t<Fn, In>;
  return detail::pool_collect<R>(comm, inputs.size(), [&](std::size_t i) { return fn(inputs[i]); },
                                 options);
}

/// pool_map over tuples, each unpacked into `fn`'s arguments (Pool.starmap).
template <class Tuple, class Fn>
auto pool_starmap(Communicator& comm, const std::vector<Tuple>& inputs, Fn fn,
                  const PoolOptions& options = {}) {
  using R = detail::star_result_t<Fn, Tuple>;
  return detail::pool_collect<R>(
      comm, inputs.size(), [&](std::size_t i) { return std::apply(fn, inputs[i]); }, options);
}

/// Per-item outcomes (value or error message) in input order, never throwing for failed items.
template <class In, class Fn>
auto pool_map_outcomes(Communicator& comm, const std::vector<In>& inputs, Fn fn,
                       const PoolOptions& options = {}) {
  using R = detail::pool_result_t<Fn, In>;
  std::vector<Outcome<R>> out;
  if (comm.rank() == options.root) out.resize(inputs.size());
  (void)detail::pool_run<R>(
      comm, inputs.size(), [&](std::size_t i) { return fn(inputs[i]); },
      [&](std::size_t i, Outcome<R>&& o) { out[i] = std::move(o); },
      [&](std::vector<Outcome<R>>&& all) { out = std::move(all); }, false, options);
  return out;
}

namespace detail {
template <class In, class Fn, class OnResult>
void pool_stream(Communicator& comm, const std::vector<In>& inputs, Fn& fn, OnResult& on_result,
                 bool ordered, const PoolOptions& options) {
  using R = pool_result_t<Fn, In>;
  PoolOptions o = options;
  o.everywhere = false;
  PoolSummary summary = pool_run<R>(
      comm, inputs.size(), [&](std::size_t i) { return fn(inputs[i]); },
      [&](std::size_t i, Outcome<R>&& r) {
        if (r.ok()) on_result(i, *r.value);
      },
      [](std::vector<Outcome<R>>&&) {}, ordered, o);
  if (!summary.report.empty()) throw_pool_error(std::move(summary));
}
}  // namespace detail

/// Streams results to `on_result(index, const R&)` at the root in input order as they become
/// available (Pool.imap). Failed items are skipped, then reported by a PoolError at the end.
template <class In, class Fn, class OnResult>
void pool_imap(Communicator& comm, const std::vector<In>& inputs, Fn fn, OnResult on_result,
               const PoolOptions& options = {}) {
  detail::pool_stream(comm, inputs, fn, on_result, true, options);
}

/// As pool_imap, in the order results arrive (Pool.imap_unordered).
template <class In, class Fn, class OnResult>
void pool_imap_unordered(Communicator& comm, const std::vector<In>& inputs, Fn fn,
                         OnResult on_result, const PoolOptions& options = {}) {
  detail::pool_stream(comm, inputs, fn, on_result, false, options);
}

/// A handle on a task started by Pool::apply_async (like multiprocessing's AsyncResult).
template <class R>
class AsyncResult {
 public:
  explicit AsyncResult(Job job) : job_(std::move(job)) {}
  /// Waits for the result; rethrows the task's failure as cohort::SpawnError.
  R get() { return job_.results<R>().front(); }
  /// True once the task has ended.
  [[nodiscard]] bool ready() { return job_.join(std::chrono::nanoseconds(0)); }
  /// Waits at most `timeout`; true if the task has ended.
  bool wait(std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) {
    return job_.join(timeout);
  }

 private:
  Job job_;
};

/// A pool of worker processes for an ordinary program (multiprocessing.Pool). Each map() forks
/// `processes` ranks (cohort::spawn) that run pool_map among themselves and hand the results
/// back; apply_async() forks one process per task.
class Pool {
 public:
  /// `processes` workers (default: the cores this process may use).
  explicit Pool(int processes = 0, SpawnOptions spawn = {});
  [[nodiscard]] int processes() const noexcept { return processes_; }

  /// Results in input order; throws cohort::PoolError when items failed.
  template <class In, class Fn>
  auto map(const std::vector<In>& inputs, Fn fn, PoolOptions options = {}) {
    using R = detail::pool_result_t<Fn, In>;
    options.root = 0;
    options.everywhere = false;
    Job job = spawn(
        processes_,
        [&](Communicator& comm) {
          auto outcomes = pool_map_outcomes(comm, inputs, fn, options);
          FrameWriter w;
          for (auto& o : outcomes) {
            if (o.ok()) w.put_value<R>(*o.value);
            else w.put_error(o.error);
          }
          return std::move(w.bytes());
        },
        spawn_);
    std::vector<std::byte> frame = std::move(job.results<std::vector<std::byte>>().front());
    detail::FrameReader reader(frame);
    detail::PoolSummary summary;
    std::vector<R> out;
    out.reserve(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      Outcome<R> o = reader.template get_outcome<R>();
      if (o.ok()) out.push_back(std::move(*o.value));
      else summary.failures.emplace_back(i, o.error);
    }
    if (!summary.failures.empty()) {
      summary.report = detail::pool_failure_report(summary.failures, inputs.size());
      detail::throw_pool_error(std::move(summary));
    }
    return out;
  }

  /// Runs `fn()` in a new process; get() returns its result.
  template <class Fn>
  auto apply_async(Fn fn) {
    using R = std::remove_cvref_t<std::invoke_result_t<Fn&>>;
    return AsyncResult<R>(spawn(1, std::move(fn), spawn_));
  }

 private:
  using FrameWriter = detail::FrameWriter;
  int processes_;
  SpawnOptions spawn_;
};

}  // namespace cohort
