# Sourced by the scripts: environment for running Open MPI programs here.
# mpirun refuses to run as root unless BOTH variables are set (one is not enough).
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
TROUPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TROUPE_JOBS="$(nproc 2>/dev/null || echo 2)"
export TROUPE_ROOT TROUPE_JOBS
