# Rank counts for the example smoke runs (read by examples/CMakeLists.txt).
# An example not listed here runs once under `mpiexec -n 1` (TROUPE_EXAMPLE_RANKS_default).
# Examples that exercise several ranks list their counts, e.g.
#   set(TROUPE_EXAMPLE_RANKS_executor_spmd 1 2 4)
# Keep the total small: every run costs about 0.3 s of MPI start-up on the CI machine.
