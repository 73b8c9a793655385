#!/usr/bin/env bash
# Fuzzes the decoders that see bytes from other ranks (tests/fuzz; docs/testing.md) with
# clang 14's libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   bash scripts/fuzz.sh                 every target for 600 s, one after the other
#   bash scripts/fuzz.sh 60              every target for 60 s
#   bash scripts/fuzz.sh 600 wire        one target (batch, wire)
#   bash scripts/fuzz.sh --parallel 600  all targets at once, one process each
#   bash scripts/fuzz.sh --no-merge ...  leave the committed corpus as it is
#
# Builds the libFuzzer binaries in build-fuzz/ (-DTROUPE_FUZZ=ON, clang++-14). Each target
# starts from its committed corpus tests/fuzz/corpus/<target>/ (its seeds() if that is
# empty) and writes what it finds to build-fuzz/corpus/<target>/. At the end both are merged (libFuzzer -merge=1 into a fresh
# directory: the smallest set of inputs with the same coverage) and the result replaces the
# committed corpus, which ctest replays in every build (fuzz.<target>.corpus).
# Crashing inputs go to build-fuzz/artifacts/<target>/; logs to build-fuzz/fuzz-<target>.log.
# The runs are niced (-n 10). Exit status 1 if any target crashed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TROUPE_ROOT"

all_targets=(batch wire)
seconds=600
parallel=0
merge=1
targets=()
for arg in "$@"; do
  case "$arg" in
    --parallel) parallel=1 ;;
    --no-merge) merge=0 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    [0-9]*) seconds="$arg" ;;
    *)
      if [[ " ${all_targets[*]} " == *" $arg "* ]]; then
        targets+=("$arg")
      else
        echo "fuzz.sh: unknown target or option '$arg' (targets: ${all_targets[*]})" >&2
        exit 2
      fi
      ;;
  esac
done
[ "${#targets[@]}" -gt 0 ] || targets=("${all_targets[@]}")

bash scripts/setup.sh --fuzz

echo "== libFuzzer build (build-fuzz/, clang++-14, ASan + UBSan)"
mkdir -p build-fuzz
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
      -DTROUPE_SANITIZE=address,undefined -DTROUPE_FUZZ=ON -DTROUPE_WARNINGS_AS_ERRORS=OFF \
      -DTROUPE_BUILD_EXAMPLES=OFF -DTROUPE_BUILD_APPS=OFF >build-fuzz/configure.log 2>&1 ||
  { cat build-fuzz/configure.log; exit 1; }
cmake --build build-fuzz -j "$TROUPE_JOBS" --target "${targets[@]/#/fuzz_}"

# fuzz_one <target>: one libFuzzer run of $seconds; its log is build-fuzz/fuzz-<target>.log.
fuzz_one() {
  local t="$1"
  local committed="tests/fuzz/corpus/$t" found="build-fuzz/corpus/$t" artifacts="build-fuzz/artifacts/$t"
  mkdir -p "$committed" "$found" "$artifacts"
  if [ -z "$(ls -A "$committed")" ]; then  # a new target: start from its seeds()
    TROUPE_FUZZ_WRITE_SEEDS="$committed" "build-fuzz/tests/fuzz/fuzz_$t" >/dev/null
  fi
  # New inputs go to the first directory; the committed corpus is only read. -timeout=60: a
  # 17-byte input may legally make the decoder create 2^24 empty elements (the codec's cap,
  # docs/wire.md), which takes seconds when instrumented on a busy machine.
  nice -n 10 "build-fuzz/tests/fuzz/fuzz_$t" "$found" "$committed" \
    -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"build-fuzz/fuzz-$t.log" 2>&1
}

echo "== fuzzing ${targets[*]} for $seconds s each$([ "$parallel" -eq 1 ] && echo ', in parallel')"
status=0
declare -A rc
if [ "$parallel" -eq 1 ]; then
  declare -A pids
  for t in "${targets[@]}"; do
    fuzz_one "$t" &
    pids[$t]=$!
  done
  for t in "${targets[@]}"; do
    if wait "${pids[$t]}"; then rc[$t]=0; else rc[$t]=$?; fi
  done
else
  for t in "${targets[@]}"; do
    if fuzz_one "$t"; then rc[$t]=0; else rc[$t]=$?; fi
  done
fi

for t in "${targets[@]}"; do
  log="build-fuzz/fuzz-$t.log"
  # The last status line ("#N DONE cov: ... ft: ... corp: ... exec/s: ...") and the totals.
  last=$(grep -a -E '^#[0-9]+' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  crashes=$(find "build-fuzz/artifacts/$t" -type f | wc -l)
  echo "$t: rc ${rc[$t]}, ${execs:-?} executions, ${rate:-?} exec/s, crash artifacts: $crashes"
  echo "   $last"
  if [ "${rc[$t]}" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    status=1
    grep -a -m 5 -E 'ERROR|SUMMARY|fuzz check failed|runtime error' "$log" | sed 's/^/   /' || true
  fi
done

if [ "$merge" -eq 1 ] && [ "$status" -eq 0 ]; then
  for t in "${targets[@]}"; do
    fresh="build-fuzz/corpus-merged/$t"
    rm -rf "$fresh"
    mkdir -p "$fresh"
    nice -n 10 "build-fuzz/tests/fuzz/fuzz_$t" -merge=1 -max_len=4096 "$fresh" "tests/fuzz/corpus/$t" \
      "build-fuzz/corpus/$t" >"build-fuzz/merge-$t.log" 2>&1 || { tail -n 20 "build-fuzz/merge-$t.log"; exit 1; }
    rm -rf "tests/fuzz/corpus/$t"
    mv "$fresh" "tests/fuzz/corpus/$t"
    echo "$t: committed corpus merged: $(find "tests/fuzz/corpus/$t" -type f | wc -l) files," \
         "$(du -sk "tests/fuzz/corpus/$t" | cut -f1) KiB (git status tests/fuzz/corpus)"
  done
fi
exit "$status"
