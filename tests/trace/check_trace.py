#!/usr/bin/env python3
"""Checks a TROUPE_TRACE file (docs/tracing.md) against the Trace Event Format.

usage: check_trace.py TRACE.json --ranks N [--min-messages K]

Fails (exit 1, one line per problem) unless: the file is JSON with a "traceEvents" array;
every event has a name, a phase, a pid and a tid; every task ("X") has a start (ts) and an
end (dur >= 0), or is a matched B/E pair on its lane; every pid is a rank in [0, N); every
rank has a process name, tasks, and a name for each lane it uses; at least K message events
(send/receive slices) and, when K > 0, flow arrows whose every end ("f") has its start
("s"), with a receive no earlier than its send by more than the two ranks' recorded clock
errors. Pure python3, no packages.
"""
import argparse
import json
import sys
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--ranks", type=int, required=True)
    ap.add_argument("--min-messages", type=int, default=0)
    args = ap.parse_args()
    problems = []

    def bad(msg):
        if len(problems) < 20:
            problems.append(msg)

    try:
        with open(args.trace, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_trace: {args.trace}: not readable JSON: {e}")
        return 1
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        print("check_trace: the file is not a JSON object with a traceEvents array")
        return 1
    events = doc["traceEvents"]
    process_names = {}
    clock_error = defaultdict(float)
    thread_names = set()
    lanes_used = set()
    tasks = defaultdict(int)
    messages = 0
    open_b = defaultdict(list)
    flow_s, flow_f = {}, []
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            bad(f"event {i} is not an object")
            continue
        ph, pid, tid = e.get("ph"), e.get("pid"), e.get("tid")
        if not isinstance(e.get("name"), str) or not isinstance(ph, str):
            bad(f"event {i} lacks a name or a phase: {e}")
            continue
        if not isinstance(pid, int) or not 0 <= pid < args.ranks:
            bad(f"event {i} has pid {pid!r}, not a rank in [0, {args.ranks}): {e}")
            continue
        if not isinstance(tid, int) or tid < 1:
            bad(f"event {i} has no thread (tid {tid!r}): {e}")
            continue
        if ph == "M":
            a = e.get("args", {})
            if e["name"] == "process_name":
                process_names[pid] = a.get("name")
                clock_error[pid] = float(a.get("clock_error_us", 0.0))
            elif e["name"] == "thread_name":
                if not isinstance(a.get("name"), str) or not a["name"]:
                    bad(f"event {i}: a thread_name without a name: {e}")
                thread_names.add((pid, tid))
            continue
        ts = e.get("ts")
        if not isinstance(ts, (int, float)):
            bad(f"event {i} has no start (ts): {e}")
            continue
        lanes_used.add((pid, tid))
        if ph == "X":
            dur = e.get("dur")
            if not isinstance(dur, (int, float)) or dur < 0:
                bad(f"event {i}: a complete event without an end (dur {dur!r}): {e}")
                continue
            if e.get("cat") == "message":
                messages += 1
            else:
                tasks[pid] += 1
        elif ph == "B":
            open_b[(pid, tid)].append(e)
        elif ph == "E":
            if not open_b[(pid, tid)]:
                bad(f"event {i}: an end (E) without its begin on lane {pid}/{tid}")
            else:
                open_b[(pid, tid)].pop()
                tasks[pid] += 1
        elif ph == "s":
            flow_s[e.get("id")] = e
        elif ph == "f":
            flow_f.append(e)
        elif ph not in ("i", "I", "C", "t"):
            bad(f"event {i}: unexpected phase {ph!r}")
    for lane, stack in open_b.items():
        if stack:
            bad(f"lane {lane}: {len(stack)} begin (B) event(s) without an end")
    for r in range(args.ranks):
        if not process_names.get(r):
            bad(f"rank {r} has no process_name")
        if tasks[r] == 0:
            bad(f"rank {r} has no task events")
    for lane in sorted(lanes_used - thread_names):
        bad(f"lane pid {lane[0]} tid {lane[1]} has events but no thread_name")
    if messages < args.min_messages:
        bad(f"{messages} message event(s), expected at least {args.min_messages}")
    matched = 0
    worst = 0.0
    for f in flow_f:
        s = flow_s.get(f.get("id"))
        if s is None:
            bad(f"a flow end (f) without its start (s): {f}")
            continue
        matched += 1
        skew = s["ts"] - f["ts"]  # > 0: the receive shows before the send
        allowed = clock_error[s["pid"]] + clock_error[f["pid"]] + 0.002
        worst = max(worst, skew)
        if skew > allowed:
            bad(f"a receive at {f['ts']} us shows {skew:.3f} us before its send (clock errors allow {allowed:.3f}): {f}")
    if args.min_messages > 0 and matched == 0:
        bad("no message has both ends (s and f) in the trace")
    print(f"check_trace: {len(events)} events, ranks {sorted(process_names)}, tasks per rank "
          f"{[tasks[r] for r in range(args.ranks)]}, {messages} message slices, {matched} matched flows "
          f"(largest receive-before-send {max(worst, 0.0):.3f} us), {len(thread_names)} named lanes")
    for p in problems:
        print("check_trace: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
