#!/usr/bin/env bash
# Builds troupe and runs its tests.
#
#   bash scripts/test.sh            everything: Release build in build/ (warnings are errors),
#                                   all ctest tests; a ThreadSanitizer build in build-tsan/
#                                   running the pool, future and sync unit tests; then an
#                                   AddressSanitizer + UndefinedBehaviorSanitizer build in
#                                   build-asan/ running every test (leaks checked)
#   bash scripts/test.sh --tsan     only the ThreadSanitizer run
#   bash scripts/test.sh --asan     only the ASan + UBSan run
#   bash scripts/test.sh --no-tsan  skip the ThreadSanitizer run (--no-asan: skip ASan + UBSan;
#                                   both: only the Release build and its tests)
#
# Extra arguments after the options go to every ctest call (e.g. -R runtime).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TROUPE_ROOT"

run_main=1
run_tsan=1
run_asan=1
only=()
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --tsan) only+=(tsan) ;;
    --asan) only+=(asan) ;;
    --no-tsan) run_tsan=0 ;;
    --no-asan) run_asan=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done
if [ "${#only[@]}" -gt 0 ]; then
  run_main=0
  run_tsan=0
  run_asan=0
  for stage in "${only[@]}"; do
    case "$stage" in
      tsan) run_tsan=1 ;;
      asan) run_asan=1 ;;
    esac
  done
fi

bash scripts/setup.sh

start=$SECONDS
if [ "$run_main" -eq 1 ]; then
  echo "== Release build (build/)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_WARNINGS_AS_ERRORS=ON
  cmake --build build -j "$TROUPE_JOBS"
  echo "== ctest (build/)"
  # PROCESSORS on each MPI test keeps -j2 from overbooking the cores. Label "slow" (a second
  # compilation of the library: install.embedded_shared) runs in scripts/portability.sh.
  ctest --test-dir build --output-on-failure -j2 -LE '^slow$' "${ctest_args[@]}"
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
  echo "== ctest under ThreadSanitizer: unit tests of pool, future, sync, across, coro"
  # tests/sanitizers/tsan.supp: libstdc++'s uninstrumented exception reference count only.
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(pwd)/tests/sanitizers/tsan.supp ${TSAN_OPTIONS:-}"
  ctest --test-dir build-tsan --output-on-failure -j2 -L 'unit_(pool|future|sync|across|coro)' --no-tests=error "${ctest_args[@]}"
  echo "== ThreadSanitizer run: $((SECONDS - tsan_start)) s"
fi

if [ "$run_asan" -eq 1 ]; then
  asan_start=$SECONDS
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/)"
  # Everything is built and run: unit, MPI, examples, apps, the fuzz corpus replay. Leaks
  # are checked; tests/sanitizers/lsan.supp suppresses Open MPI's own (by library name).
  # Warnings are not errors here, as for TSan (g++ 12 warns falsely on instrumented code).
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_SANITIZE=address,undefined \
        -DTROUPE_WARNINGS_AS_ERRORS=OFF
  cmake --build build-asan -j "$TROUPE_JOBS"
  echo "== ctest under ASan + UBSan: every test but compile_fail and install (they run no troupe code)"
  ctest --test-dir build-asan --output-on-failure -j2 -LE '^(compile_fail|install)$' --no-tests=error "${ctest_args[@]}"
  echo "== ASan + UBSan run: $((SECONDS - asan_start)) s"
fi
echo "== test.sh: all passed in $((SECONDS - start)) s"
