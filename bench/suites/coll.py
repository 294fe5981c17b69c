#!/usr/bin/env python3
"""Suite `coll`: Cohort collectives next to the same operations over plain Open MPI.

OSU-style average latency per operation (barrier, bcast, reduce, allreduce, gather, alltoall) at
np = 2, 4, 8 for 8 B, 64 KiB and 1 MiB, plus `compute_efficiency` (each rank computes ~50 us, then
allreduces 8 B; 2000 iterations): (total compute cpu time / cores) / wall time, printed next to
`compute_ceiling` (bench/coll/compute_ceiling: the same loop without communication, what the
cores allow while other processes share them) and `compute_switch_ceiling` (the same loop with one
sched_yield per step instead of the allreduce: what the cores allow once every rank is switched
in once a step, which a collective forces when ranks outnumber cores).

Cohort and Open MPI runs alternate (A B A B ...) and the median of the repeats is reported with
the ratio cohort / openmpi (for compute_efficiency, a ratio above 1 means Cohort is better).

  python3 bench/suites/coll.py --build build [--quick] [--json FILE] [--np 2,4,8] [--bench allreduce]
                               [--sizes 8,65536] [--repeats N]

Binaries: BUILD/bin/cohortrun, BUILD/bin/bench/coll_cohort and BUILD/bin/bench/coll_mpi (bench/coll).
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

BENCHES = ["barrier", "bcast", "reduce", "allreduce", "gather", "alltoall"]
SIZES = [8, 64 << 10, 1 << 20]
NPS = [2, 4, 8]


def iterations(bench, size, np_, quick):
    if bench == "compute_efficiency":
        return 2000
    if size <= 8:
        it = {2: 20000, 4: 4000, 8: 2000}[np_]
    elif size <= 64 << 10:
        it = {2: 2000, 4: 500, 8: 200}[np_]
    else:
        it = {2: 200, 4: 60, 8: 30}[np_]
    if bench == "alltoall" and size > 8:
        it = max(10, it // np_)
    return max(10, it // 4) if quick else it


def run(build, quick=False, nps=NPS, benches=None, repeats=None, sizes=None):
    bin_dir = os.path.join(build, "bin")
    cohortrun = os.path.join(bin_dir, "cohortrun")
    bench_dir = os.path.join(bin_dir, "bench")  # where bench/CMakeLists.txt puts the programs
    if not os.path.exists(os.path.join(bench_dir, "coll_cohort")):
        bench_dir = bin_dir
    cohort_bin = os.path.join(bench_dir, "coll_cohort")
    mpi_bin = os.path.join(bench_dir, "coll_mpi")
    ceiling_bin = os.path.join(bench_dir, "compute_ceiling")
    have_mpi = os.path.exists(mpi_bin)
    # Odd in both modes, so the median is a run's own figure: with 2 it was the mean of two, and
    # one slow scheduling minute at np=8 (8 ranks on 2 cores, where single runs of the same
    # build spread over 7.6-16 us a barrier, Open MPI's over 7.4-17) moved the row by half
    # its size. 3, as the p2p and backend suites use.
    repeats = repeats or (3 if quick else 5)
    env = mpi_env()
    rows = []
    cases = []
    for b in (benches or BENCHES + ["compute_efficiency"]):
        for s in [0] if b in ("barrier", "compute_efficiency") else (sizes or SIZES):
            cases.append((b, s))
    for np_ in nps:
        for b, s in cases:
            it = iterations(b, s, np_, quick)
            warm = max(2, it // 10)
            args = [b, str(s), str(it), str(warm)]
            impls = [("cohort", [cohortrun, "-n", str(np_), cohort_bin] + args)]
            if have_mpi:
                impls.append(("openmpi", ["mpirun", "--oversubscribe", "-n", str(np_), mpi_bin] + args))
            # compute_efficiency: the same compute loop without communication, and with one yield
            with_ceiling = b == "compute_efficiency" and os.path.exists(ceiling_bin)
            ceilings = {"compute_ceiling": [], "compute_switch_ceiling": []} if with_ceiling else {}
            values = {name: [] for name, _ in impls}
            unit = "us"
            for _ in range(repeats):
                for name, cmd in impls:  # alternate A B A B
                    r = run_one(cmd, env)
                    values[name].append(r["value"])
                    unit = r["unit"]
                for row, values_of in ceilings.items():
                    values_of.append(run_one([cohortrun, "-n", str(np_), ceiling_bin, row, "0", str(it)],
                                             env)["value"])
            for name, _ in impls:
                rows.append({"suite": "coll", "bench": b, "impl": name, "np": np_, "bytes": s,
                             "value": round(statistics.median(values[name]), 4), "unit": unit})
            line = "%-18s np=%d %8s  cohort %10.3f" % (b, np_, s, rows[-len(impls)]["value"])
            if have_mpi:
                c, m = rows[-2]["value"], rows[-1]["value"]
                line += "  openmpi %10.3f  ratio %.2f %s" % (m, c / m if m else float("nan"), unit)
            print(line, file=sys.stderr, flush=True)
            for row, values_of in ceilings.items():
                rows.append({"suite": "coll", "bench": row, "impl": "cohort", "np": np_,
                             "bytes": 0, "value": round(statistics.median(values_of), 4), "unit": "ratio"})
                what = ("no communication: what the cores allow" if row == "compute_ceiling" else
                        "a yield instead of the allreduce: what the cores allow with one switch a step")
                print("%-18s np=%d %8s  machine %9.3f  (%s)" % (row, np_, 0, rows[-1]["value"], what),
                      file=sys.stderr, flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.environ.get("COHORT_BUILD", "build"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    p.add_argument("--np", default=",".join(map(str, NPS)))
    p.add_argument("--bench", action="append")
    p.add_argument("--repeats", type=int)
    p.add_argument("--sizes", help="payload sizes in bytes, e.g. 8 or 8,65536 (default: all)")
    a = p.parse_args()
    rows = run(a.build, a.quick, [int(x) for x in a.np.split(",")], a.bench, a.repeats,
               [int(x) for x in a.sizes.split(",")] if a.sizes else None)
    if a.json:
        with open(a.json, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
