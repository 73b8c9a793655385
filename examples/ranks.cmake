# Rank counts for the example smoke runs (read by examples/CMakeLists.txt).
# An example not listed here runs once under `mpiexec -n 1` (TROUPE_EXAMPLE_RANKS_default).
# Examples that exercise several ranks list their counts, e.g.
#   set(TROUPE_EXAMPLE_RANKS_executor_spmd 1 2 4)
# Keep the total small: every run costs about 0.3 s of MPI start-up on the CI machine.
# Distributed-executor examples (root-driven: rank 0 drives, the other ranks serve tasks).
set(TROUPE_EXAMPLE_RANKS_scoop_map_reduce 1 2 4)
set(TROUPE_EXAMPLE_RANKS_pool_executor_map 1 2 4)
set(TROUPE_EXAMPLE_RANKS_apply_async_callbacks 1 2 4)
set(TROUPE_EXAMPLE_RANKS_remote_as_completed 1 2 4)
set(TROUPE_EXAMPLE_RANKS_nested_remote_tasks 1 2 4)
