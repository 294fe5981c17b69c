#!/usr/bin/env python3
"""Alternates the collective benchmark of several Cohort builds (and Open MPI) on chosen cases, to
compare builds in one run (old vs new binaries; BENCHMARKS.md: ratios from one run only).

  python3 bench/coll/compare_builds.py --bin old=/tmp/old --bin new=build [--repeats 5] \\
      --case 8:compute_efficiency:0 --case 4:barrier:0 --case 4:allreduce:8 [--no-mpi]

Each --bin is NAME=DIR where DIR holds bin/cohortrun and bin/bench/coll_cohort (a build dir, or a
copy of its bin/); a case is NP:BENCH:BYTES[:ITERATIONS]. Prints the median of the repeats per
build, with the ratio to Open MPI's (bench/coll/coll_mpi of the first build) in parentheses.
"""
import argparse
import json
import os
import statistics
import subprocess


def iterations(bench, np_):
    return 2000 if bench == "compute_efficiency" else {2: 10000, 4: 2000, 8: 1000}.get(np_, 1000)


def one(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)["value"]
    raise RuntimeError("no result from %s: %s" % (" ".join(cmd), out.stderr[-1000:]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", action="append", required=True)
    p.add_argument("--case", action="append", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-mpi", action="store_true")
    a = p.parse_args()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    builds = [b.split("=", 1) for b in a.bin]
    mpi = os.path.join(builds[0][1], "bin", "bench", "coll_mpi")
    for case in a.case:
        f = case.split(":")
        np_, bench, size = int(f[0]), f[1], int(f[2])
        it = int(f[3]) if len(f) > 3 else iterations(bench, np_)
        args = [bench, str(size), str(it), str(max(2, it // 10))]
        runs = [(name, [os.path.join(d, "bin", "cohortrun"), "-n", str(np_),
                        os.path.join(d, "bin", "bench", "coll_cohort")] + args) for name, d in builds]
        if not a.no_mpi and os.path.exists(mpi):
            runs.append(("openmpi", ["mpirun", "--oversubscribe", "-n", str(np_), mpi] + args))
        values = {name: [] for name, _ in runs}
        for _ in range(a.repeats):
            for name, cmd in runs:  # alternate A B C A B C ...
                values[name].append(one(cmd, env))
        med = {k: statistics.median(v) for k, v in values.items()}
        line = "np=%d %-18s %7d" % (np_, bench, size)
        for k, v in med.items():
            line += "  %s %.4g" % (k, v)
            if "openmpi" in med and k != "openmpi" and med["openmpi"]:
                line += " (%.2f)" % (v / med["openmpi"])
        print(line, flush=True)


if __name__ == "__main__":
    main()
