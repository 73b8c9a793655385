#!/usr/bin/env bash
# Builds troupe and runs its tests.
#
#   bash scripts/test.sh            everything: Release build in build/ (warnings are errors),
#                                   all ctest tests, then a ThreadSanitizer build in
#                                   build-tsan/ running the pool, future and sync unit tests
#   bash scripts/test.sh --no-tsan  only the Release build and its tests
#   bash scripts/test.sh --tsan     only the ThreadSanitizer run
#
# Extra arguments after the options go to every ctest call (e.g. -R runtime).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TROUPE_ROOT"

run_main=1
run_tsan=1
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --tsan) run_main=0; run_tsan=1 ;;
    --no-tsan) run_main=1; run_tsan=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done

bash scripts/setup.sh

start=$SECONDS
if [ "$run_main" -eq 1 ]; then
  echo "== Release build (build/)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_WARNINGS_AS_ERRORS=ON
  cmake --build build -j "$TROUPE_JOBS"
  echo "== ctest (build/)"
  # PROCESSORS on each MPI test keeps -j2 from overbooking the cores.
  ctest --test-dir build --output-on-failure -j2 "${ctest_args[@]}"
  echo "== Release build and tests: $((SECONDS - start)) s"
fi

if [ "$run_tsan" -eq 1 ]; then
  tsan_start=$SECONDS
  echo "== ThreadSanitizer build (build-tsan/)"
  # Only the unit tests: examples, apps and MPI tests are not built (Open MPI itself is not
  # TSan-instrumented and reports false positives). Warnings are not errors here: the
  # Release build enforces them, and g++ 12 emits false -Wmaybe-uninitialized under TSan.
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_SANITIZE=thread \
        -DTROUPE_WARNINGS_AS_ERRORS=OFF -DTROUPE_BUILD_EXAMPLES=OFF -DTROUPE_BUILD_APPS=OFF
  mapfile -t unit_targets < <(ninja -C build-tsan -t targets all | sed -n 's/^\(test_unit_[A-Za-z0-9_]*\): .*/\1/p' | sort -u)
  if [ "${#unit_targets[@]}" -eq 0 ]; then
    echo "test.sh: no unit test targets found in build-tsan" >&2
    exit 1
  fi
  cmake --build build-tsan -j "$TROUPE_JOBS" --target "${unit_targets[@]}"
  echo "== ctest under ThreadSanitizer: unit tests of pool, future, sync"
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
  ctest --test-dir build-tsan --output-on-failure -j2 -L 'unit_(pool|future|sync)' --no-tests=error "${ctest_args[@]}"
  echo "== ThreadSanitizer run: $((SECONDS - tsan_start)) s"
fi
echo "== test.sh: all passed in $((SECONDS - start)) s"
