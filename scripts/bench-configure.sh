# Sourced by scripts/bench.sh and scripts/compare-mpi4py.sh: configures the benchmark build
# ($build: Release -O2, benchmarks on, tests/examples/apps off). When configure fails, runs
# scripts/setup.sh once and tries again. Needs $root and $build.
troupe_configure_bench() {
  local generator=()
  if command -v ninja >/dev/null 2>&1 && [[ ! -f "$build/CMakeCache.txt" || -f "$build/build.ninja" ]]; then
    generator=(-G Ninja)
  fi
  local configure=(cmake -S "$root" -B "$build" "${generator[@]}"
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG"
    -DTROUPE_BUILD_BENCHMARKS=ON -DTROUPE_BUILD_TESTS=OFF
    -DTROUPE_BUILD_EXAMPLES=OFF -DTROUPE_BUILD_APPS=OFF)
  echo "== configure $build"
  "${configure[@]}" >"$build.configure.log" 2>&1 && return 0
  if [[ -f "$root/scripts/setup.sh" ]]; then
    echo "configure failed (see $build.configure.log); running scripts/setup.sh once"
    bash "$root/scripts/setup.sh" || return 1
    "${configure[@]}" >"$build.configure.log" 2>&1 && return 0
  fi
  cat "$build.configure.log"
  return 1
}
