#pragma once
/// @file
/// @brief How many threads a rank should run, and which CPUs it may use — without MPI.
///
/// This header does not include `<mpi.h>`: the ThreadPool (and anything else that
/// runs before or without a troupe::Runtime) sizes itself with
/// troupe::default_thread_count(). The rule, highest priority first:
///
/// 1. an explicit count (RuntimeOptions::threads, a ThreadPool argument);
/// 2. the environment variable `TROUPE_THREADS` (read by troupe::settings());
/// 3. `SLURM_CPUS_PER_TASK` (set by `srun -c N` / `sbatch --cpus-per-task N`);
/// 4. the CPUs in this process's affinity mask — divided among the ranks of the
///    node only when the mask is the whole node (singleton, `--bind-to none`,
///    oversubscribed `mpirun`), because `mpirun -n 2` already binds each rank to
///    its own core;
/// 5. 1.
///
/// docs/runtime.md explains the rule with the measurements behind it.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

/// @brief Where a thread count came from (for messages and Runtime::info()).
enum class ThreadCountSource {
  Option,            ///< an explicit count given by the program
  TroupeThreads,     ///< the `TROUPE_THREADS` environment variable
  SlurmCpusPerTask,  ///< the `SLURM_CPUS_PER_TASK` environment variable
  Affinity,          ///< the CPUs of this process's affinity mask (maybe shared by the node's ranks)
  Fallback,          ///< nothing was known: 1
};

/// @brief Human-readable name of a ThreadCountSource (`"TROUPE_THREADS"`, `"affinity"`, ...).
/// @note Thread-safe, never blocks, never throws.
std::string_view to_string(ThreadCountSource source) noexcept;

/// @brief Everything the thread-count rule looks at; see resolve_thread_count().
///
/// Kept as plain data so that the rule can be tested without touching the
/// environment or the scheduler.
struct ThreadCountInputs {
  std::size_t option = 0;                     ///< explicit count; 0 means "not given"
  std::optional<std::size_t> troupe_threads;  ///< Settings::threads (`TROUPE_THREADS`), validated
  const char* slurm_cpus_per_task = nullptr;  ///< value of `SLURM_CPUS_PER_TASK`, or nullptr
  std::size_t affinity_cpus = 0;              ///< CPUs in the affinity mask; 0 if unknown
  std::size_t node_cpus = 0;                  ///< CPUs online on the node; 0 if unknown
  std::size_t node_ranks = 1;                 ///< ranks sharing this node (>= 1)
  std::size_t node_rank = 0;                  ///< this rank's index among them
};

/// @brief The outcome of the thread-count rule.
struct ThreadCount {
  std::size_t count = 1;                                   ///< threads to run (>= 1)
  ThreadCountSource source = ThreadCountSource::Fallback;  ///< which rule decided
  /// True when the count came from an affinity mask smaller than the node
  /// (`mpirun` bound this rank to part of the machine): the Runtime then says once
  /// how to get more threads.
  bool bound_to_part_of_node = false;
};

/// @brief Applies the thread-count rule to @p in.
/// @return the count, its source, and whether the rank is bound to part of the node.
///         An unparsable or out-of-range `SLURM_CPUS_PER_TASK` is ignored (Slurm sets it,
///         users do not); a set troupe_threads is used as given (settings() validated it).
/// @note Pure function: thread-safe, never blocks, never throws.
ThreadCount resolve_thread_count(const ThreadCountInputs& in);

/// @brief What decides whether a rank's threads share cores with other ranks' threads.
///
/// Plain data, gathered by troupe::Runtime over the node's ranks (one `MPI_Allreduce` on
/// Runtime::node_comm()), so that the rule can be tested without MPI or a scheduler.
struct CoreSharingInputs {
  std::optional<std::size_t> setting;  ///< Settings::shared_cores (`TROUPE_SHARED_CORES`): 0, 1 or nullopt (auto)
  std::vector<int> affinity;           ///< this rank's CPUs (affinity_cpus())
  /// Indexed by CPU id: how many of the node's ranks (this one included) may run there.
  std::vector<int> ranks_per_cpu;
  std::size_t node_threads = 0;  ///< worker threads of all the node's ranks together
};

