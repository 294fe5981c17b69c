"""patterns suite: the multiprocessing layer against Python's multiprocessing (2 workers).
Rows (BENCHMARKS.md): pool_map_chunk1, pool_map_auto (tasks/s, np = workers), spawn_join_100 (ms,
np = 100), cpu_bound_speedup (ratio, np = workers); the queue and pipe rows come from
_patterns_queue.py (H4's Queue/Pipe rows). Each figure is the median of the program's own repeats, and
the programs alternate A B A B.
"""
from __future__ import annotations

import importlib
import os
import re
import sys

from harness import ROOT, RunError, alternate, median, row, run_command

SUITE = "patterns"
WORKERS = 2
PY = os.path.join(ROOT, "bench", "pool", "pool_py.py")


def _value(output: str, name: str) -> float:
    m = re.search(rf"{name}=([0-9.]+)", output)
    if not m:
        raise RunError(f"no {name}= line in: {output[-200:]}")
    return float(m.group(1))


def _measure(ctx, bench: str, np: int, unit: str, name: str, cohort_argv, python_argv,
             repeats: int, machine_argv=None) -> list[dict]:
    variants = {
        "cohort": lambda: _value(run_command(cohort_argv, timeout=120, capture=True).stdout, name),
        "python": lambda: _value(run_command(python_argv, timeout=300, capture=True).stdout, name),
    }
    if machine_argv:  # the machine alone, in the same rounds: a note, not a row
        variants["machine"] = lambda: _value(run_command(machine_argv, timeout=120, capture=True).stdout, name)
    samples = alternate(variants, repeats, warmup=0, ctx=ctx)
    machine = samples.pop("machine", [])
    if machine:
        ctx.note(f"{bench}: two plain forked processes doing the same work (bench/pool/parallel_ceiling.cpp) "
                 f"got {median(machine):.2f} in the same rounds (samples {', '.join(f'{x:.2f}' for x in machine)}): "
                 "what this machine gave two CPU-bound processes")
    return [row(SUITE, bench, impl, np, 0, median(v), unit) for impl, v in samples.items() if v]


def run(ctx) -> list[dict]:
    rows: list[dict] = []
    bench = ctx.bench_bin("pool_bench")
    outer = ctx.repeats(5, 2)
    inner = "5" if not ctx.quick else "3"
    n = "100000"
    for label, chunk in (("pool_map_chunk1", "1"), ("pool_map_auto", "0")):
        rows += _measure(ctx, label, WORKERS, "tasks/s", "tasks_per_s",
                         ctx.cohortrun(WORKERS, [bench, "map", n, chunk, inner]),
                         [sys.executable, PY, "map", n, chunk, inner, str(WORKERS)], outer)
    rows += _measure(ctx, "spawn_join_100", 100, "ms", "ms", [bench, "spawn", "100", inner],
                     [sys.executable, PY, "spawn", "100", inner], outer)
    # cpu_bound_speedup: each program runs rounds of "the 8 tasks alone, then the same 8 tasks on
    # 2 workers" and prints the median of its rounds' ratios; its workers exist before the first
    # timed round (pool_bench and parallel_ceiling also run one uncounted warm-up round). A C++
    # round is ~12 ms, so a ms-scale scheduling hiccup decides a round: Cohort and the plain
    # processes run 15 rounds (25 without --quick), the same for both. A Python round is ~1.5 s
    # (each task takes ~150x longer), so 3 rounds (5) give it the same median-of-rounds statistic.
    cpu_rounds = str(ctx.repeats(25, 15))
    rows += _measure(ctx, "cpu_bound_speedup", WORKERS, "ratio", "speedup",
                     ctx.cohortrun(WORKERS, [bench, "cpu", cpu_rounds]),
                     [sys.executable, PY, "cpu", str(ctx.repeats(5, 3)), str(WORKERS)],
                     ctx.repeats(3, 1),
                     machine_argv=[ctx.bench_bin("parallel_ceiling"), cpu_rounds]
                     if os.path.exists(ctx.bench_bin("parallel_ceiling")) else None)
    # Queue and pipe rows live in their own module (a leading underscore keeps the harness from
    # running it as a suite of its own).
    try:
        extra = importlib.import_module("suites._patterns_queue")
    except ImportError:
        extra = None
    if extra is not None and hasattr(extra, "run"):
        rows += extra.run(ctx)
    return rows
