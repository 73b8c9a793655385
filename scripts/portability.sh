#!/usr/bin/env bash
# Builds and tests troupe with each MPI implementation x compiler (the portability matrix)
# and prints a table. Not part of .ci/run: a cell is a full Release build plus the whole
# ctest suite (tens of minutes each on 2 cores). docs/portability.md explains the cells.
#
#   bash scripts/portability.sh                       every cell (see CELLS below)
#   bash scripts/portability.sh --cells ompi-gcc,mpich-gcc
#   bash scripts/portability.sh --jobs 2 --ctest-jobs 2 --keep-going -- -R '^mpi\.'
#
# Options:
#   --cells a,b,...   cells to run (default: ompi-gcc,ompi-clang,mpich-gcc,mpich-clang)
#   --jobs N          build jobs (default: nproc)
#   --ctest-jobs N    ctest -j (default: 2; PROCESSORS on the MPI tests keeps it fair)
#   --keep-going      go on with the next cells after a failing one (default: stop)
#   --build-root DIR  where the cells' build dirs go (default: build-port)
#   --no-install      do not apt-get missing packages (a cell whose tools are missing SKIPs)
#   --targets a,b     build only these targets (default: all; pair it with a ctest -R)
#   -- ARGS           extra arguments for every ctest call (e.g. -R '^mpi\.', -L serialized)
#
# Each cell builds in <build-root>/<cell> (Release, warnings are errors) and runs ctest
# there. The table: cell, MPI library and compiler versions, tests passed/total (and by
# thread level: FUNNELED = mpi.host_code, example.host_solver and the FUNNELED singleton
# test, SERIALIZED = mpi.serialized, MULTIPLE = the rest), seconds, failing tests, all in
# one Markdown table. Exit status: 0 when every
# cell that ran passed (SKIP cells print why and do not fail the run), 1 otherwise.
# Installing MPICH next to Open MPI never changes the default `mpi`/`mpirun` alternatives:
# they are recorded before apt-get and set back if the install moved them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TROUPE_ROOT"

cells_arg="ompi-gcc,ompi-clang,mpich-gcc,mpich-clang"
jobs="$TROUPE_JOBS"
ctest_jobs=2
keep_going=0
install=1
build_root="build-port"
targets=()
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cells) cells_arg="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --ctest-jobs) ctest_jobs="$2"; shift 2 ;;
    --keep-going) keep_going=1; shift ;;
    --build-root) build_root="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    --targets) IFS=',' read -r -a targets <<<"$2"; shift 2 ;;
    --) shift; ctest_args=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#'; exit 0 ;;
    *) echo "portability.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
  esac
done
IFS=',' read -r -a cells <<<"$cells_arg"
for cell in "${cells[@]}"; do
  case "$cell" in
    ompi-gcc|ompi-clang|mpich-gcc|mpich-clang) ;;
    *) echo "portability.sh: unknown cell '$cell' (ompi-gcc, ompi-clang, mpich-gcc, mpich-clang)" >&2; exit 2 ;;
  esac
done

