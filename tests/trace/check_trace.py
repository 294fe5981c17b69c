#!/usr/bin/env python3
"""Runs tests/trace/trace_traffic under cohortrun --trace --stats-dir and checks what comes out.

  check_trace.py COHORTRUN PROGRAM RANKS MODE WORKDIR

MODE is p2p, pool, queue or die (see trace_traffic.cpp; the numbers below must match it).
Checks: the trace is valid JSON with a named track per rank; every flow has one start and one
end, starts on a send whose peer is the receiving rank and ends on a receive of the same message
(same per-pair number and size); p2p/die: the bytes matrix (matrix.csv) and per-rank counters
(ranks.csv) are exactly the generated traffic; pool: the pool tasks cover the 100 items; queue:
the puts and gets; die: the job fails with the dead rank's SIGKILL and still leaves its trace.
Exits non-zero with a message on the first failed check.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict

RING = [k * 100 for k in range(1, 6)]
BIG = 200 * 1024
SELF = 64
TO_ZERO = 16
PROBED = 32
SENDS_PER_RANK = len(RING) + 4


def fail(msg):
    print("check_trace: FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def expected_matrix(n):
    m = [[0] * n for _ in range(n)]
    msgs = [[0] * n for _ in range(n)]
    for r in range(n):
        nxt = (r + 1) % n
        for b in RING + [BIG, PROBED]:
            m[r][nxt] += b
            msgs[r][nxt] += 1
        m[r][r] += SELF
        msgs[r][r] += 1
        m[r][0] += TO_ZERO
        msgs[r][0] += 1
    return m, msgs


def main():
    cohortrun, program, n, mode, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    trace_file = os.path.join(work, "trace.json")
    stats_dir = os.path.join(work, "stats")
    cmd = [cohortrun, "-n", str(n), "--timeout", "60", "--trace", trace_file, "--stats-dir", stats_dir,
           program, mode]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    sys.stderr.write(run.stderr)
    if mode == "die":
        check(run.returncode == 128 + 9, "the job with a rank killed by SIGKILL exits with %d, not 137" % run.returncode)
    else:
        check(run.returncode == 0, "cohortrun exited with %d" % run.returncode)
    check("statistics of %d rank" % n in run.stderr, "no statistics table on stderr")

    with open(trace_file) as f:
        trace = json.load(f)  # valid JSON
    events = trace["traceEvents"]
    other = trace["otherData"]
    # Perfetto versions of 2020-2023 take displayTimeUnit "ns" as the unit of every ts.
    check("displayTimeUnit" not in trace, "displayTimeUnit is set")
    check(other["ranks"] == n, "otherData.ranks is %s" % other["ranks"])
    check(other["dropped_events"] == [0] * n, "events dropped: %s" % other["dropped_events"])
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    for r in range(n):
        check(names.get(r + 1, "").startswith("rank %d " % r), "track of rank %d is named %r" % (r, names.get(r + 1)))

    spans = [e for e in events if e["ph"] == "X"]
    for e in spans:
        check(e["dur"] >= 0 and e["ts"] >= 0, "bad span %s" % e)
    by_rank = defaultdict(list)
    for e in spans:
        by_rank[e["tid"] - 1].append(e)

    def kind(e):
        return e["name"].split(" ")[0]

    sends = {}  # (sender, receiver, message) -> span
    recvs = {}
    for r, evs in by_rank.items():
        for e in evs:
            a = e["args"]
            check(a["rank"] == r, "event on the track of rank %d says rank %d" % (r, a["rank"]))
            if kind(e) in ("send", "isend"):
                key = (r, a["peer"], a["message"])
                check(key not in sends, "two sends numbered %s" % (key,))
                sends[key] = e
            if e["name"].startswith("recv from") or e["name"].startswith("irecv done"):
                key = (a["peer"], r, a["message"])
                check(key not in recvs, "two receives numbered %s" % (key,))
                recvs[key] = e

    # Flows: one start and one end per id, from a send to its receive. Every viewer must bind them
    # to the same slices (launcher/trace_writer.cpp): a flow starts at the exact begin of its send
    # and ends at the exact begin of a slice of the same cat on the receiver's track, which ends
    # where the receive ends (an "irecv done", or the "message received" mark of a blocking recv);
    # flow events come after every slice.
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    check(len(starts) == len([e for e in events if e["ph"] == "s"]), "duplicate flow start ids")
    check(set(starts) == set(ends), "flows without both ends: %s" % (set(starts) ^ set(ends)))
    check(all(e.get("bp") == "e" for e in ends.values()), "a flow end does not bind to its enclosing slice")
    positions = [i for i, e in enumerate(events) if e["ph"] in ("s", "f")]
    check(not positions or positions[0] > max(i for i, e in enumerate(events) if e["ph"] == "X"),
          "a flow event comes before a slice")
    at = defaultdict(list)  # (cat, tid, ts) -> slices beginning there
    for e in spans:
        at[(e["cat"], e["tid"], e["ts"])].append(e)
    paired = set()
    for fid, s in starts.items():
        f = ends[fid]
        key = next((k for k, e in sends.items() if e["tid"] == s["tid"] and e["cat"] == s["cat"]
                    and e["ts"] == s["ts"]), None)
        check(key is not None, "flow %s starts where no send begins: %s" % (fid, s))
        sender, receiver, number = key
        check(f["tid"] == receiver + 1, "flow %s of a message to rank %d ends on track %d" % (fid, receiver, f["tid"] - 1))
        rv = recvs.get(key)
        check(rv is not None, "no receive of message %s" % (key,))
        # Perfetto drops a flow whose end comes before its start.
        check(float(f["ts"]) >= float(s["ts"]), "flow %s ends at %s, before it starts at %s" % (fid, f["ts"], s["ts"]))
        bound = at.get((f["cat"], f["tid"], f["ts"]), [])
        check(any(abs(float(b["ts"]) + float(b["dur"]) - float(rv["ts"]) - float(rv["dur"])) <= 0.0005 and
                  (b is rv or b["name"] == "message received") for b in bound),
              "flow %s ends at %s, not on a slice at the end of its receive %s" % (fid, f["ts"], rv))
        check(rv["args"]["bytes"] == sends[key]["args"]["bytes"],
              "message %s: sent %d bytes, received %d" % (key, sends[key]["args"]["bytes"], rv["args"]["bytes"]))
        paired.add(key)

    expected_sends = SENDS_PER_RANK * n if mode != "queue" else 0
    check(len(sends) >= expected_sends, "%d sends traced, expected at least %d" % (len(sends), expected_sends))
    if mode in ("p2p", "die"):
        check(len(sends) == expected_sends, "%d sends traced, expected %d" % (len(sends), expected_sends))
        check(set(sends) == set(recvs) == paired, "sends, receives and flows differ: %d %d %d" % (len(sends), len(recvs), len(paired)))
        for r in range(n):
            coll = [e["name"] for e in by_rank[r] if e["cat"] == "collective"]
            for name in ("barrier", "allreduce", "broadcast"):
                check(name in coll, "rank %d: no %s in the trace (%s)" % (r, name, coll))
        m, msgs = expected_matrix(n)
        with open(os.path.join(stats_dir, "matrix.csv")) as f:
            rows = list(csv.reader(f))
        got = [[int(x) for x in row[1:]] for row in rows[1:]]
        check(got == m, "bytes matrix %s, expected %s" % (got, m))
        with open(os.path.join(stats_dir, "ranks.csv")) as f:
            ranks = list(csv.DictReader(f))
        for r in range(n):
            row = ranks[r]
            check(int(row["messages_sent"]) == sum(msgs[r]), "rank %d sent %s messages" % (r, row["messages_sent"]))
            check(int(row["bytes_sent"]) == sum(m[r]), "rank %d sent %s bytes" % (r, row["bytes_sent"]))
            check(int(row["messages_received"]) == sum(msgs[q][r] for q in range(n)),
                  "rank %d received %s messages" % (r, row["messages_received"]))
            check(int(row["bytes_received"]) == sum(m[q][r] for q in range(n)),
                  "rank %d received %s bytes" % (r, row["bytes_received"]))
            check(int(row["collectives"]) >= 3, "rank %d: %s collectives" % (r, row["collectives"]))
        for name in ("matrix.svg", "ranks.svg"):
            with open(os.path.join(stats_dir, name)) as f:
                check(f.read().startswith("<svg"), name + " is not an SVG picture")
    if mode == "pool":
        items = sum(e["args"]["items"] for e in spans if e["cat"] == "pool")
        check(items == 100, "pool tasks cover %d items, not 100" % items)
        with open(os.path.join(stats_dir, "ranks.csv")) as f:
            ranks = list(csv.DictReader(f))
        check(sum(int(r["pool_items"]) for r in ranks) == 100, "ranks.csv pool_items do not sum to 100")
    if mode == "queue":
        puts = [e for e in spans if e["name"] == "queue put"]
        gets = [e for e in spans if e["name"] == "queue get"]
        check(len(puts) == 3 * (n - 1) and len(gets) == 3 * (n - 1), "%d puts and %d gets traced" % (len(puts), len(gets)))
        check(all(e["args"]["bytes"] == 24 for e in puts + gets), "queue items are not 24 bytes")
        check(all(e["tid"] == 1 for e in gets), "a get outside rank 0")
    if mode == "die":
        dead = n - 1
        instants = [e for e in events if e["ph"] == "i" and e["tid"] == dead + 1]
        check(any("SIGKILL" in e["name"] for e in instants), "the dead rank's end is not in the trace: %s" % instants)
        check(other["exits"][dead].startswith("killed by SIGKILL"), "otherData.exits: %s" % other["exits"])
    print("check_trace: OK (%d spans, %d flows)" % (len(spans), len(starts)))


if __name__ == "__main__":
    main()
