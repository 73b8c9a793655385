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
# Cross-rank objects (troupe/across): each runs at 1, 2 and 4 ranks; the ones whose
# story needs three ranks (the Pipe pipeline, A B C by Condition) run at 3 (and 4).
foreach(name barrier_phase event_release semaphore_ranks joinable_queue_ranks bag_search)
  set(TROUPE_EXAMPLE_RANKS_${name} 1 2 4)
endforeach()
set(TROUPE_EXAMPLE_RANKS_pipe_pipeline 3)
set(TROUPE_EXAMPLE_RANKS_condition_abc 3 4)
# Windows and the Dict (troupe/window, troupe/across/dict.hpp): each at 1, 2 and 4 ranks.
foreach(name shared_value_array shared_counter_lock heat_stencil dict_wordcount)
  set(TROUPE_EXAMPLE_RANKS_${name} 1 2 4)
endforeach()
# Inside host codes (issue 13): Boost.MPI mixed with troupe; a plain-MPI solver calling troupe phases.
foreach(name boost_mpi_mix host_solver)
  set(TROUPE_EXAMPLE_RANKS_${name} 1 2 4)
endforeach()
# Coroutines across ranks (issue 11): a halo exchange awaited by tasks, a remote map awaited.
foreach(name coro_halo coro_remote_map)
  set(TROUPE_EXAMPLE_RANKS_${name} 1 2 4)
endforeach()
# spawn_workers spawns its own workers when started alone (a singleton: examples/CMakeLists.txt
# runs it so); under mpirun -n 3 it uses the launched ranks instead.
set(TROUPE_EXAMPLE_RANKS_spawn_workers 3)