# --- packages (idempotent; the default MPI alternatives stay as they were) ---------------
if [ "$install" -eq 1 ]; then
  bash scripts/setup.sh
  want=(mpich libmpich-dev clang-14 python3)
  missing=()
  for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
    saved=()
    for alt in mpi mpirun; do
      cur=$(update-alternatives --query "$alt" 2>/dev/null | sed -n 's/^Value: //p' || true)
      [ -n "$cur" ] && saved+=("$alt=$cur")
    done
    echo "portability: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y "${missing[@]}"
    for entry in "${saved[@]}"; do
      alt=${entry%%=*}
      val=${entry#*=}
      now=$(update-alternatives --query "$alt" 2>/dev/null | sed -n 's/^Value: //p' || true)
      if [ "$now" != "$val" ]; then
        echo "portability: the install moved the '$alt' alternative to $now; setting it back to $val"
        "${SUDO[@]}" update-alternatives --set "$alt" "$val"
      fi
    done
  fi
fi

# --- one cell -------------------------------------------------------------------------
declare -A row_status row_mpi row_cxx row_tests row_levels row_secs row_failed
any_failed=0

skip_cell() {  # cell reason
  row_status[$1]="SKIP"
  row_failed[$1]="$2"
  echo "portability: $1: SKIP: $2"
}

run_cell() {
  local cell=$1 mpi=${1%%-*} cc=${1##*-}
  local dir="$build_root/$cell" start=$SECONDS
  local cfg=()
  case "$cc" in
    gcc)
      command -v g++ >/dev/null || { skip_cell "$cell" "g++ not installed"; return 0; }
      cfg+=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_C_COMPILER=gcc) ;;
    clang)
      command -v clang++-14 >/dev/null || { skip_cell "$cell" "clang++-14 not installed (apt-get install clang-14)"; return 0; }
      cfg+=(-DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14) ;;
  esac
  local want_lib
  case "$mpi" in
    ompi)
      want_lib="Open MPI"
      [ -x /usr/bin/mpicxx.openmpi ] || { skip_cell "$cell" "Open MPI not installed (libopenmpi-dev openmpi-bin)"; return 0; }
      cfg+=(-DMPI_CXX_COMPILER=/usr/bin/mpicxx.openmpi -DMPI_C_COMPILER=/usr/bin/mpicc.openmpi
            -DMPIEXEC_EXECUTABLE=/usr/bin/mpiexec.openmpi) ;;
    mpich)
      want_lib="MPICH"
      [ -x /usr/bin/mpicxx.mpich ] || { skip_cell "$cell" "MPICH not installed (mpich libmpich-dev)"; return 0; }
      cfg+=(-DMPI_CXX_COMPILER=/usr/bin/mpicxx.mpich -DMPI_C_COMPILER=/usr/bin/mpicc.mpich
            -DMPIEXEC_EXECUTABLE=/usr/bin/mpiexec.mpich) ;;
  esac
  mkdir -p "$dir"
  # A cache from another compiler or MPI: CMake would delete it on the compiler change and
  # configure again WITHOUT the MPI settings (FindMPI then finds the default MPI). Start fresh.
  if [ -f "$dir/CMakeCache.txt" ]; then
    local cached_cxx cached_mpi want_cxx want_mpi
    cached_cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
    cached_mpi=$(sed -n 's/^MPI_CXX_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
    want_cxx=$(printf '%s\n' "${cfg[@]}" | sed -n 's/^-DCMAKE_CXX_COMPILER=//p')
    want_mpi=$(printf '%s\n' "${cfg[@]}" | sed -n 's/^-DMPI_CXX_COMPILER=//p')
    if [ "$(realpath "$cached_cxx" 2>/dev/null)" != "$(realpath "$(command -v "$want_cxx")" 2>/dev/null)" ] ||
       [ "$(realpath "$cached_mpi" 2>/dev/null)" != "$(realpath "$want_mpi" 2>/dev/null)" ]; then
      echo "portability: $dir was configured with $cached_cxx / $cached_mpi: configuring afresh"
      rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
    fi
  fi
  echo "== $cell: configure ($dir)"
  if ! cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_WARNINGS_AS_ERRORS=ON \
      "${cfg[@]}" >"$dir/portability-configure.log" 2>&1; then
    tail -30 "$dir/portability-configure.log"
    row_status[$cell]="FAIL"; row_failed[$cell]="configure failed ($dir/portability-configure.log)"
    row_secs[$cell]=$((SECONDS - start)); return 1
  fi
  # FindMPI must have picked the implementation the cell names (never the default one).
  local lib
  lib=$(sed -n 's/^-- troupe: MPI library: //p' "$dir/portability-configure.log" | tail -1)
  row_mpi[$cell]="$lib"
  row_cxx[$cell]=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
  row_cxx[$cell]="$("${row_cxx[$cell]}" --version | head -1 | sed 's/ (.*)//; s/Debian //')"
  if [[ "$lib" != *"$want_lib"* ]]; then
    row_status[$cell]="FAIL"; row_failed[$cell]="configure found '$lib', not $want_lib"
    row_secs[$cell]=$((SECONDS - start)); return 1
  fi
  grep '^-- troupe: ' "$dir/portability-configure.log" | grep -v 'MPI library' || true
  echo "== $cell: build"
  local target_args=()
  [ "${#targets[@]}" -gt 0 ] && target_args=(--target "${targets[@]}")
  if ! cmake --build "$dir" -j "$jobs" "${target_args[@]}" >"$dir/portability-build.log" 2>&1; then
    grep -E 'error|FAILED' "$dir/portability-build.log" | head -30
    row_status[$cell]="FAIL"; row_failed[$cell]="build failed ($dir/portability-build.log)"
    row_secs[$cell]=$((SECONDS - start)); return 1
  fi
  echo "== $cell: ctest"
  local junit="$dir/portability-junit.xml" rc=0
  rm -f "$junit"
  ctest --test-dir "$dir" -j "$ctest_jobs" --output-on-failure --output-junit "$(realpath "$junit")" \
    "${ctest_args[@]}" >"$dir/portability-ctest.log" 2>&1 || rc=$?
  tail -5 "$dir/portability-ctest.log"
  row_secs[$cell]=$((SECONDS - start))
  if [ ! -s "$junit" ]; then
    row_status[$cell]="FAIL"; row_failed[$cell]="ctest wrote no results (exit $rc; $dir/portability-ctest.log)"
    return 1
  fi
  # passed/total, by thread level, and the failing names, from ctest's JUnit file.
  local summary
  summary=$(python3 - "$junit" <<'PY'
import re, sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
levels = {"F": [0, 0], "S": [0, 0], "M": [0, 0]}
total = passed = 0
failed = []
for c in cases:
    name = c.get("name")
    status = c.get("status", "run")
    skipped = c.find("skipped")
    if status == "disabled":
        continue
    if status == "notrun" and skipped is not None and "SKIP_" in (skipped.get("message") or ""):
        continue  # the test skipped itself (SKIP_RETURN_CODE / SKIP_REGULAR_EXPRESSION)
    # "notrun" otherwise: a missing executable or a failed fixture, a failure for ctest too.
    bad = c.find("failure") is not None or c.find("error") is not None or status in ("fail", "notrun")
    if re.match(r"mpi\.host_code\.|example\.host_solver\.|unit\.RuntimeSingleton\.KeepsTheUsersOscSetting$", name):
        lvl = "F"
    elif name.startswith("mpi.serialized."):
        lvl = "S"
    else:
        lvl = "M"
    total += 1
    levels[lvl][1] += 1
    if bad:
        failed.append(name)
    else:
        passed += 1
        levels[lvl][0] += 1
print(f"{passed}/{total}")
print(" ".join(f"{k} {v[0]}/{v[1]}" for k, v in levels.items()))
print(" ".join(failed) if failed else "-")
PY
)
  row_tests[$cell]=$(sed -n 1p <<<"$summary")
  row_levels[$cell]=$(sed -n 2p <<<"$summary")
  row_failed[$cell]=$(sed -n 3p <<<"$summary")
  if [ "$rc" -eq 0 ] && [ "${row_failed[$cell]}" = "-" ]; then
    row_status[$cell]="PASS"
  else
    row_status[$cell]="FAIL"
    return 1
  fi
}

for cell in "${cells[@]}"; do
  if ! run_cell "$cell"; then
    any_failed=1
    if [ "$keep_going" -eq 0 ]; then
      echo "portability: $cell failed; stopping (--keep-going runs the other cells)"
      break
    fi
  fi
done

# --- the table ------------------------------------------------------------------------
echo
echo "| cell | MPI | compiler | result | tests passed/total | by level (FUNNELED, SERIALIZED, MULTIPLE) | seconds | failing tests / reason |"
echo "|---|---|---|---|---|---|---|---|"
for cell in "${cells[@]}"; do
  [ -n "${row_status[$cell]:-}" ] || continue
  echo "| $cell | ${row_mpi[$cell]:--} | ${row_cxx[$cell]:--} | ${row_status[$cell]} | ${row_tests[$cell]:--} | ${row_levels[$cell]:--} | ${row_secs[$cell]:--} | ${row_failed[$cell]:--} |"
done
exit "$any_failed"
