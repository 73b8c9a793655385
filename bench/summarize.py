#!/usr/bin/python3
"""Summarise a troupe_pool_bench JSON run (--benchmark_repetitions=R).

Prints, as Markdown:
  1. every case: median [min-max] over the repetitions of its main figure
     (ns per item for throughput cases, µs for latencies, % of a core for idle CPU);
  2. the issue-2 targets: ratio of medians and whether each is met.

Ratios are throughput ratios, time(baseline) / time(troupe): 1.0 means as fast as the
baseline, 0.5 half as fast. The range next to a ratio is the worst and best pairing of
the repetitions' min and max. Standard library only (runs with the system python3).
"""
import json
import statistics
import sys


def load(path):
    with open(path) as f:
        doc = json.load(f)
    n = int(doc.get("context", {}).get("threads_N", "2"))
    runs = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        key = "/".join(b["name"].split("/")[:2])  # drop /min_time:.../real_time
        runs.setdefault(key, []).append(b)
    return doc.get("context", {}), n, runs


def to_us(b):
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def metric(key, reps):
    """(value list, unit) of the figure that matters for this case."""
    case = key.split("/")[0]
    if case.startswith("b_latency"):
        return [r["p50_us"] for r in reps], "µs p50"
    if case.startswith("e_idle"):
        return [r["cpu_pct"] for r in reps], "% of a core"
    return [1e9 / r["items_per_second"] for r in reps], "ns/item"


def stats(values):
    return statistics.median(values), min(values), max(values)


def fmt(x):
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py RESULT.json")
    ctx, n, runs = load(sys.argv[1])
    w = f"_w{n}"
    w1 = f"_w{n - 1}"
    t = f"_t{n}"

    loadavg = ctx.get("loadavg_at_start", "")
    if loadavg:
        print(f"Load average when the run started: {loadavg} (on {ctx.get('num_cpus', '?')} CPUs).")
        if float(loadavg.split()[0]) > 0.5 * float(ctx.get("num_cpus", n)):
            print("**Warning: the machine was busy; these figures are not representative.**")
        print()
    print(f"### All cases (N = {n}; median [min–max] of {max(len(v) for v in runs.values())} repetitions)\n")
    print("| case | figure | median [min–max] | extra |")
    print("| --- | --- | --- | --- |")
    for key, reps in sorted(runs.items(), key=lambda kv: (kv[0].split("/")[0].replace("a2_", "a~"), kv[0])):
        vals, unit = metric(key, reps)
        med, lo, hi = stats(vals)
        extra = ""
        if key.startswith("b_latency"):
            mean = statistics.median(to_us(r) for r in reps)
            p99 = statistics.median(r["p99_us"] for r in reps)
            extra = f"mean {fmt(mean)} µs, p99 {fmt(p99)} µs"
        elif "items_per_second" in reps[0]:
            extra = f"{fmt(statistics.median(r['items_per_second'] for r in reps) / 1e6)} M items/s"
        print(f"| `{key}` | {unit} | {fmt(med)} [{fmt(lo)}–{fmt(hi)}] | {extra} |")

    def ratio(base, mine):
        """time(base)/time(mine) of medians, with the worst/best pairing."""
        if base not in runs or mine not in runs:
            return None
        b, _ = metric(base, runs[base])
        m, _ = metric(mine, runs[mine])
        return statistics.median(b) / statistics.median(m), min(b) / max(m), max(b) / min(m)

    def absolute(key, mean=False):
        if key not in runs:
            return None
        if mean:
            vals = [to_us(r) for r in runs[key]]
        else:
            vals, _ = metric(key, runs[key])
        return stats(vals)

    rows = []
    for tw in (w, w1):
        note = " (default: N workers)" if tw == w else " (N-1 workers + submitting main)"
        rows += [
            (f"(a) submit+result vs TBB task_group{note}", ratio(f"a_submit/tbb_task_group{t}", f"a_submit/troupe{tw}"), ">=", 0.5),
            (f"(a) submit+result, ns/task{note}", absolute(f"a_submit/troupe{tw}"), "<=", 300),
            (f"(a) submit+result vs locked pool + packaged_task{note}", ratio(f"a_submit/locked_packaged_task{w}", f"a_submit/troupe{tw}"), ">=", 4),
            (f"(a2) fan-out from a worker vs TBB task_group{note}", ratio(f"a2_fanout/tbb_task_group{t}", f"a2_fanout/troupe{tw}"), ">=", 1),
            (f"(a2) binary tree vs TBB task_group{note}", ratio(f"a2_tree/tbb_task_group{t}", f"a2_tree/troupe{tw}"), ">=", 1),
            (f"(c) map chunksize 10000 vs tbb::parallel_for{note}", ratio(f"c_map/tbb_parallel_for{t}", f"c_map/troupe_map_chunk10000{tw}"), ">=", 0.8),
            (f"(c) map auto chunksize vs tbb::parallel_for{note}", ratio(f"c_map/tbb_parallel_for{t}", f"c_map/troupe_map_chunkauto{tw}"), ">=", 0.8),
            (f"(c) parallel_for (not map) vs tbb::parallel_for{note}", ratio(f"c_map/tbb_parallel_for{t}", f"c_map/troupe_parallel_for{tw}"), ">=", 0.8),
            (f"(d) parallel_reduce vs tbb::parallel_reduce{note}", ratio(f"d_reduce/tbb{t}", f"d_reduce/troupe{tw}"), ">=", 0.9),
            (f"(b) round trip, workers active, p50 µs{note}", absolute(f"b_latency_active/troupe{tw}"), "<", 2),
            (f"(b) round trip, workers active, mean µs{note}", absolute(f"b_latency_active/troupe{tw}", mean=True), "<", 2),
            (f"(b) round trip from idle, p50 µs{note}", absolute(f"b_latency_idle/troupe{tw}"), "<", 30),
            (f"(b) round trip from idle, mean µs{note}", absolute(f"b_latency_idle/troupe{tw}", mean=True), "<", 30),
        ]
        if n < 2:
            break
    rows.append((f"(e) idle pool CPU, % of one core (N workers)", absolute(f"e_idle_cpu/troupe{w}"), "<", 1))
    rows.append((f"(d) parallel_reduce unordered vs tbb::parallel_reduce (N workers)", ratio(f"d_reduce/tbb{t}", f"d_reduce/troupe_unordered{w}"), ">=", 0.9))

    print(f"\n### Targets of issue 2 (ratio = time(baseline) / time(troupe), median of medians [worst–best pairing])\n")
    print("| target | measured | goal | met |")
    print("| --- | --- | --- | --- |")
    seen = set()
    for name, val, op, goal in rows:
        if val is None or name in seen:
            continue
        seen.add(name)
        med, lo, hi = val
        ok = {">=": med >= goal, "<=": med <= goal, "<": med < goal}[op]
        print(f"| {name} | {fmt(med)} [{fmt(lo)}–{fmt(hi)}] | {op} {goal} | {'yes' if ok else '**no**'} |")


if __name__ == "__main__":
    main()
