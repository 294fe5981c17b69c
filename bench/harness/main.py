"""scripts/bench entry point: suite discovery, the run, the table and the JSON lines."""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time

from . import ROOT, Context, build

SUITES_DIR = os.path.join(ROOT, "bench", "suites")
LOWER_IS_BETTER = {"us", "ms", "MB"}


def discover() -> list[str]:
    names = []
    for f in sorted(os.listdir(SUITES_DIR)):
        if f.endswith(".py") and not f.startswith("_"):
            names.append(f[:-3])
    return names


def call_suite(module, ctx: Context) -> list[dict]:
    """Calls module.run: run(ctx) for harness-style suites, or run(build_dir, quick=...) for
    suites written as stand-alone scripts that take the build directory."""
    params = list(inspect.signature(module.run).parameters)
    if params and params[0] == "ctx":
        return list(module.run(ctx))
    kwargs = {"quick": ctx.quick} if "quick" in params else {}
    return list(module.run(ctx.build_dir, **kwargs))


def print_table(rows: list[dict], notes: list[str]) -> None:
    # One line per (suite, bench, np, bytes): Cohort's median, each baseline's, and the ratio.
    groups: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        groups.setdefault((r["suite"], r["bench"], r["np"], r["bytes"]), {})[r["impl"]] = r
    header = f"{'suite':8} {'bench':28} {'np':>4} {'bytes':>9}  {'cohort':>12}  {'baseline':>22}  {'ratio':>8}"
    print(header)
    print("-" * len(header))
    for (suite, bench, np, nbytes), impls in groups.items():
        cohort = impls.get("cohort") or impls.get("cohort-mpi")
        baselines = [i for i in impls if i not in ("cohort", "cohort-mpi")] or [None]
        for base in baselines:
            b = impls.get(base) if base else None
            unit = (cohort or b)["unit"]
            c_txt = f"{cohort['value']:.4g} {unit}" if cohort else "-"
            b_txt = f"{b['value']:.4g} {unit} ({base})" if b else "-"
            ratio = ""
            if cohort and b and b["value"]:
                ratio = f"{cohort['value'] / b['value']:.3f}"
            print(f"{suite:8} {bench:28} {np:>4} {nbytes:>9}  {c_txt:>12}  {b_txt:>22}  {ratio:>8}")
    print("\nratio = Cohort / baseline (medians); lower is better for us, ms and MB, higher for "
          "GB/s, msg/s, tasks/s and ratio (except cereal_struct_over_8b, a slowdown: lower is better).")
    for n in notes:
        print(f"note: {n}")


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Runs Cohort and its baselines side by side (A B A B) and prints medians and "
                    "the ratio Cohort/baseline. Suites: " + ", ".join(available))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: a few minutes in all")
    parser.add_argument("--json", metavar="FILE", help="also write one JSON object per row to FILE")
    parser.add_argument("--build-dir", metavar="DIR", help="use this build directory (skip scripts/build)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("suites", nargs="*", metavar="SUITE", help="default: every suite")
    args = parser.parse_args(argv)
    suites = args.suites or available
    for s in suites:
        if s not in available:
            parser.error(f"unknown suite '{s}' (have: {', '.join(available)})")
    build_dir = args.build_dir or build(args.quick)
    ctx = Context(build_dir=build_dir, quick=args.quick, verbose=args.verbose)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    rows: list[dict] = []
    started = time.time()
    for s in suites:
        module = importlib.import_module(f"suites.{s}")
        t0 = time.time()
        print(f"== suite {s}", file=sys.stderr, flush=True)
        suite_rows = call_suite(module, ctx)
        rows.extend(suite_rows)
        print(f"== suite {s}: {len(suite_rows)} rows in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print(f"\nscripts/bench {' '.join(argv if argv is not None else sys.argv[1:])}  "
          f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cpus, "
          f"{time.time() - started:.0f} s)\n")
    print_table(rows, ctx.notes)
    if args.json:
        with open(args.json, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return 0
