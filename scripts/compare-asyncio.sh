#!/usr/bin/env bash
# Issue 11's anchor, in one run: the crawler shape in Python asyncio (bench/asyncio_crawler.py,
# Debian's /usr/bin/python3) and in troupe (build/bench/troupe_coro_bench --only-crawl), the
# same shapes back to back, then each rate and the ratio troupe / asyncio.
#
#   scripts/compare-asyncio.sh [reps]      # reps per shape and side (default 3)
#
# Shapes (requests, at most in flight, simulated latency): the per-request overhead shows
# when the latency does not cap the rate, so 100,000 requests with 1,000 in flight and 1 ms
# requests (ideal 10^6 req/s) or a bare yield (sleep(0)); and the example's own shape
# (1,000 requests of 5 ms, 10 in flight: both capped at 2,000 req/s by the shape itself).
# Environment: TROUPE_BUILD_DIR (build), TROUPE_COMPARE_SKIP_BUILD=1 to use what is built.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${TROUPE_BUILD_DIR:-$root/build}"
reps="${1:-3}"
py=/usr/bin/python3  # Debian's python3; a pyenv shim on PATH would measure another interpreter
bench="$build/bench/troupe_coro_bench"

if [[ "${TROUPE_COMPARE_SKIP_BUILD:-0}" != 1 ]]; then
  cmake --build "$build" --target troupe_coro_bench -j 2 || exit 1
fi
[[ -x "$bench" ]] || { echo "no $bench (configure with -DTROUPE_BUILD_BENCHMARKS=ON)" >&2; exit 1; }

echo "== load: $(cat /proc/loadavg)"
printf '%-34s %14s %14s %9s\n' "shape (requests/inflight/latency)" "asyncio req/s" "troupe req/s" "ratio"
status=0
for shape in "100000 1000 1000" "100000 1000 0" "1000 10 5000"; do
  read -r n k l <<<"$shape"
  py_line=$("$py" "$root/bench/asyncio_crawler.py" --requests "$n" --inflight "$k" --latency-us "$l" --reps "$reps" |
    grep '^RESULT') || { echo "asyncio_crawler.py failed on $shape" >&2; status=1; continue; }
  tr_line=$("$bench" --only-crawl --requests "$n" --inflight "$k" --latency-us "$l" --reps "$reps" | grep '^RESULT') ||
    { echo "troupe_coro_bench failed on $shape" >&2; status=1; continue; }
  py_rate=$(sed -E 's/.* value=([^ ]+).*/\1/' <<<"$py_line")
  tr_rate=$(sed -E 's/.* value=([^ ]+).*/\1/' <<<"$tr_line")
  ratio=$(awk -v a="$tr_rate" -v b="$py_rate" 'BEGIN { printf "%.1f", a / b }')
  printf '%-34s %14s %14s %8sx\n' "$n/$k/${l}us" "$py_rate" "$tr_rate" "$ratio"
  echo "   $py_line"
  echo "   $tr_line"
  echo "RATIO name=crawl_troupe_over_asyncio_${n}req_${k}inflight_${l}us value=$ratio"
done
echo "== load: $(cat /proc/loadavg)"
exit $status
