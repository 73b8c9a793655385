// Thread-count rule and CPU affinity. No MPI here: default_thread_count() must work in a
// program that never starts a Runtime.
#include "troupe/runtime/topology.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>

#include "state.hpp"
#include "troupe/core/config.hpp"
#include "troupe/runtime/slurm.hpp"

namespace troupe {

namespace {
constexpr std::size_t kMaxThreads = 65536;  // the range of TROUPE_THREADS
}  // namespace

std::string_view to_string(ThreadCountSource source) noexcept {
  switch (source) {
    case ThreadCountSource::Option:
      return "option";
    case ThreadCountSource::TroupeThreads:
      return "TROUPE_THREADS";
    case ThreadCountSource::SlurmCpusPerTask:
      return "SLURM_CPUS_PER_TASK";
    case ThreadCountSource::Affinity:
      return "affinity";
    case ThreadCountSource::Fallback:
      return "fallback";
  }
  return "?";
}

ThreadCount resolve_thread_count(const ThreadCountInputs& in) {
  ThreadCount r;
  if (in.option > 0) {
    r.count = in.option;
    r.source = ThreadCountSource::Option;
    return r;
  }
  if (in.troupe_threads) {
    r.count = *in.troupe_threads;
    r.source = ThreadCountSource::TroupeThreads;
    return r;
  }
  if (const auto n = detail::parse_count(in.slurm_cpus_per_task); n && *n >= 1 && *n <= kMaxThreads) {
    r.count = *n;
    r.source = ThreadCountSource::SlurmCpusPerTask;
    return r;
  }
  if (in.affinity_cpus > 0) {
    const std::size_t ranks = in.node_ranks > 0 ? in.node_ranks : 1;
    const bool whole_node = in.node_cpus == 0 || in.affinity_cpus >= in.node_cpus;
    r.source = ThreadCountSource::Affinity;
    if (whole_node && ranks > 1) {
      // Nobody bound us: share the node. The first (cpus % ranks) ranks take one more.
      std::size_t share = in.affinity_cpus / ranks;
      if ((in.node_rank % ranks) < in.affinity_cpus % ranks) ++share;
      r.count = share > 0 ? share : 1;
    } else {
      // The launcher gave this rank its own CPUs (mpirun -n 2 binds one core each):
      // dividing again would give half a core.
      r.count = in.affinity_cpus;
      r.bound_to_part_of_node = !whole_node;
    }
    return r;
  }
  r.count = 1;
  r.source = ThreadCountSource::Fallback;
  return r;
}

bool resolve_shared_cores(const CoreSharingInputs& in) noexcept {
  if (in.setting) return *in.setting != 0;
  bool overlap = false;
  for (int cpu : in.affinity) {
    const auto c = static_cast<std::size_t>(cpu);
    if (cpu >= 0 && c < in.ranks_per_cpu.size() && in.ranks_per_cpu[c] > 1) overlap = true;
  }
  const auto covered = static_cast<std::size_t>(
      std::count_if(in.ranks_per_cpu.begin(), in.ranks_per_cpu.end(), [](int n) { return n > 0; }));
  return overlap && in.node_threads > covered;
}

std::string_view to_string(BindingTrap trap) noexcept {
  switch (trap) {
    case BindingTrap::OneCoreOfNode:
      return "one_core_of_node";
    case BindingTrap::ThreadsOverMask:
      return "threads_over_mask";
    case BindingTrap::OverlappingBinding:
      return "overlapping_binding";
    case BindingTrap::SharedCores:
      return "shared_cores";
  }
  return "?";
}

std::vector<BindingWarning> check_binding(const BindingFacts& f) {
  std::vector<BindingWarning> out;
  const bool part_of_node = f.mask_cpus > 0 && f.node_cpus > f.mask_cpus;
  if (f.mask_cpus == 1 && part_of_node && f.threads == 1 && f.threads_source == ThreadCountSource::Affinity) {
    out.push_back(
        {BindingTrap::OneCoreOfNode, "this rank is bound to 1 of the " + std::to_string(f.node_cpus) +
                                         " CPUs of this node, so it runs 1 thread. For more threads per rank use "
                                         "'mpirun --bind-to none', 'mpirun --map-by slot:pe=N' or 'srun -c N' (or set "
                                         "TROUPE_THREADS)."});
  }
  if (f.mask_cpus > 0 && f.threads > f.mask_cpus) {
    out.push_back({BindingTrap::ThreadsOverMask,
                   "this rank runs " + std::to_string(f.threads) + " threads (from " +
                       std::string(to_string(f.threads_source)) + ") on the " + std::to_string(f.mask_cpus) +
                       " CPU(s) of its affinity mask, so they time-share them. Bind it to as many CPUs as "
                       "threads ('mpirun --map-by slot:pe=N', 'srun -c N') or run fewer threads."});
  }
  if (part_of_node && f.shared_mask_cpus > 0) {
    out.push_back({BindingTrap::OverlappingBinding,
                   "this rank is bound to " + std::to_string(f.mask_cpus) + " CPU(s), " +
                       std::to_string(f.shared_mask_cpus) +
                       " of them also in another rank's mask on this node, so those ranks fight for them. "
                       "Let the launcher place the ranks ('mpirun --bind-to core', 'srun --cpu-bind=cores') "
                       "instead of overlapping CPU lists."});
  }
  if (f.shared_mask_cpus > 0 && f.node_covered_cpus > 0 && f.node_threads > f.node_covered_cpus) {
    out.push_back({BindingTrap::SharedCores,
                   "the " + std::to_string(f.node_ranks) + " ranks of this node run " + std::to_string(f.node_threads) +
                       " worker threads on " + std::to_string(f.node_covered_cpus) +
                       " CPU(s), sharing cores: troupe's waits sleep instead of spinning and every thread runs "
                       "slower. Run at most one rank per core ('mpirun -n <cores>', no --oversubscribe) or fewer "
                       "threads per rank."});
  }
  return out;
}

std::vector<int> affinity_cpus() {
  std::vector<int> cpus;
  // Large masks (machines with > 1024 CPUs) need a dynamically sized set.
  for (int ncpu = 1024; ncpu <= (1 << 16); ncpu *= 4) {
    cpu_set_t* set = CPU_ALLOC(static_cast<std::size_t>(ncpu));
    if (set == nullptr) return cpus;
    const std::size_t bytes = CPU_ALLOC_SIZE(static_cast<std::size_t>(ncpu));
    CPU_ZERO_S(bytes, set);
    if (sched_getaffinity(0, bytes, set) == 0) {
      for (int cpu = 0; cpu < ncpu; ++cpu) {
        if (CPU_ISSET_S(static_cast<std::size_t>(cpu), bytes, set)) cpus.push_back(cpu);
      }
      CPU_FREE(set);
      return cpus;
    }
    CPU_FREE(set);
    if (errno != EINVAL) break;
  }
  return cpus;
}

std::string format_cpu_list(const std::vector<int>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

std::size_t online_cpu_count() noexcept {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<std::size_t>(n) : 1;
}

std::size_t default_thread_count() {
  if (auto n = detail::runtime_state().threads.load(std::memory_order_acquire); n > 0) return n;
  ThreadCountInputs in;
  in.troupe_threads = settings().threads;
  in.slurm_cpus_per_task = std::getenv("SLURM_CPUS_PER_TASK");
  in.affinity_cpus = affinity_cpus().size();
  in.node_cpus = online_cpu_count();
  // Ranks on this node, as the launcher tells them (Open MPI, MPICH/Hydra, Slurm).
  bool found = false;
  for (auto [size_var, rank_var] :
       {std::pair{"OMPI_COMM_WORLD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
        std::pair{"MPI_LOCALNRANKS", "MPI_LOCALRANKID"}, std::pair{"SLURM_NTASKS_PER_NODE", "SLURM_LOCALID"}}) {
    if (const auto size = detail::parse_count(std::getenv(size_var)); size && *size >= 1) {
      in.node_ranks = *size;
      in.node_rank = detail::parse_count(std::getenv(rank_var)).value_or(0);
      found = true;
      break;
    }
  }
  // A task of an srun step (srun -n 4 sets no SLURM_NTASKS_PER_NODE): the step's count for
  // this node, from its compressed per-node list ("2(x3),1") at index SLURM_NODEID.
  if (!found) {
    if (const auto node = detail::parse_count(std::getenv("SLURM_NODEID"))) {
      if (const auto size = slurm_tasks_on_node(std::getenv("SLURM_STEP_TASKS_PER_NODE"), *node)) {
        in.node_ranks = *size;
        in.node_rank = detail::parse_count(std::getenv("SLURM_LOCALID")).value_or(0);
      }
    }
  }
  return resolve_thread_count(in).count;
}

}  // namespace troupe
