"""patterns_queue suite: Cohort's Queue and Pipe next to Python's multiprocessing doing the same
work (bench/patterns/queue_mp.py), alternating A B A B. Rows (BENCHMARKS.md, suite `patterns`):
  queue_throughput       np=2  msg/s  1 producer -> 1 consumer, 8-byte items, maxsize 1024
  queue_throughput_2x2   np=4  msg/s  2 producers -> 2 consumers
  pipe_latency           np=2  us     ping-pong over a duplex pipe, one-way time, 8-byte items
The lead's bench/suites/patterns.py has the other `patterns` rows (pool_map, spawn...).
"""
from __future__ import annotations

import json
import os
import sys

from harness import ROOT, RunError, alternate, median, row, run_command

SUITE = "patterns"
MP_SCRIPT = os.path.join(ROOT, "bench", "patterns", "queue_mp.py")


def _value(argv: list[str], timeout: float) -> float:
    out = run_command(argv, timeout=timeout, capture=True).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            return float(json.loads(line)["value"])
    raise RunError(f"no JSON line from {' '.join(argv)}")


def run(ctx) -> list[dict]:
    rows: list[dict] = []
    repeats = ctx.repeats(7, 3)
    queue_bin = ctx.bench_bin("queue_cohort")
    pipe_bin = ctx.bench_bin("pipe_cohort")
    py = sys.executable or "python3"
    items = 2_000_000 if not ctx.quick else 500_000
    py_items = 200_000 if not ctx.quick else 50_000
    iters = 100_000 if not ctx.quick else 20_000
    py_iters = 20_000 if not ctx.quick else 5_000
    cases = [
        ("queue_throughput", 2, "msg/s",
         lambda: _value(ctx.cohortrun(2, [queue_bin, "throughput", str(items)]), 120),
         lambda: _value([py, MP_SCRIPT, "throughput", str(py_items)], 120)),
        ("queue_throughput_2x2", 4, "msg/s",
         lambda: _value(ctx.cohortrun(4, [queue_bin, "throughput_2x2", str(items)]), 120),
         lambda: _value([py, MP_SCRIPT, "throughput_2x2", str(py_items)], 120)),
        ("pipe_latency", 2, "us",
         lambda: _value(ctx.cohortrun(2, [pipe_bin, str(iters)]), 120),
         lambda: _value([py, MP_SCRIPT, "pipe_latency", str(py_iters)], 120)),
    ]
    for bench, np, unit, cohort_fn, python_fn in cases:
        samples = alternate({"cohort": cohort_fn, "python": python_fn}, repeats, ctx=ctx)
        for impl, values in samples.items():
            if values:
                rows.append(row(SUITE, bench, impl, np, 8, median(values), unit))
        if ctx.verbose:
            print(f"{bench}: {samples}", file=sys.stderr)
    return rows
