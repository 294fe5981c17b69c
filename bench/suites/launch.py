"""launch suite: starting a job. Rows (BENCHMARKS.md):
  launch_true   np = ranks: `cohortrun -n N /bin/true` vs `mpirun -n N /bin/true` (ms)
  launch_hello  np = ranks: cohortrun + launch_hello_cohort vs mpirun + launch_hello_mpi (ms)
  rss_hello     np = ranks: peak resident memory per rank of those hellos (MB, mean over ranks)
"""
from __future__ import annotations

import os
import re

from harness import RunError, alternate, build_mpi_program, median, row, run_command, time_command

SUITE = "launch"
TIMEOUT_S = 10.0  # a run that hangs is killed and dropped (and counted in the notes)
# Open MPI 4.1's mpirun forks the ranks from 4 helper threads by default; with many fast-exiting
# ranks (`mpirun -n 32 /bin/true`) it then hangs in most runs on this machine. Launching from the
# main thread (odls_base_max_threads=0) never hung in our tries, so the baseline uses it.
MPIRUN_EXTRA = ["--mca", "odls_base_max_threads", "0"]


def _rss_mb(output: str) -> float:
    values = [int(v) for v in re.findall(r"rss_kib=(\d+)", output)]
    if not values:
        raise RunError("no rss_kib line in the hello output")
    return sum(values) / len(values) / 1024.0


def _rows(bench: str, np: int, samples: dict, unit: str, scale: float = 1.0) -> list[dict]:
    out = []
    for impl, values in samples.items():
        if values:
            out.append(row(SUITE, bench, impl, np, 0, median(values) * scale, unit))
    return out


def run(ctx) -> list[dict]:
    rows: list[dict] = []
    repeats = ctx.repeats(15, 5)
    mpi = ctx.mpi_available
    if not mpi:
        ctx.note("launch: mpirun not found, Cohort figures only")
    mpi_env = ctx.mpi_env

    # launch_true: the launchers alone.
    for np in (1, 8, 32):
        variants = {"cohort": lambda np=np: time_command(ctx.cohortrun(np, ["/bin/true"]), timeout=TIMEOUT_S)}
        if mpi:
            variants["openmpi"] = lambda np=np: time_command(ctx.mpirun(np, ["/bin/true"], MPIRUN_EXTRA), env=mpi_env,
                                                             timeout=TIMEOUT_S)
        # The floor: a bare fork+exec loop (bench/launch/fork_exec.cpp), timed in the same rounds.
        floor = ctx.bench_bin("launch_fork_exec")
        if os.path.exists(floor):
            variants["floor"] = lambda np=np: time_command([floor, str(np), "/bin/true"], timeout=TIMEOUT_S)
        samples = alternate(variants, repeats, ctx=ctx)
        floor_samples = samples.pop("floor", [])
        rows += _rows("launch_true", np, samples, "ms", 1000.0)
        if floor_samples:
            f = median(floor_samples) * 1000.0
            parts = [f"launch_true np={np}: a bare fork+exec loop of {np} /bin/true takes {f:.2f} ms here"]
            for impl in ("cohort", "openmpi"):
                if samples.get(impl):
                    parts.append(f"{impl} = {median(samples[impl]) * 1000.0 / f:.2f}x that")
            if samples.get("openmpi"):
                parts.append(f"so the best any launcher could reach is {f / (median(samples['openmpi']) * 1000.0):.3f} of mpirun")
            ctx.note("; ".join(parts))

    # launch_hello and rss_hello: a hello world that initialises the runtime.
    cohort_hello = ctx.bench_bin("launch_hello_cohort")
    mpi_hello = None
    if mpi:
        try:
            mpi_hello = ctx.bench_bin("launch_hello_mpi")
            if not os.path.exists(mpi_hello):
                mpi_hello = build_mpi_program(ctx, "bench/launch/hello_mpi.cpp", "launch_hello_mpi")
        except RunError as e:
            ctx.note(f"launch: cannot build the MPI hello: {e}")
            mpi_hello = None
    for np in (1, 8, 32):
        rss: dict[str, list[float]] = {"cohort": [], "openmpi": []}

        def cohort_run(np=np):
            import time
            t0 = time.perf_counter()
            p = run_command(ctx.cohortrun(np, [cohort_hello]), timeout=TIMEOUT_S, capture=True)
            elapsed = time.perf_counter() - t0
            rss["cohort"].append(_rss_mb(p.stdout))
            return elapsed

        variants = {"cohort": cohort_run}
        if mpi_hello:
            def mpi_run(np=np):
                import time
                t0 = time.perf_counter()
                p = run_command(ctx.mpirun(np, [mpi_hello], MPIRUN_EXTRA), env=mpi_env, timeout=TIMEOUT_S, capture=True)
                elapsed = time.perf_counter() - t0
                rss["openmpi"].append(_rss_mb(p.stdout))
                return elapsed
            variants["openmpi"] = mpi_run
        rows += _rows("launch_hello", np, alternate(variants, repeats, ctx=ctx), "ms", 1000.0)
        rows += _rows("rss_hello", np, {k: v for k, v in rss.items() if v}, "MB")
    return rows
