// The record path of cohortrun --trace (runtime/transport/trace.hpp): the clock, one event, the
// counters of one message, a whole traced send's bookkeeping (two clock reads, counters, event),
// a traced isend's (an instant: one clock read) and a dropped event's (buffer full: no clock read).
#include <benchmark/benchmark.h>

#include <ctime>
#include <vector>

#include "runtime/transport/trace.hpp"

namespace {

using cohort::transport::RankTrace;
using cohort::transport::TraceEvent;
using cohort::transport::TraceKind;

constexpr std::uint64_t kEvents = 1 << 16;

struct Area {
  Area() : memory(cohort::transport::trace_area_bytes(2, kEvents) / 8 + 1) {
    cohort::transport::format_trace_area(span(), 2, kEvents, 0);
  }
  std::span<std::byte> span() { return {reinterpret_cast<std::byte*>(memory.data()), memory.size() * 8}; }
  std::vector<std::uint64_t> memory;
};

void BM_SteadyClock(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(cohort::transport::trace_clock_ns());
}
BENCHMARK(BM_SteadyClock);

void BM_ClockGettimeMonotonic(benchmark::State& state) {
  timespec ts{};
  for (auto _ : state) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(BM_ClockGettimeMonotonic);

// One event stored (the buffer is rewound when full, so every event is a real store).
void BM_RecordEvent(benchmark::State& state) {
  Area a;
  RankTrace t(a.span(), 0);
  std::uint64_t i = 0;
  for (auto _ : state) {
    t.record(TraceEvent{i, i + 1, 8, 1, 1, 0, 0, static_cast<std::uint16_t>(TraceKind::send), 0, 0});
    if (++i == kEvents) {
      i = 0;
      t.stats().events.store(0);
    }
  }
}
BENCHMARK(BM_RecordEvent);

// A traced send's bookkeeping: clock at the start, counters, clock at the end, event.
void BM_TracedSendBookkeeping(benchmark::State& state) {
  Area a;
  RankTrace t(a.span(), 0);
  std::uint32_t seq = 0;
  for (auto _ : state) {
    std::uint64_t begin = cohort::transport::trace_clock_ns();
    t.count_send(1, 8);
    ++seq;
    std::uint64_t end = cohort::transport::trace_clock_ns();
    t.record(TraceEvent{begin, end, 8, seq, 1, 0, 0, static_cast<std::uint16_t>(TraceKind::send), 0, 0});
    if (seq % kEvents == 0) t.stats().events.store(0);
  }
}
BENCHMARK(BM_TracedSendBookkeeping);

// A traced isend's bookkeeping: counters, one clock read (an instant), event.
void BM_TracedIsendBookkeeping(benchmark::State& state) {
  Area a;
  RankTrace t(a.span(), 0);
  std::uint32_t seq = 0;
  for (auto _ : state) {
    t.count_send(1, 8);
    ++seq;
    std::uint64_t now = cohort::transport::trace_clock_ns();
    t.record(TraceEvent{now, now, 8, seq, 1, 0, 0, static_cast<std::uint16_t>(TraceKind::isend), 0, 0});
    if (seq % kEvents == 0) t.stats().events.store(0);
  }
}
BENCHMARK(BM_TracedIsendBookkeeping);

// Once the buffer is full: counters, and the event only counted (no clock read).
void BM_TracedSendBufferFull(benchmark::State& state) {
  Area a;
  RankTrace t(a.span(), 0);
  t.stats().events.store(kEvents);
  for (auto _ : state) {
    t.count_send(1, 8);
    if (t.keeps_next()) {
      std::uint64_t now = cohort::transport::trace_clock_ns();
      t.record(TraceEvent{now, now, 8, 1, 1, 0, 0, static_cast<std::uint16_t>(TraceKind::send), 0, 0});
    } else {
      t.count_dropped();
    }
  }
}
BENCHMARK(BM_TracedSendBufferFull);

}  // namespace
