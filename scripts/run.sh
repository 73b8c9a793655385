#!/usr/bin/env bash
# Builds troupe (Release) and runs the main job: troupe_wordcount on 2 MPI ranks, the word
# frequencies of Debian's license texts (/usr/share/common-licenses) with the distributed
# Executor's map_reduce. A first argument naming another app runs that one instead; the
# other arguments go to the program (try --help). Safe to run again (setup and build are
# incremental).
#   bash scripts/run.sh                            # wordcount, default input
#   bash scripts/run.sh wordcount /usr/share/doc --top 30
#   bash scripts/run.sh mandelbrot [OUT.pgm]       # static vs dynamic scheduling (build/mandelbrot.pgm)
#   bash scripts/run.sh pi --samples 200000000     # Monte Carlo pi over ranks x threads
#   bash scripts/run.sh nqueens --n 12             # N-queens over a work Bag, checked serially
#   bash scripts/run.sh all                        # wordcount, mandelbrot, pi, then nqueens
#   TROUPE_RANKS=4 bash scripts/run.sh mandelbrot
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TROUPE_ROOT"

app=wordcount
case "${1:-}" in
  wordcount | mandelbrot | pi | nqueens | all) app="$1"; shift ;;
esac
case "$app" in
  all) targets=(troupe_wordcount troupe_mandelbrot troupe_pi troupe_nqueens) ;;
  *) targets=("troupe_$app") ;;
esac

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$TROUPE_JOBS" --target "${targets[@]}"

ranks="${TROUPE_RANKS:-2}"
flags=()
if mpirun --version 2>&1 | grep -q "Open MPI"; then
  # More ranks than cores needs --oversubscribe with Open MPI (harmless otherwise).
  if [ "$ranks" -gt "$TROUPE_JOBS" ]; then flags+=(--oversubscribe); fi
fi

run_app() {  # run_app <name> [args...]
  local name="$1"
  shift
  local args=("$@")
  # The image goes to the build tree unless a path is given.
  if [ "$name" = mandelbrot ] && { [ ${#args[@]} -eq 0 ] || [[ "${args[0]}" == -* ]]; }; then
    args=(build/mandelbrot.pgm "${args[@]}")
  fi
  (set -x; mpirun "${flags[@]}" -n "$ranks" "build/apps/$name/troupe_$name" "${args[@]}")
}

if [ "$app" = all ]; then
  run_app wordcount
  run_app mandelbrot
  run_app pi
  run_app nqueens
else
  run_app "$app" "$@"
fi
