#!/usr/bin/env python3
"""Fault injection: SIGKILL a random rank at a random point, many times, and check the promise.

  run_faults.py --cohortrun build/bin/cohortrun --program build/tests/fault_trial \
                [--trials 24] [--seed S] [--max-ranks 8] [--trial-timeout 30]

Each trial picks a scenario (send, recv, collective, pool_map, queue_get, lock), a rank count,
a victim and a delay (50-400 ms), runs `cohortrun -n N fault_trial SCENARIO VICTIM DELAY`, and
checks:
  - the job ends (a hang is caught by the generous per-trial timeout: a failure);
  - cohortrun exits with 137 and says "rank V (pid P) killed by SIGKILL", and its exit table has
    the victim's row "failed  SIGKILL";
  - nothing is left: no process of the job (every rank's pid gone, no process whose environment
    holds the job's COHORT_JOB), no new file in /dev/shm.
The time from the kill (the victim writes its CLOCK_MONOTONIC time just before) to cohortrun's exit
is printed per trial; the worst is reported, never asserted. Exits 1 on any failed trial.
"""
import argparse
import os
import random
import re
import subprocess
import sys
import time

SCENARIOS = ["send", "recv", "collective", "pool_map", "queue_get", "lock"]
PEER_LOST = []  # seconds from a kill to a survivor's PeerLost (when it came before SIGTERM)


def processes_with_job(job):
    """Pids of processes whose environment has COHORT_JOB=job."""
    needle = ("COHORT_JOB=" + job).encode() + b"\0"
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read() + b"\0":
                    found.append(int(pid))
        except OSError:
            pass
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# Other programs on a shared machine create files in /dev/shm while a trial runs (Open MPI's
# shared-memory transport: vader_segment.*, sm_segment.*); they are not the trial's.
FOREIGN_SHM = re.compile(r"^(vader_segment|sm_segment|psm2|ucx|sem\.mp-)")


def shm_listing():
    try:
        return {f for f in os.listdir("/dev/shm") if not FOREIGN_SHM.match(f)}
    except OSError:
        return set()


def trial(args, rng, index):
    scenario = SCENARIOS[index % len(SCENARIOS)] if args.round_robin else rng.choice(SCENARIOS)
    ranks = rng.randint(2, args.max_ranks)
    victim = rng.randrange(ranks)
    delay = rng.randint(50, 400)
    cmd = [args.cohortrun, "-n", str(ranks), "--timeout", str(args.trial_timeout), args.program,
           scenario, str(victim), str(delay)]
    shm_before = shm_listing()
    started = time.monotonic_ns()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.trial_timeout + 15)
    except subprocess.TimeoutExpired as e:
        return False, None, f"HANG: {' '.join(cmd)} did not end within {args.trial_timeout + 15} s", scenario
    ended = time.monotonic_ns()
    out = p.stdout + p.stderr
    problems = []
    m = re.search(r"fault: killing rank (\d+) at (\d+)", out)
    killed_at = int(m.group(2)) if m else None
    if m is None:
        problems.append("the victim never reported its kill")
    if p.returncode != 137:
        problems.append(f"exit status {p.returncode}, expected 137")
    if not re.search(rf"cohortrun: rank {victim} \(pid \d+\) killed by SIGKILL", out):
        problems.append(f"no line 'rank {victim} (pid ...) killed by SIGKILL'")
    if not re.search(rf"cohortrun: +{victim} +\d+ +failed +SIGKILL", out):
        problems.append(f"the exit table has no row 'failed SIGKILL' for rank {victim}")
    pids = [int(x) for x in re.findall(r"fault: rank \d+ pid (\d+)", out)]
    jobs = set(re.findall(r"fault: rank \d+ pid \d+ job (\w+)", out))
    # Give the kernel a moment to finish reaping (cohortrun has waited for every rank already).
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and (any(alive(x) for x in pids) or
                                           any(processes_with_job(j) for j in jobs)):
        time.sleep(0.05)
    left = [x for x in pids if alive(x)]
    for j in jobs:
        left += processes_with_job(j)
    if left:
        problems.append(f"processes of the job left: {sorted(set(left))}")
    new_shm = shm_listing() - shm_before
    if new_shm:
        problems.append(f"left in /dev/shm: {sorted(new_shm)}")
    seconds = (ended - killed_at) / 1e9 if killed_at else (ended - started) / 1e9
    if killed_at:
        for t in re.findall(r"fault: rank \d+ PeerLost at (\d+)", out):
            PEER_LOST.append((int(t) - killed_at) / 1e9)
    desc = f"{scenario:10s} n={ranks} victim={victim} delay={delay}ms"
    if problems:
        return False, seconds, f"{desc}: " + "; ".join(problems) + "\n--- output:\n" + out[-3000:], scenario
    return True, seconds, desc, scenario


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohortrun", required=True)
    ap.add_argument("--program", required=True)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-ranks", type=int, default=8)
    ap.add_argument("--trial-timeout", type=int, default=30)
    ap.add_argument("--round-robin", action="store_true", help="cycle through the scenarios")
    args = ap.parse_args()
    seed = args.seed or (time.time_ns() & 0xFFFFFFFF) | 1
    print(f"faults: seed {seed}, {args.trials} trials (rerun: --seed {seed} --trials {args.trials})", flush=True)
    rng = random.Random(seed)
    failures = 0
    worst = (0.0, "")
    per = {}
    for i in range(args.trials):
        ok, seconds, text, scenario = trial(args, rng, i)
        t = f"{seconds:.3f} s" if seconds is not None else "-"
        print(f"faults: trial {i + 1}: {'ok  ' if ok else 'FAIL'} {t:>9s} {text}", flush=True)
        if not ok:
            failures += 1
        if seconds is not None:
            per.setdefault(scenario, []).append(seconds)
            if seconds > worst[0]:
                worst = (seconds, text.splitlines()[0])
    for s, times in sorted(per.items()):
        print(f"faults: {s:10s} {len(times):4d} trials, kill -> job ended: median "
              f"{sorted(times)[len(times) // 2]:.3f} s, worst {max(times):.3f} s")
    if PEER_LOST:
        print(f"faults: {len(PEER_LOST)} survivors reported PeerLost before cohortrun's SIGTERM; "
              f"kill -> PeerLost: median {sorted(PEER_LOST)[len(PEER_LOST) // 2] * 1000:.1f} ms, "
              f"worst {max(PEER_LOST) * 1000:.1f} ms")
    print(f"faults: {args.trials - failures}/{args.trials} trials ok; worst time from kill to the end "
          f"of the job {worst[0]:.3f} s ({worst[1]})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
