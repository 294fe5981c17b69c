"""Cohort benchmark harness (stdlib only).

`scripts/bench [--quick] [--json FILE] [SUITE...]` (see /work/shared/BENCHMARKS.md) imports this
package. A suite is a module bench/suites/<name>.py exposing

    def run(ctx: harness.Context) -> list[dict]

that returns rows made with `harness.row(...)`. Suites are discovered by file name, so adding
bench/suites/p2p.py is enough to get `scripts/bench p2p`. A suite written as a stand-alone
script may instead expose `run(build_dir, quick=False)` returning the same rows.

Helpers for suites:
  ctx.bin(name)                 path of build/bin/<name> (Cohort programs, cohortrun)
  ctx.bench_bin(name)           path of build/bin/bench/<name> (benchmark and MPI baseline programs)
  ctx.cohortrun(np, argv)       argv for `cohortrun -n np ...`
  ctx.mpirun(np, argv)          argv for Open MPI's mpirun (--oversubscribe), env from ctx.mpi_env
  ctx.mpi_available             mpirun and the MPI baselines exist
  build_mpi_program(ctx, src)   compiles one C++ source with mpicxx (when CMake did not)
  time_command(argv, ...)       wall-clock seconds of one run (raises RunError on failure/timeout)
  alternate({impl: fn}, n)      calls fn() for each impl in turn, A B A B ..., returns samples
  median(values)
  row(suite, bench, impl, np, bytes, value, unit)
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Open MPI refuses to run as root without these; harmless otherwise.
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}

IMPLS = ("cohort", "openmpi", "mpich", "python", "cohort-mpi")
UNITS = ("us", "ms", "GB/s", "msg/s", "tasks/s", "ratio", "MB")


class RunError(RuntimeError):
    """A benchmarked command failed or hung."""


@dataclass
class Context:
    build_dir: str
    quick: bool = False
    verbose: bool = False
    notes: list = field(default_factory=list)  # printed under the table (hangs, skips)

    @property
    def bin_dir(self) -> str:
        return os.path.join(self.build_dir, "bin")

    def bin(self, name: str) -> str:
        return os.path.join(self.bin_dir, name)

    def bench_bin(self, name: str) -> str:
        return os.path.join(self.bin_dir, "bench", name)

    @property
    def mpirun_path(self) -> str | None:
        return shutil.which("mpirun")

    @property
    def mpi_available(self) -> bool:
        return self.mpirun_path is not None

    @property
    def mpi_env(self) -> dict:
        env = dict(os.environ)
        env.update(MPI_ENV)
        return env

    def cohortrun(self, np: int, argv: list[str], extra: Iterable[str] = ()) -> list[str]:
        return [self.bin("cohortrun"), "-n", str(np), *extra, *argv]

    def mpirun(self, np: int, argv: list[str], extra: Iterable[str] = ()) -> list[str]:
        return [self.mpirun_path or "mpirun", "--oversubscribe", "-n", str(np), *extra, *argv]

    def repeats(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def row(suite: str, bench: str, impl: str, np: int, bytes: int, value: float, unit: str) -> dict:
    """One result line, in the format of BENCHMARKS.md."""
    assert impl in IMPLS, impl
    assert unit in UNITS, unit
    return {"suite": suite, "bench": bench, "impl": impl, "np": int(np), "bytes": int(bytes),
            "value": round(float(value), 6), "unit": unit}


def median(values: list[float]) -> float:
    return statistics.median(values)


def run_command(argv: list[str], env: dict | None = None, timeout: float = 60.0,
                capture: bool = False) -> subprocess.CompletedProcess:
    """Runs argv; raises RunError when it fails or runs longer than `timeout` seconds (it is
    then killed with its process group)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise RunError(f"hung (killed after {timeout:g} s): {' '.join(argv)}")
    if proc.returncode != 0:
        raise RunError(f"exit {proc.returncode}: {' '.join(argv)}: {(err or '').strip()[:300]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def time_command(argv: list[str], env: dict | None = None, timeout: float = 60.0) -> float:
    """Wall-clock seconds of one run of argv (output discarded)."""
    start = time.perf_counter()
    run_command(argv, env=env, timeout=timeout)
    return time.perf_counter() - start


def alternate(variants: dict[str, Callable[[], float]], repeats: int, warmup: int = 1,
              ctx: Context | None = None) -> dict[str, list[float]]:
    """Calls each variant in turn (A B A B ...) `repeats` times after `warmup` rounds, so that
    machine drift hits every variant alike. A variant that raises RunError loses that sample (and
    the error goes to ctx.notes); a variant that never succeeds has an empty list."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    failures: dict[str, list[str]] = {name: [] for name in variants}
    for i in range(warmup + repeats):
        for name, fn in variants.items():
            try:
                value = fn()
            except RunError as e:
                failures[name].append(str(e))
                continue
            if i >= warmup:
                samples[name].append(value)
    if ctx is not None:
        for name, errs in failures.items():
            if errs:
                ctx.note(f"{name}: {len(errs)} of {warmup + repeats} runs failed, e.g. {errs[0]}")
    return samples


def build_mpi_program(ctx: Context, source: str, name: str | None = None) -> str:
    """Compiles `source` (relative to the repository or absolute) with mpicxx -O2 into
    build/bin/bench/<name> unless CMake already built it there. Returns the binary's path."""
    name = name or os.path.splitext(os.path.basename(source))[0]
    out = ctx.bench_bin(name)
    src = source if os.path.isabs(source) else os.path.join(ROOT, source)
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    run_command(["mpicxx", "-O2", "-std=c++20", "-o", out, src], timeout=300)
    return out


def build(quick: bool = False) -> str:
    """Builds the project (scripts/build) and returns the build directory."""
    proc = subprocess.run([os.path.join(ROOT, "scripts", "build")], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit("scripts/bench: scripts/build failed")
    return proc.stdout.strip().splitlines()[-1]
