#!/usr/bin/env bash
# Builds troupe (Release) and runs the main job: Monte Carlo pi on 2 MPI ranks, each rank
# running a thread pool. Arguments go to the program (try --help).
#   bash scripts/run.sh
#   TROUPE_RANKS=4 bash scripts/run.sh --samples 200000000
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TROUPE_ROOT"

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$TROUPE_JOBS" --target troupe_pi

ranks="${TROUPE_RANKS:-2}"
flags=()
if mpirun --version 2>&1 | grep -q "Open MPI"; then
  # More ranks than cores needs --oversubscribe with Open MPI (harmless otherwise).
  if [ "$ranks" -gt "$TROUPE_JOBS" ]; then flags+=(--oversubscribe); fi
fi
set -x
mpirun "${flags[@]}" -n "$ranks" build/apps/pi/troupe_pi "$@"
