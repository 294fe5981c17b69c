#!/usr/bin/env python3
"""Suite `backend`: the Cohort API on the MPI backend next to plain MPI, both under mpirun.

The same Cohort benchmark programs as suites `p2p` and `coll` (bench/p2p/p2p_cohort.cpp,
bench/coll/coll_cohort.cpp), built against Cohort's MPI backend (-DCOHORT_BACKEND=mpi, in
BUILD-mpi-bench/ next to the normal build), against the plain-MPI baselines (p2p_mpi, coll_mpi),
same mpirun options, alternating A B A B; medians of the repeats, impl `cohort-mpi` vs `openmpi`.

The targets (issue #7): 8 B latency <= 1.1x, 1 MiB bandwidth >= 1/1.05 of MPI's (ratio printed as
cohort-mpi / openmpi: >= 0.952), 8 B allreduce at np=2 <= 1.1x.

  python3 bench/suites/backend.py --build build [--quick] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

try:  # imported by the harness (bench/ on sys.path)
    from suites._osu_common import mpi_env, run_one
except ImportError:  # run as a script (bench/suites on sys.path)
    from _osu_common import mpi_env, run_one

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (program, bench, bytes, np, iterations)
CASES = [
    ("p2p", "latency", 8, 2, 200000),
    ("p2p", "latency", 64 << 10, 2, 5000),
    ("p2p", "latency", 1 << 20, 2, 300),
    ("p2p", "bandwidth", 8, 2, 2000),
    ("p2p", "bandwidth", 1 << 20, 2, 40),
    ("p2p", "latency_cereal_struct", 0, 2, 100000),
    ("coll", "allreduce", 8, 2, 40000),
    ("coll", "allreduce", 1 << 20, 2, 200),
    ("coll", "barrier", 0, 2, 40000),
    ("coll", "bcast", 8, 2, 40000),
]


def build_mpi_backend(build):
    """Configures and builds the benchmark programs against the MPI backend; returns the dir."""
    out = os.path.abspath(build.rstrip("/")) + "-mpi-bench"
    if not os.path.exists(os.path.join(out, "build.ninja")):
        subprocess.run(["cmake", "-S", ROOT, "-B", out, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        "-DCOHORT_BACKEND=mpi", "-DCOHORT_BUILD_TESTS=OFF", "-DCOHORT_BUILD_EXAMPLES=OFF",
                        "-DCOHORT_BUILD_BENCH=ON"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", out, "-j", str(os.cpu_count() or 2), "--target",
                    "p2p_cohort", "coll_cohort", "p2p_mpi", "coll_mpi"], check=True, stdout=subprocess.DEVNULL)
    return out


def run(build, quick=False, repeats=None):
    bench_dir = os.path.join(build_mpi_backend(build), "bin", "bench")
    repeats = repeats or (3 if quick else 7)
    env = mpi_env()
    rows = []
    for prog, bench, size, np_, it in CASES:
        if quick:
            it = max(10, it // 5)
        args = [bench, str(size), str(it), str(max(2, it // 10))]
        mpirun = ["mpirun", "-n", str(np_), "--bind-to", "core", "--mca", "odls_base_max_threads", "0"]
        impls = [("cohort-mpi", mpirun + [os.path.join(bench_dir, prog + "_cohort")] + args),
                 ("openmpi", mpirun + [os.path.join(bench_dir, prog + "_mpi")] + args)]
        values = {name: [] for name, _ in impls}
        unit = "us"
        for _ in range(repeats):
            for name, cmd in impls:  # alternate A B A B
                r = run_one(cmd, env)
                values[name].append(r["value"])
                unit = r["unit"]
        for name, _ in impls:
            rows.append({"suite": "backend", "bench": bench, "impl": name, "np": np_, "bytes": size,
                         "value": round(statistics.median(values[name]), 6), "unit": unit})
        c, m = rows[-2]["value"], rows[-1]["value"]
        print("%-24s np=%d %8s  cohort-mpi %10.4g  openmpi %10.4g  ratio %.3f %s" %
              (bench, np_, size, c, m, c / m if m else float("nan"), unit), file=sys.stderr, flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.environ.get("COHORT_BUILD", "build"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    p.add_argument("--repeats", type=int)
    a = p.parse_args()
    rows = run(a.build, a.quick, a.repeats)
    if a.json:
        with open(a.json, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
