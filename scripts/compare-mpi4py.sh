#!/usr/bin/env bash
# Issue 3's benchmark comparison, all in one run: raw MPI, mpi4py.futures and (once it
# exists) troupe's distributed executor, then one table with the ratios.
#
#   scripts/compare-mpi4py.sh            # about 1 minute of running on 2 cores, plus the build
#
# What runs (outputs kept in build-bench/compare/):
#   1. build-bench/bench/troupe_mpi_baseline at 2 ranks, MPI_THREAD_MULTIPLE (troupe's level;
#      right before troupe and again right after it) and at MPI_THREAD_SINGLE (reference rows);
#   2. bench/mpi4py_futures_bench.py with Debian's /usr/bin/python3, pre-started mode
#      (`python3 -m mpi4py.futures`): rank 0 is the client and only the other ranks run tasks,
#      so 2 ranks = 1 worker. It also runs at 3 ranks (oversubscribed: 2 workers) to match a
#      troupe run at 2 ranks in the number of ranks that execute tasks;
#   3. build-bench/bench/troupe_executor_bench at 2 ranks, if that target/file exists, in both
#      MPI modes with progress threads: MpiMode::Multiple (the default) and MpiMode::Serialized
#      (--level=serialized; raw baseline at MPI_THREAD_SERIALIZED beside it).
# Every program prints lines `RESULT name=<key> unit=<unit> value=<median> min=.. max=..`.
# The table matches keys; troupe's bench is expected to use these names (extra names are
# listed as troupe-only rows):
#   submit_roundtrip  us       one submit -> result at a time (optional field bytes=<N>: the
#                              raw ping-pong column then uses the smallest size >= N)
#   tasks_unchunked   tasks/s  N empty tasks submitted one by one, then all waited
#   tasks_chunked     tasks/s  the same, chunked/batched
#   map_chunk{100,1000,10000}, map_auto   items/s   map of a trivial function
#   scoop_10ms_vs_ideal  x     SCOOP mapReduce seed at 10 ms per element / ideal
#   idle_cpu          %        CPU of an idle serving rank
# Ratios are troupe's value divided by the other column's, so for µs lower is better and for
# /s higher is better (the issue's targets: round trip <= 3x raw, unchunked >= 100x mpi4py).
#
# Environment: TROUPE_BENCH_BUILD_DIR (build-bench); MPI4PY_BENCH_* (see the .py file);
# TROUPE_COMPARE_SKIP_BUILD=1 to use what is built. Needs scripts/setup.sh's packages
# (python3-mpi4py included); configure failure runs setup.sh once, as scripts/bench.sh does.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${TROUPE_BENCH_BUILD_DIR:-$root/build-bench}"
out="$build/compare"
py=/usr/bin/python3        # Debian's python3-mpi4py lives here; a pyenv shim on PATH would hide it
mpirun=(mpirun --allow-run-as-root)
status=0

source "$root/scripts/bench-configure.sh"

if [[ "${TROUPE_COMPARE_SKIP_BUILD:-0}" != 1 ]]; then
  troupe_configure_bench || exit 1
  targets=(troupe_mpi_baseline)
  # Build troupe's executor benchmark too once bench/CMakeLists.txt defines it.
  if cmake --build "$build" --target help 2>/dev/null | grep -qw troupe_executor_bench; then
    targets+=(troupe_executor_bench)
  fi
  echo "== build ${targets[*]}"
  cmake --build "$build" --target "${targets[@]}" -j "$(nproc)" || exit 1
fi

if ! "$py" -c 'import mpi4py.futures' 2>/dev/null; then
  echo "$py cannot import mpi4py.futures: install python3-mpi4py (bash scripts/setup.sh)" >&2
  exit 1
fi

