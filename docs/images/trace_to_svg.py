#!/usr/bin/env python3
"""Draws a cohortrun --trace JSON file as an SVG timeline (a track per rank, spans coloured by
category, flow arrows from each send to its receive), for the README's picture: ui.perfetto.dev
needs the network and chrome://tracing a file picker, neither of which a headless build has.

  python3 docs/images/trace_to_svg.py trace.json out.svg [--from US] [--to US]
"""
import argparse
import json

COLOURS = {"p2p": "#4878d0", "wait": "#ee854a", "collective": "#6acc64", "pool": "#d65f5f",
           "queue": "#956cb4"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--from", dest="t0", type=float, default=None)
    ap.add_argument("--to", dest="t1", type=float, default=None)
    a = ap.parse_args()
    d = json.load(open(a.trace))
    ev = d["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    spans = [e for e in ev if e["ph"] == "X"]
    t0 = a.t0 if a.t0 is not None else min(float(e["ts"]) for e in spans)
    t1 = a.t1 if a.t1 is not None else max(float(e["ts"]) + float(e["dur"]) for e in spans)
    spans = [e for e in spans if float(e["ts"]) + float(e["dur"]) >= t0 and float(e["ts"]) <= t1]
    tids = sorted(names)
    left, width, lane, top = 150, 1100, 22, 50
    # Nesting depth per track (spans inside spans go one row down).
    depth = {}
    for tid in tids:
        stack = []
        for e in sorted((e for e in spans if e["tid"] == tid), key=lambda e: (float(e["ts"]), -float(e["dur"]))):
            b, en = float(e["ts"]), float(e["ts"]) + float(e["dur"])
            while stack and stack[-1] <= b:
                stack.pop()
            depth[id(e)] = len(stack)
            stack.append(en)
    rows = {tid: max([depth[id(e)] for e in spans if e["tid"] == tid] + [0]) + 1 for tid in tids}
    y = {}
    cur = top
    for tid in tids:
        y[tid] = cur
        cur += rows[tid] * lane + 14
    h = cur + 40

    def x(t):
        return left + (float(t) - t0) / (t1 - t0) * width

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (left + width + 20, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>',
           '<text x="%d" y="22" font-size="14" font-weight="bold">%s, %.0f to %.0f us</text>' % (left, d["otherData"]["command"].split("/")[-1], t0, t1)]
    for tid in tids:
        out.append('<rect x="0" y="%d" width="%d" height="%d" fill="#f4f4f4"/>' % (y[tid] - 4, left + width + 20, rows[tid] * lane + 6))
        out.append('<text x="8" y="%d">%s</text>' % (y[tid] + 13, names[tid].split(" (")[0]))
    for e in spans:
        b = max(x(e["ts"]), left)
        w = max(min(x(float(e["ts"]) + float(e["dur"])), left + width) - b, 1.0)
        yy = y[e["tid"]] + depth[id(e)] * lane
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" stroke="white" stroke-width="0.5"><title>%s</title></rect>'
                   % (b, yy, w, lane - 3, COLOURS.get(e["cat"], "#999"), e["name"]))
        if w > 6 * len(e["name"]):
            out.append('<text x="%.1f" y="%d" fill="white">%s</text>' % (b + 3, yy + 13, e["name"]))
    starts = {e["id"]: e for e in ev if e["ph"] == "s"}
    for e in ev:
        if e["ph"] != "f" or e["id"] not in starts:
            continue
        s = starts[e["id"]]
        if not (t0 <= float(s["ts"]) <= t1 and t0 <= float(e["ts"]) <= t1):
            continue
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-width="0.8" marker-end="url(#arrow)"/>'
                   % (x(s["ts"]), y[s["tid"]] + lane / 2, x(e["ts"]), y[e["tid"]] + lane / 2))
    lx = left
    for cat, colour in COLOURS.items():
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>' % (lx, h - 26, colour, lx + 16, h - 16, cat))
        lx += 110
    out.append('<text x="%d" y="%d">arrows: a message from its send to its receive</text>' % (lx, h - 16))
    out.append("</svg>")
    open(a.out, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
