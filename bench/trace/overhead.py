#!/usr/bin/env python3
"""What cohortrun --trace costs on the p2p benchmarks: Cohort with tracing off against a baseline
build (e.g. main before tracing existed) and against tracing on, alternating A B C A B C ... and
reporting medians and ratios (README.md, "Seeing what a job does").

  python3 bench/trace/overhead.py --new build --base /path/to/other/build [--rounds 9] [--best]
                                 [--base-traced]

--best reports the best round of each (lowest latency, highest rate) instead of the median: on a
machine that other work shares, noise only ever makes a round worse, so the best round is the
closest to a quiet machine's.

Each build dir must hold bin/cohortrun and bin/bench/p2p_cohort. Tracing on keeps every event
(--trace-events 262144 holds the longest case), so the cost measured is that of recording, not of
counting dropped events (which reads no clock).
"""
import argparse
import json
import statistics
import subprocess

CASES = [("latency", 8, 100000), ("latency", 4096, 50000), ("message_rate", 8, 2000),
         ("bandwidth", 1 << 20, 200)]


def run(build, bench, size, iters, trace):
    cmd = [build + "/bin/cohortrun", "-n", "2"]
    if trace:
        cmd += ["--trace", "/tmp/cohort-trace-overhead.json", "--trace-events", "262144"]
    cmd += [build + "/bin/bench/p2p_cohort", bench, str(size), str(iters), str(max(2, iters // 10))]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][0])["value"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--new", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--best", action="store_true")
    ap.add_argument("--only", help="run only this benchmark (latency, message_rate, bandwidth)")
    ap.add_argument("--base-traced", action="store_true",
                    help="also run the base build with tracing on (when it has --trace): base on/off")
    a = ap.parse_args()
    kinds = ["base"] + (["base_on"] if a.base_traced else []) + ["off", "on"]
    print("%-14s %8s " % ("bench", "bytes") + " ".join("%10s" % k for k in kinds) +
          " %9s %9s" % ("off/base", "on/off") + (" %12s" % "base on/off" if a.base_traced else ""))
    for bench, size, iters in CASES:
        if a.only and bench != a.only:
            continue
        v = {k: [] for k in kinds}
        for _ in range(a.rounds):
            v["base"].append(run(a.base, bench, size, iters, False))
            if a.base_traced:
                v["base_on"].append(run(a.base, bench, size, iters, True))
            v["off"].append(run(a.new, bench, size, iters, False))
            v["on"].append(run(a.new, bench, size, iters, True))
        higher_is_better = bench in ("message_rate", "bandwidth")
        pick = (max if higher_is_better else min) if a.best else statistics.median
        m = {k: pick(x) for k, x in v.items()}
        print("%-14s %8d " % (bench, size) + " ".join("%10.4g" % m[k] for k in kinds) +
              " %9.3f %9.3f" % (m["off"] / m["base"], m["on"] / m["off"]) +
              (" %12.3f" % (m["base_on"] / m["base"]) if a.base_traced else ""), flush=True)

if __name__ == "__main__":
    main()