mkdir -p "$out"
rm -f "$out"/*.txt

# Other processes on the machine distort every figure: measure how much CPU they took
# (same method as scripts/bench.sh).
busy_jiffies() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
child_cpu_s() { awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"; }

# run <name> <timeout s> <command...>: output to $out/<name>.txt, progress to the terminal.
run() {
  local name="$1" limit="$2"; shift 2
  echo "== $name: $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  grep -av '^RESULT ' "$out/$name.txt" | grep -av '^\s*$' | sed 's/^/   /' | head -20
  echo "   $(grep -ac '^RESULT ' "$out/$name.txt") results, $((SECONDS - t0)) s, rc $rc"
  if [[ $rc -ne 0 ]]; then status=1; fi
}

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
times >"$out/times.before"
busy0=$(busy_jiffies); cpu0=$(child_cpu_s "$out/times.before"); t0=$(date +%s.%N)

# The raw MPI figures of this VM switch between two modes every few minutes (ping-pong
# about 0.35 or 0.8 us; docs/performance.md). So the raw baseline runs right before troupe
# and once more right after it, and the table says if the mode changed in between.
run raw_single 120 "${mpirun[@]}" -n 2 "$build/bench/troupe_mpi_baseline" --thread-level=single
run mpi4py_n2 180 "${mpirun[@]}" -n 2 "$py" -m mpi4py.futures "$root/bench/mpi4py_futures_bench.py"
run mpi4py_n3 180 "${mpirun[@]}" --oversubscribe -n 3 "$py" -m mpi4py.futures "$root/bench/mpi4py_futures_bench.py"
run raw 120 "${mpirun[@]}" -n 2 "$build/bench/troupe_mpi_baseline"
if [[ -x "$build/bench/troupe_executor_bench" ]]; then
  run troupe 300 "${mpirun[@]}" -n 2 "$build/bench/troupe_executor_bench"
  run raw_after 120 "${mpirun[@]}" -n 2 "$build/bench/troupe_mpi_baseline"
  run raw_serialized 120 "${mpirun[@]}" -n 2 "$build/bench/troupe_mpi_baseline" --thread-level=serialized
  run troupe_serialized 300 "${mpirun[@]}" -n 2 "$build/bench/troupe_executor_bench" --level=serialized
else
  echo "== troupe: $build/bench/troupe_executor_bench not built yet; troupe columns left blank"
fi

times >"$out/times.after"
busy1=$(busy_jiffies); cpu1=$(child_cpu_s "$out/times.after"); t1=$(date +%s.%N)
load_line=$(awk -v b0="$busy0" -v b1="$busy1" -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" \
  -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" 'BEGIN {
  wall = t1 - t0; ours = c1 - c0; all = (b1 - b0) / hz; other = all - ours; if (other < 0) other = 0
  printf "wall %.0f s; CPU used by the benchmarks %.1f s, by other processes %.1f s (%.0f%% of the machine)", wall, ours, other, 100 * other / (wall * n)
  if (other / (wall * n) > 0.05) printf "\nWARNING: the machine was not idle during the runs; figures are distorted. Run again when it is quiet."
}')
echo "== $load_line"
echo

"$py" - "$out" <<'PY'
import os
import sys

out = sys.argv[1]


def load(name):
    """{key: {field: value}} from the RESULT lines of one output file ({} if absent)."""
    results = {}
    try:
        with open(os.path.join(out, name + ".txt")) as f:
            for line in f:
                if line.startswith("RESULT "):
                    fields = dict(tok.split("=", 1) for tok in line.split()[1:] if "=" in tok)
                    results[fields["name"]] = fields
    except FileNotFoundError:
        pass
    return results


raw = {**load("raw"), **load("raw_single")}
m2, m3, tr = load("mpi4py_n2"), load("mpi4py_n3"), load("troupe")


def value(src, key):
    r = src.get(key) if key else None
    return float(r["value"]) if r else None


def fmt(v):
    if v is None:
        return ""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g} M"
    if a >= 1e3:
        return f"{v / 1e3:.3g} k"
    return f"{v:.3g}"


def ratio(a, b):
    if a is None or not b:
        return ""
    r = a / b
    return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"


# Round trip: compare with the raw ping-pong of the same bytes when troupe says its size.
sizes = [8, 64, 1024]
rt_bytes = int(tr.get("submit_roundtrip", {}).get("bytes", 8))
rt_size = next((s for s in sizes if s >= rt_bytes), sizes[-1])

# (label, unit, raw key, mpi4py key, troupe key)
rows = [
    (f"submit->result round trip (raw: {rt_size} B ping-pong)", "us",
     f"pingpong_{rt_size}B", "submit_roundtrip", "submit_roundtrip"),
    ("empty tasks unchunked (raw: 16 B task/result, 256 in flight)", "tasks/s",
     "tasks_16B", "tasks_unchunked", "tasks_unchunked"),
    ("empty tasks unchunked (raw: 8 B message rate)", "tasks/s",
     "msgrate_8B", "tasks_unchunked", "tasks_unchunked"),
    ("empty tasks chunked (raw: 8 B message rate)", "tasks/s",
     "msgrate_8B", "map_chunk_best", "tasks_chunked"),
    ("map, chunksize=100", "items/s", None, "map_chunk100", "map_chunk100"),
    ("map, chunksize=1000", "items/s", None, "map_chunk1000", "map_chunk1000"),
    ("map, chunksize=10000", "items/s", None, "map_chunk10000", "map_chunk10000"),
    ("map, best of the chunksizes above", "items/s", None, "map_chunk_best", "map_chunk_best"),
    ("map, automatic chunksize (mpi4py: its best)", "items/s", None, "map_chunk_best", "map_auto"),
    ("SCOOP mapReduce seed, 10 ms/element, time / ideal", "x", None,
     "scoop_10ms_vs_ideal", "scoop_10ms_vs_ideal"),
    ("idle serving rank", "% core", None, None, "idle_cpu"),
]
used = {r[4] for r in rows}

print("Raw MPI and troupe: 2 ranks (mpirun -n 2). mpi4py.futures in pre-started mode: rank 0 is")
print("the client, so -n 2 = 1 worker and -n 3 (oversubscribed on 2 cores) = 2 workers.")
print("troupe/mpi4py compares with the same rank count (-n 2, the issue's target) and with the")
print("same number of task-running ranks (-n 3). Values are medians; ratio = troupe / other.")
print()
header = ["measure", "unit", "raw MPI", "mpi4py n=2 (1 worker)", "mpi4py n=3 (2 workers)",
          "troupe n=2", "troupe/raw", "troupe/mpi4py n=2", "troupe/mpi4py n=3"]
print("| " + " | ".join(header) + " |")
print("|" + " --- |" * len(header))


def row(label, unit, r, a, b, t):
    cells = [label, unit, fmt(r), fmt(a), fmt(b), fmt(t), ratio(t, r), ratio(t, a), ratio(t, b)]
    print("| " + " | ".join(cells) + " |")


for label, unit, rk, mk, tk in rows:
    row(label, unit, value(raw, rk), value(m2, mk), value(m3, mk), value(tr, tk))
for key, fields in tr.items():  # troupe-only measures
    if key not in used:
        row(key + " (troupe only)", fields.get("unit", ""), None, None, None, float(fields["value"]))

# Both modes side by side, each against raw MPI at its own thread level.
rs, ts = load("raw_serialized"), load("troupe_serialized")
if ts:
    print()
    print("Both MPI modes with progress threads (docs/thread-levels.md); raw MPI at the same level:")
    print()
    print("| measure | unit | Multiple: troupe | raw MULTIPLE | troupe/raw | Serialized: troupe | raw SERIALIZED | troupe/raw |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    pairs = [("submit->result round trip (raw: 8 B ping-pong)", "us", "submit_roundtrip", "pingpong_8B"),
             ("remote-only empty tasks (raw: 16 B task/result)", "tasks/s", "tasks_remote_unchunked", "tasks_16B"),
             ("empty tasks unchunked", "tasks/s", "tasks_unchunked", None),
             ("map, automatic chunksize", "items/s", "map_auto", None),
             ("map of 20 us elements", "items/s", "map_20us_elements", None),
             ("SCOOP seed, time / ideal", "x", "scoop_10ms_vs_ideal", None),
             ("idle serving rank", "% core", "idle_cpu", None)]
    for label, unit, tk, rk in pairs:
        tm, rm = value(tr, tk), value(raw, rk)
        tsv, rsv = value(ts, tk), value(rs, (rk + "_serialized") if rk else None)
        print(f"| {label} | {unit} | {fmt(tm)} | {fmt(rm)} | {ratio(tm, rm)} | {fmt(tsv)} | {fmt(rsv)} | {ratio(tsv, rsv)} |")

after = load("raw_after")
if after and raw.get("pingpong_8B"):
    before_v, after_v = value(raw, "pingpong_8B"), value(after, "pingpong_8B")
    change = max(before_v, after_v) / min(before_v, after_v)
    print()
    print(f"Raw 8 B ping-pong before troupe {before_v:.3g} us, after {after_v:.3g} us"
          + (": the machine changed mode or was disturbed during the troupe run; compare ratios with care,"
             " or run again." if change > 1.3 else " (same mode)."))

print()
print("Reference rows (raw MPI, 2 ranks; ping-pong = full round trip):")
print()
print("| measure | unit | MPI_THREAD_MULTIPLE | MPI_THREAD_SINGLE | multiple/single |")
print("| --- | --- | --- | --- | --- |")
for key in ("pingpong_8B", "pingpong_64B", "pingpong_1024B", "msgrate_8B", "tasks_16B"):
    mv, sv = value(raw, key), value(raw, key + "_single")
    unit = raw.get(key, raw.get(key + "_single", {})).get("unit", "")
    r = raw.get(key)
    spread = f" [{fmt(float(r['min']))}-{fmt(float(r['max']))}]" if r else ""
    rs = raw.get(key + "_single")
    spread_s = f" [{fmt(float(rs['min']))}-{fmt(float(rs['max']))}]" if rs else ""
    print(f"| {key} | {unit} | {fmt(mv)}{spread} | {fmt(sv)}{spread_s} | {ratio(mv, sv)} |")
PY
echo
echo "$load_line"
exit $status
