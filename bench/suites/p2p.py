#!/usr/bin/env python3
"""Suite `p2p`: Cohort point-to-point next to the same programs over plain Open MPI, np = 2.

OSU-style: `latency` (ping-pong, one-way us, 8 B .. 4 MiB), `bandwidth` (windows of 64 isends,
GB/s, 8 B .. 4 MiB), `message_rate` (8 B, msg/s), `latency_cereal_struct` (a small struct with a
string, cereal-serialized; the MPI program serializes with cereal, sends, probes and decodes) and
`latency_vector_double_1000` (std::vector<double> of 1000 elements), and
`cereal_struct_over_8b` (unit `ratio`: the struct's latency over the 8 B latency of the same
program, measured in alternating blocks within one run, so both see the same placement of the
host's vCPUs; lower is better; issue #3's target is <= 2 for Cohort). One rank per core: cohortrun
binds by default, mpirun gets --bind-to core. Cohort and Open MPI alternate (A B A B ...); the
median of the repeats is reported with the ratio cohort / openmpi (for bandwidth and rate, higher
is better).

  python3 bench/suites/p2p.py --build build [--quick] [--json FILE] [--bench latency]

Binaries: BUILD/bin/cohortrun, BUILD/bin/bench/p2p_cohort and BUILD/bin/bench/p2p_mpi (bench/p2p).
`run(build, quick, ...)` returns the JSON rows, for a harness that imports this file.
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

LAT_SIZES = [8, 64, 512, 4096, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20]
BW_SIZES = [8, 512, 4096, 64 << 10, 1 << 20, 4 << 20]
BENCHES = ["latency", "bandwidth", "message_rate", "latency_cereal_struct", "latency_vector_double_1000",
           "cereal_struct_over_8b"]


def iterations(bench, size, quick):
    if bench in ("bandwidth", "message_rate"):
        it = 2000 if size <= 4096 else (200 if size <= 64 << 10 else 20)
    else:
        it = 100000 if size <= 4096 else (5000 if size <= 64 << 10 else 300)
    return max(10, it // 5) if quick else it


def cases(benches):
    for b in benches:
        if b == "latency":
            sizes = LAT_SIZES
        elif b == "bandwidth":
            sizes = BW_SIZES
        elif b == "message_rate":
            sizes = [8]
        elif b == "latency_vector_double_1000":
            sizes = [8000]
        else:
            sizes = [0]
        for s in sizes:
            yield b, s


def run(build, quick=False, benches=None, repeats=None):
    bin_dir = os.path.join(build, "bin")
    cohortrun = os.path.join(bin_dir, "cohortrun")
    cohort_bin = os.path.join(bin_dir, "bench", "p2p_cohort")
    mpi_bin = os.path.join(bin_dir, "bench", "p2p_mpi")
    have_mpi = os.path.exists(mpi_bin)
    repeats = repeats or (3 if quick else 5)
    env = mpi_env()
    rows = []
    for b, s in cases(benches or BENCHES):
        it = iterations(b, s, quick)
        args = [b, str(s), str(it), str(max(2, it // 10))]
        impls = [("cohort", [cohortrun, "-n", "2", cohort_bin] + args)]
        if have_mpi:
            impls.append(("openmpi", ["mpirun", "-n", "2", "--bind-to", "core", mpi_bin] + args))
        values = {name: [] for name, _ in impls}
        unit = "us"
        for _ in range(repeats):
            for name, cmd in impls:  # alternate A B A B
                r = run_one(cmd, env)
                values[name].append(r["value"])
                unit = r["unit"]
        for name, _ in impls:
            rows.append({"suite": "p2p", "bench": b, "impl": name, "np": 2, "bytes": s,
                         "value": round(statistics.median(values[name]), 6), "unit": unit})
        line = "%-28s %8s  cohort %12.4g" % (b, s, rows[-len(impls)]["value"])
        if have_mpi:
            c, m = rows[-2]["value"], rows[-1]["value"]
            line += "  openmpi %12.4g  ratio %.2f %s" % (m, c / m if m else float("nan"), unit)
        print(line, flush=True)
    ceiling = os.path.join(bin_dir, "bench", "copy_ceiling")
    if "bandwidth" in (benches or BENCHES) and os.path.exists(ceiling):
        # What the machine allows any shared-memory path at the large sizes (bench/p2p/copy_ceiling.cpp):
        # two pinned threads, no runtime. Printed for reading the bandwidth ratios, not a row.
        big = [str(x) for x in BW_SIZES if x >= 1 << 20]
        out = subprocess.run([ceiling] + big, capture_output=True, text=True, timeout=600)
        for line in out.stdout.splitlines():
            print("machine ceiling (copy_ceiling): " + line, flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.environ.get("COHORT_BUILD", "build"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    p.add_argument("--bench", action="append")
    p.add_argument("--repeats", type=int)
    a = p.parse_args()
    rows = run(a.build, a.quick, a.bench, a.repeats)
    if a.json:
        with open(a.json, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