/// @brief Whether this rank's threads share cores with other ranks' threads.
///
/// The setting wins when given (0: no, 1: yes). Otherwise (auto) the cores are shared when
/// both hold: a CPU of this rank's mask is also in another rank's mask (the masks overlap:
/// `--bind-to none`, `--oversubscribe`, or two ranks bound to one core), and the node's ranks
/// run more worker threads than the CPUs their masks cover together. So 4 ranks of 1 thread
/// on 2 CPUs share, 2 unbound ranks of 1 thread on 2 CPUs do not (the scheduler gives each
/// a CPU), and 2 ranks each bound to its own core never do, whatever their thread count (the
/// threads of one rank share their cores; spinning between them is what the wait's yields are
/// for).
/// @return true when waits should sleep rather than spin.
/// @note Pure function: thread-safe, never blocks, never throws.
bool resolve_shared_cores(const CoreSharingInputs& in) noexcept;

/// @brief A binding trap: a way the launcher's placement of a rank wastes or fights over CPUs.
enum class BindingTrap {
  /// The rank is bound to one CPU of a node with more, so the thread-count rule gave it one
  /// thread (Open MPI's `mpirun` binds to a core when it starts 1 or 2 ranks).
  OneCoreOfNode,
  /// The rank runs more threads than the CPUs of its affinity mask (`TROUPE_THREADS`, a
  /// program's count or `srun -c` above the binding): its threads time-share those CPUs.
  ThreadsOverMask,
  /// The rank is bound to part of the node, and another rank of the node is bound to some
  /// of the same CPUs (a hand-written cpu list, two jobs on one node): both fight for them.
  OverlappingBinding,
  /// The node's ranks run more worker threads than the CPUs of their masks together, and
  /// this rank shares CPUs with another (`--oversubscribe`): troupe's waits then sleep
  /// instead of spinning (Runtime::shared_cores()), and every thread runs slower.
  SharedCores,
};

/// @brief The name of a trap in messages and `troupe-info --json`: `"one_core_of_node"`, ...
/// @note Thread-safe, never blocks, never throws.
std::string_view to_string(BindingTrap trap) noexcept;

/// @brief What the binding check looks at: one rank's placement and its node's (plain data, so
/// the check is a pure function; troupe::Runtime fills it from the node's ranks at start-up).
struct BindingFacts {
  std::size_t mask_cpus = 0;                                       ///< CPUs in this rank's affinity mask (0: unknown)
  std::size_t node_cpus = 0;                                       ///< CPUs online on the node (0: unknown)
  std::size_t threads = 1;                                         ///< this rank's thread count
  ThreadCountSource threads_source = ThreadCountSource::Fallback;  ///< which rule chose it
  std::size_t node_ranks = 1;                                      ///< ranks on this node
  std::size_t shared_mask_cpus = 0;   ///< CPUs of this rank's mask in another node rank's mask too
  std::size_t node_threads = 0;       ///< worker threads of the node's ranks together (0: unknown)
  std::size_t node_covered_cpus = 0;  ///< CPUs in at least one node rank's mask (0: unknown)
};

/// @brief One finding of check_binding().
struct BindingWarning {
  BindingTrap trap = BindingTrap::OneCoreOfNode;  ///< which trap
  std::string message;  ///< what happens and how to fix it (`mpirun --bind-to ...`, `srun -c N`)
};

/// @brief The binding traps @p f falls into, in the order of BindingTrap; empty when none.
///
/// The one check behind the Runtime's start-up note (rank 0's OneCoreOfNode) and
/// `troupe-info`'s warnings (docs/troupe-info.md explains each and its fix).
/// @note Pure function: thread-safe, never blocks; throws only std::bad_alloc.
std::vector<BindingWarning> check_binding(const BindingFacts& f);

/// @brief CPU ids in this process's affinity mask (`sched_getaffinity`), ascending.
/// Empty if the mask cannot be read.
/// @note Thread-safe, never blocks, never throws.
std::vector<int> affinity_cpus();

/// @brief Compact form of a CPU list, e.g. `"0-3,8"`.
std::string format_cpu_list(const std::vector<int>& cpus);

/// @brief CPUs online on this machine (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
std::size_t online_cpu_count() noexcept;

/// @brief The thread count a pool should use when the program gave none.
///
/// While a troupe::Runtime is alive this is the Runtime's threads(); otherwise the
/// rule above with the environment and the affinity mask, where the number of
/// ranks on the node is taken from the launcher's environment
/// (`OMPI_COMM_WORLD_LOCAL_SIZE`, `MPI_LOCALNRANKS`, `SLURM_NTASKS_PER_NODE`) when
/// present. Needs neither a Runtime nor an initialized MPI.
/// @return at least 1.
/// @throws troupe::ValueError for a malformed `TROUPE_*` knob (see troupe::settings()).
/// @note Thread-safe, never blocks.
std::size_t default_thread_count();

}  // namespace troupe
