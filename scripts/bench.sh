#!/usr/bin/env bash
# Builds the thread-pool benchmarks (Release, -O2) in build-bench/, runs them with
# repetitions, and prints the ratio table of docs/performance.md.
#
#   scripts/bench.sh                      # full run: 5 repetitions, about 2.5 minutes on 2 cores
#   scripts/bench.sh --benchmark_filter=a_submit     # extra arguments go to the benchmark
#
# Environment: TROUPE_BENCH_REPETITIONS (5), TROUPE_BENCH_BUILD_DIR (build-bench),
# TROUPE_BENCH_THREADS (N, default: online CPUs), TROUPE_SPIN_US (pool spin, default 50).
# Needs cmake, a C++20 compiler, Open MPI, libbenchmark-dev and libtbb-dev; when the
# configure step fails and scripts/setup.sh exists, it is run once and configure retried.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${TROUPE_BENCH_BUILD_DIR:-$root/build-bench}"
reps="${TROUPE_BENCH_REPETITIONS:-5}"
json="$build/pool_bench.json"

source "$root/scripts/bench-configure.sh"
troupe_configure_bench || exit 1

echo "== build"
cmake --build "$build" --target troupe_pool_bench -j "$(nproc)"

# Other processes on the machine distort every figure: measure how much CPU they took.
busy_jiffies() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# `times` must run in this shell (not in a $(...) subshell) to see the children's CPU time.
child_cpu_s() { awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"; }

# Repetitions are interleaved at random, so that a burst of foreign load spreads over
# many cases instead of spoiling all repetitions of one.
echo "== run ($reps repetitions, interleaved; JSON in $json)"
times >"$build/times.before"
busy0=$(busy_jiffies); cpu0=$(child_cpu_s "$build/times.before"); t0=$(date +%s.%N)
"$build/bench/troupe_pool_bench" \
  --benchmark_repetitions="$reps" \
  --benchmark_display_aggregates_only=true \
  --benchmark_enable_random_interleaving=true \
  --benchmark_out="$json" --benchmark_out_format=json \
  "$@"

echo
times >"$build/times.after"
busy1=$(busy_jiffies); cpu1=$(child_cpu_s "$build/times.after"); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK); ncpu=$(nproc)
awk -v b0="$busy0" -v b1="$busy1" -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v n="$ncpu" 'BEGIN {
  wall = t1 - t0; ours = c1 - c0; all = (b1 - b0) / hz; other = all - ours; if (other < 0) other = 0
  printf "wall %.0f s; CPU used by the benchmark %.1f s, by other processes %.1f s (%.0f%% of the machine)\n", wall, ours, other, 100 * other / (wall * n)
  if (other / (wall * n) > 0.05) print "WARNING: the machine was not idle during the run; figures are distorted. Run again when it is quiet."
}'
echo "== summary"
/usr/bin/python3 "$root/bench/summarize.py" "$json"
