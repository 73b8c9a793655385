#!/usr/bin/env python3
"""Draws a TROUPE_TRACE file as an SVG timeline (docs/tracing.md): one lane per rank x
thread, tasks as bars, messages as lines from the send to the receive.

usage: scripts/trace-to-svg.py TRACE.json OUT.svg [--title TEXT] [--width PX]
                                [--from US] [--to US]

Pure python3 (no packages). --from/--to cut a window of the trace (microseconds).
"""
import argparse
import html
import json
import sys

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--title", default="")
    ap.add_argument("--width", type=int, default=1100)
    ap.add_argument("--from", dest="t_from", type=float, default=None)
    ap.add_argument("--to", dest="t_to", type=float, default=None)
    a = ap.parse_args()
    with open(a.trace, encoding="utf-8") as f:
        events = json.load(f)["traceEvents"]

    procs, threads = {}, {}
    slices, sends, recvs = [], {}, {}
    for e in events:
        ph, pid, tid = e.get("ph"), e.get("pid"), e.get("tid")
        if ph == "M":
            if e.get("name") == "process_name":
                procs[pid] = e["args"]["name"]
            elif e.get("name") == "thread_name":
                threads[(pid, tid)] = e["args"]["name"]
        elif ph == "X":
            slices.append(e)
        elif ph == "s":
            sends[e["id"]] = e
        elif ph == "f":
            recvs[e["id"]] = e
    if not slices:
        print("trace-to-svg: no task events in " + a.trace, file=sys.stderr)
        return 1
    t0 = a.t_from if a.t_from is not None else min(e["ts"] for e in slices)
    t1 = a.t_to if a.t_to is not None else max(e["ts"] + e["dur"] for e in slices)
    t1 = max(t1, t0 + 1.0)

    used = sorted({(e["pid"], e["tid"]) for e in slices})
    lane_h, gap, left, top = 16, 4, 170, 34 if a.title else 14
    lanes = {}
    y = top
    last_pid = None
    for lane in used:
        if last_pid is not None and lane[0] != last_pid:
            y += 8  # a gap between ranks
        lanes[lane] = y
        y += lane_h + gap
        last_pid = lane[0]
    axis_y = y + 4
    height = axis_y + 30
    plot_w = a.width - left - 10

    def x_of(ts):
        return left + (ts - t0) / (t1 - t0) * plot_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{a.width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{a.width}" height="{height}" fill="white"/>']
    if a.title:
        out.append(f'<text x="{left}" y="20" font-size="14">{html.escape(a.title)}</text>')
    for (pid, tid), ly in lanes.items():
        label = f"{procs.get(pid, 'rank %d' % pid).split(' (')[0]} {threads.get((pid, tid), 'thread %d' % tid)}"
        out.append(f'<text x="{left - 6}" y="{ly + lane_h - 4}" text-anchor="end">{html.escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{ly}" width="{plot_w}" height="{lane_h}" fill="#f4f4f4"/>')
    # Outer slices first (pool tasks), the executor's tasks on top, messages last.
    order = {"pool": 0, "executor": 1, "message": 2}
    for e in sorted(slices, key=lambda e: (order.get(e.get("cat"), 1), e["ts"])):
        lane = (e["pid"], e["tid"])
        if lane not in lanes or e["ts"] > t1 or e["ts"] + e["dur"] < t0:
            continue
        x0, x1 = x_of(max(e["ts"], t0)), x_of(min(e["ts"] + e["dur"], t1))
        w = max(x1 - x0, 0.6)
        ly = lanes[lane]
        cat = e.get("cat")
        if cat == "pool":
            fill, yy, hh = "#c8c8c8", ly, lane_h
        elif cat == "message":
            fill, yy, hh = "#d62728", ly + lane_h - 4, 4
        else:
            src = e.get("args", {}).get("from", e["pid"])
            fill, yy, hh = PALETTE[src % len(PALETTE)], ly + 2, lane_h - 4
        tip = f'{e["name"]} {e["dur"]:.1f} us'
        out.append(f'<rect x="{x0:.2f}" y="{yy}" width="{w:.2f}" height="{hh}" fill="{fill}">'
                   f'<title>{html.escape(tip)}</title></rect>')
    for fid, s in sends.items():
        r = recvs.get(fid)
        if r is None:
            continue
        a_lane, b_lane = (s["pid"], s["tid"]), (r["pid"], r["tid"])
        if a_lane not in lanes or b_lane not in lanes or not (t0 <= s["ts"] <= t1):
            continue
        out.append(f'<line x1="{x_of(s["ts"]):.2f}" y1="{lanes[a_lane] + lane_h / 2}" x2="{x_of(r["ts"]):.2f}" '
                   f'y2="{lanes[b_lane] + lane_h / 2}" stroke="#d62728" stroke-width="0.6" stroke-opacity="0.55"/>')
    # Time axis: about 8 ticks at round numbers.
    span = t1 - t0
    step = 10 ** len(str(int(span / 8))) / 10 if span >= 8 else 1
    for m in (1, 2, 5, 10):
        if span / (step * m) <= 10:
            step *= m
            break
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="black"/>')
    k = 0
    while k * step <= span:
        xx = x_of(t0 + k * step)
        val = k * step
        text = f"{val / 1000:g} ms" if span >= 2000 else f"{val:g} us"
        out.append(f'<line x1="{xx:.2f}" y1="{axis_y}" x2="{xx:.2f}" y2="{axis_y + 4}" stroke="black"/>')
        out.append(f'<text x="{xx:.2f}" y="{axis_y + 16}" text-anchor="middle">{text}</text>')
        k += 1
    legend = [("#c8c8c8", "pool task"), (PALETTE[0], "task submitted by rank 0"), (PALETTE[1], "by rank 1"),
              ("#d62728", "message (send -> receive)")]
    lx = left
    for color, name in legend:
        out.append(f'<rect x="{lx}" y="{height - 10}" width="10" height="8" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="{height - 2}">{html.escape(name)}</text>')
        lx += 30 + 7 * len(name)
    out.append("</svg>")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"trace-to-svg: {len(slices)} slices, {len(lanes)} lanes, {len(recvs)} messages -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
