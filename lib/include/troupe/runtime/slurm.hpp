#pragma once
/// @file
/// @brief What Slurm tells a task about its job: the start-up log line and the tasks per node.
///
/// No `<mpi.h>` here, and no environment is read except by slurm_job_from_environment():
/// the formatting and parsing are pure functions of the values, so they can be tested
/// without a Slurm. docs/slurm.md describes how troupe runs under `srun` and `sbatch`.
/// The variables are those of `srun(1)`'s "OUTPUT ENVIRONMENT VARIABLES".

#include <cstddef>
#include <optional>
#include <string>

namespace troupe {

/// @brief The Slurm variables the start-up line shows; nullptr means "not set".
///
/// Plain data (like ThreadCountInputs), filled by slurm_job_from_environment().
struct SlurmJobInputs {
  const char* job_id = nullptr;         ///< `SLURM_JOB_ID`; nullptr or "": not under Slurm
  const char* step_id = nullptr;        ///< `SLURM_STEP_ID` (set by srun, not in a batch script)
  const char* ntasks = nullptr;         ///< `SLURM_STEP_NUM_TASKS`, else `SLURM_NTASKS`
  const char* nodelist = nullptr;       ///< `SLURM_STEP_NODELIST`, else `SLURM_JOB_NODELIST`
  const char* cpus_per_task = nullptr;  ///< `SLURM_CPUS_PER_TASK` (`srun -c N`)
};

/// @brief The start-up line troupe::Runtime logs on rank 0 under Slurm, e.g.
/// `slurm job 123 step 0: 4 tasks on nodes node[01-02], 2 CPUs per task`.
///
/// Values are shown verbatim, except that control characters become `?` and a value
/// longer than 200 characters is cut to 200 and `...`. A missing step is left out; a
/// missing task count, node list or CPU count is written as "not set".
/// @param in the variables' values.
/// @return the line, or an empty string when `job_id` is nullptr or empty (not under Slurm).
/// @note Pure function: thread-safe, never blocks; throws only std::bad_alloc.
std::string describe_slurm_job(const SlurmJobInputs& in);

/// @brief The Slurm variables of this process (pointers into the environment).
/// @return all nullptr outside Slurm.
/// @note Thread-safe as long as no thread changes the environment; never blocks, never throws.
SlurmJobInputs slurm_job_from_environment() noexcept;

/// @brief The task count of one node from Slurm's compressed per-node list.
///
/// `SLURM_STEP_TASKS_PER_NODE` / `SLURM_TASKS_PER_NODE` hold one count per node in node
/// order, runs compressed: `"2(x3),1"` is 2, 2, 2, 1.
/// @param tasks_per_node the list, or nullptr.
/// @param node_index this node's index in the job step (`SLURM_NODEID`).
/// @return the count on that node (>= 1), or nullopt for nullptr, a malformed list, a zero
///         count or an index past the end.
/// @note Pure function: thread-safe, never blocks, never throws.
std::optional<std::size_t> slurm_tasks_on_node(const char* tasks_per_node, std::size_t node_index) noexcept;

}  // namespace troupe
