// troupe::Runtime: MPI init or adoption, the private communicator, topology, thread count,
// same-binary check. MPI's handle macros (MPI_COMM_WORLD, ...) stay in this file.
#include "troupe/runtime/runtime.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "spawn.hpp"
#include "state.hpp"
#include "trace_session.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/detail/same_binary.hpp"
#include "troupe/runtime/slurm.hpp"

namespace troupe {

namespace {

std::atomic<Runtime*> g_current{nullptr};
std::atomic<bool> g_binding_note_printed{false};
std::atomic<bool> g_slurm_line_printed{false};

int to_mpi(ThreadLevel level) noexcept {
  switch (level) {
    case ThreadLevel::Single:
      return MPI_THREAD_SINGLE;
    case ThreadLevel::Funneled:
      return MPI_THREAD_FUNNELED;
    case ThreadLevel::Serialized:
      return MPI_THREAD_SERIALIZED;
    case ThreadLevel::Multiple:
      return MPI_THREAD_MULTIPLE;
  }
  return MPI_THREAD_MULTIPLE;
}

ThreadLevel from_mpi(int level) noexcept {
  if (level >= MPI_THREAD_MULTIPLE) return ThreadLevel::Multiple;
  if (level >= MPI_THREAD_SERIALIZED) return ThreadLevel::Serialized;
  if (level >= MPI_THREAD_FUNNELED) return ThreadLevel::Funneled;
  return ThreadLevel::Single;
}

// Whether the node's ranks share cores (topology.hpp, resolve_shared_cores()). Collective
// over @p node_comm: how many ranks may run on each CPU, and the node's worker threads; the
// node's part of @p facts (check_binding()) comes from the same two reductions.
bool detect_shared_cores(const Settings& cfg, MPI_Comm node_comm, std::size_t threads, BindingFacts& facts) {
  CoreSharingInputs in;
  in.setting = cfg.shared_cores;
  in.affinity = affinity_cpus();
  // Every rank takes part in both reductions, whatever the setting: the collectives match.
  int width = in.affinity.empty() ? 0 : in.affinity.back() + 1;
  TROUPE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &width, 1, MPI_INT, MPI_MAX, node_comm));
  // [0, width): ranks per CPU; [width]: worker threads on the node.
  std::vector<int> counts(static_cast<std::size_t>(width) + 1, 0);
  for (int cpu : in.affinity) counts[static_cast<std::size_t>(cpu)] = 1;
  counts.back() = static_cast<int>(std::min<std::size_t>(threads, 1 << 20));
  TROUPE_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, counts.data(), static_cast<int>(counts.size()), MPI_INT, MPI_SUM, node_comm));
  in.node_threads = static_cast<std::size_t>(counts.back());
  counts.pop_back();
  in.ranks_per_cpu = std::move(counts);
  facts.mask_cpus = in.affinity.size();
  facts.node_threads = in.node_threads;
  facts.shared_mask_cpus = 0;
  for (int cpu : in.affinity) {
    if (in.ranks_per_cpu[static_cast<std::size_t>(cpu)] > 1) ++facts.shared_mask_cpus;
  }
  facts.node_covered_cpus = static_cast<std::size_t>(
      std::count_if(in.ranks_per_cpu.begin(), in.ranks_per_cpu.end(), [](int n) { return n > 0; }));
  return resolve_shared_cores(in);
}

// "Open MPI", "MPICH", ... from the text of MPI_Get_library_version.
std::string implementation_of(const std::string& library) {
  static constexpr std::pair<const char*, const char*> kNames[] = {
      {"Open MPI", "Open MPI"}, {"Intel(R) MPI", "Intel MPI"}, {"MVAPICH", "MVAPICH"}, {"MPICH", "MPICH"}};
  for (const auto& [needle, name] : kNames) {
    if (library.find(needle) != std::string::npos) return name;
  }
  return "unknown";
}

// Resident set size now (VmRSS) and at its peak (VmHWM), from /proc/self/status, in bytes; 0
// when unknown. (getrusage's ru_maxrss lags the current size: the kernel updates it lazily.)
std::pair<long, long> rss_bytes() noexcept {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return {0, 0};
  long now = 0, peak = 0;
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long kb = 0;
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) now = kb * 1024L;
    if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) peak = kb * 1024L;
  }
  std::fclose(f);
  return {now, peak};
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

}  // namespace

std::string_view to_string(ThreadLevel level) noexcept {
  switch (level) {
    case ThreadLevel::Single:
      return "MPI_THREAD_SINGLE";
    case ThreadLevel::Funneled:
      return "MPI_THREAD_FUNNELED";
    case ThreadLevel::Serialized:
      return "MPI_THREAD_SERIALIZED";
    case ThreadLevel::Multiple:
      return "MPI_THREAD_MULTIPLE";
  }
  return "?";
}

std::string RuntimeInfo::to_string() const {
  std::string s = "host=" + host + " pid=" + std::to_string(pid) + " rank=" + std::to_string(rank) + "/" +
                  std::to_string(size) + " node_rank=" + std::to_string(node_rank) + "/" + std::to_string(node_size) +
                  " threads=" + std::to_string(threads) + " (" + threads_source +
                  ") cpus=" + format_cpu_list(affinity) + " level=" + thread_level +
                  (owns_mpi ? " mpi=initialized-by-troupe" : " mpi=adopted");
  return s;
}

Runtime::Runtime(int& argc, char**& argv, RuntimeOptions options) : options_(std::move(options)) {
  start(&argc, &argv, options_.comm);
}

Runtime::Runtime(RuntimeOptions options) : options_(std::move(options)) { start(nullptr, nullptr, options_.comm); }

Runtime::Runtime(MPI_Comm comm, RuntimeOptions options) : options_(std::move(options)) {
  options_.comm = comm;
  start(nullptr, nullptr, options_.comm);
}

Runtime* Runtime::current() noexcept { return g_current.load(std::memory_order_acquire); }

void Runtime::start(int* argc, char*** argv, const std::optional<MPI_Comm>& user_comm) {
  Runtime* expected = nullptr;
  if (!g_current.compare_exchange_strong(expected, this, std::memory_order_acq_rel)) {
    throw InvalidStateError("troupe::Runtime: another Runtime is alive in this process; create one at a time");
  }
  bool finalize_on_failure = false;  // only after a failure that every rank saw
  try {
    // Read the knobs again (the program may have set some since the first settings()),
    // before any MPI call: a malformed one fails here, with nothing to undo.
    const Settings& cfg = detail::reload_settings();
    int finalized = 0;
    TROUPE_MPI_CHECK(MPI_Finalized(&finalized));
    if (finalized) {
      throw InvalidStateError("troupe::Runtime: MPI has already been finalized and cannot be started again");
    }
    int initialized = 0;
    TROUPE_MPI_CHECK(MPI_Initialized(&initialized));
    if (!initialized) {
      if (user_comm) {
        throw InvalidStateError("troupe::Runtime: RuntimeOptions::comm was given but MPI is not initialized");
      }
#ifdef OPEN_MPI
      // Open MPI 4.1: MPI_Compare_and_swap on an MPI_Win_allocate window segfaults with
      // osc/rdma (ompi#11349). Lowering its priority before MPI_Init avoids it and keeps
      // MPI_Win_create working. Never override the user's choice (overwrite = 0). Open MPI
      // only (OPEN_MPI comes from its mpi.h): other implementations never see the variable.
      ::setenv("OMPI_MCA_osc_rdma_priority", "0", 0);
#endif
      int provided = MPI_THREAD_SINGLE;
      TROUPE_MPI_CHECK(MPI_Init_thread(argc, argv, to_mpi(options_.thread_level), &provided));
      owns_mpi_ = true;
    }
    int level = MPI_THREAD_SINGLE;
    TROUPE_MPI_CHECK(MPI_Query_thread(&level));
    provided_ = from_mpi(level);

    // Our own communicator: library traffic can never match the user's messages, and
    // errors come back as codes (MPI_ERRORS_RETURN) instead of aborting.
    // Spawned workers (docs/spawn.md): a singleton that asks for workers, and a worker
    // joining its parent, work on the merge of the two groups instead of the world.
    const MPI_Comm base = spawn_or_join(cfg, user_comm);
    TROUPE_MPI_CHECK(MPI_Comm_dup(base, &comm_));
    comm_valid_ = true;
    TROUPE_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    TROUPE_MPI_CHECK(MPI_Comm_set_name(comm_, "troupe"));
    TROUPE_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    TROUPE_MPI_CHECK(MPI_Comm_size(comm_, &size_));
    // Facts for info(), asked here, on the thread that may call MPI at every level.
    TROUPE_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
    TROUPE_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
    {
      char lib[MPI_MAX_LIBRARY_VERSION_STRING] = {};
      int len = 0;
      TROUPE_MPI_CHECK(MPI_Get_library_version(lib, &len));
      mpi_library_.assign(lib, static_cast<std::size_t>(std::clamp(len, 0, MPI_MAX_LIBRARY_VERSION_STRING - 1)));
      int major = 0, minor = 0;
      TROUPE_MPI_CHECK(MPI_Get_version(&major, &minor));
      mpi_standard_ = std::to_string(major) + "." + std::to_string(minor);
    }

    TROUPE_MPI_CHECK(MPI_Comm_split_type(comm_,                 // split troupe's communicator
                                         MPI_COMM_TYPE_SHARED,  // by shared-memory node
                                         rank_,                 // keep the rank order
                                         MPI_INFO_NULL, &node_comm_));
    node_comm_valid_ = true;
    TROUPE_MPI_CHECK(MPI_Comm_set_errhandler(node_comm_, MPI_ERRORS_RETURN));
    TROUPE_MPI_CHECK(MPI_Comm_rank(node_comm_, &node_rank_));
    TROUPE_MPI_CHECK(MPI_Comm_size(node_comm_, &node_size_));
    host_ = host_name();

    ThreadCountInputs in;
    in.option = options_.threads;
    in.troupe_threads = cfg.threads;
    in.slurm_cpus_per_task = std::getenv("SLURM_CPUS_PER_TASK");
    in.affinity_cpus = affinity_cpus().size();
    in.node_cpus = online_cpu_count();
    in.node_ranks = static_cast<std::size_t>(node_size_);
    in.node_rank = static_cast<std::size_t>(node_rank_);
    threads_ = resolve_thread_count(in);
    binding_.node_cpus = in.node_cpus;
    binding_.threads = threads_.count;
    binding_.threads_source = threads_.source;
    binding_.node_ranks = static_cast<std::size_t>(node_size_);
    shared_cores_ = detect_shared_cores(cfg, node_comm_, threads_.count, binding_);

    exe_digest_ = detail::executable_digest_for_check();
    if (options_.check_same_binary) {
      try {
        detail::check_same_binary(comm_, exe_digest_, options_.callable_digest);
      } catch (const MpiError&) {
        throw;
      } catch (const Error&) {
        finalize_on_failure = true;  // every rank throws this one
        throw;
      }
    }

    if (spawn_merged_ != MPI_COMM_NULL) {
      // No process of a spawned group leaves the constructor before every one has passed its
      // blocking collectives above: a worker that ends right after its Runtime (a user's
      // early exit) then cannot leave the parent waiting in one of them. Bounded.
      const auto timeout = options_.spawn.timeout.value_or(cfg.startup_timeout);
      detail::bounded_barrier(comm_, Deadline::after(timeout, "troupe::Runtime"),
                              "troupe::Runtime: the spawned group's start-up did not complete within " +
                                  std::to_string(timeout.count()) +
                                  " ms (SpawnOptions::timeout): a worker or the parent ended or stalled during it");
    }

    detail::trace::start_session(comm_, rank_, size_, host_, cfg.trace, cfg.startup_timeout,
                                 options_.quiet || cfg.quiet);
    detail::set_mpi_token_mode(mpi_mode() == MpiMode::Serialized);
    detail::set_mpi_rule(mpi_mode() == MpiMode::Serialized                                        ? 1
                         : provided_ == ThreadLevel::Funneled || provided_ == ThreadLevel::Single ? 2
                                                                                                  : 0);

    auto& st = detail::runtime_state();
    st.rank.store(rank_);
    st.size.store(size_);
    st.threads.store(threads_.count, std::memory_order_release);
    detail::set_cores_shared(shared_cores_);
    st.alive.store(true, std::memory_order_release);

    if (rank_ == 0 && cfg.print_settings) {
      std::string text = describe_settings();
      text.pop_back();  // log() ends the line
      troupe::log("troupe settings:\n" + text);
    }
    // The start-up note: rank 0's one-core trap, from the one binding check (troupe-info
    // reports every trap of every rank).
    if (rank_ == 0 && !options_.quiet && !cfg.quiet) {
      for (const BindingWarning& w : check_binding(binding_)) {
        if (w.trap == BindingTrap::OneCoreOfNode && !g_binding_note_printed.exchange(true)) {
          troupe::log("troupe: " + w.message + " Set TROUPE_QUIET=1 to hide this note.");
        }
      }
    }
    // Under Slurm: the job, step, tasks, nodes and CPUs per task, once per process.
    if (rank_ == 0 && !options_.quiet && !cfg.quiet) {
      if (std::string line = describe_slurm_job(slurm_job_from_environment());
          !line.empty() && !g_slurm_line_printed.exchange(true)) {
        troupe::log(line);
      }
    }
  } catch (...) {
    if (!finalize_on_failure) owns_mpi_ = false;  // a local failure: MPI_Finalize could hang
    release();
    g_current.store(nullptr, std::memory_order_release);
    throw;
  }
}

MPI_Comm Runtime::spawn_or_join(const Settings& cfg, const std::optional<MPI_Comm>& user_comm) {
  const MPI_Comm base = user_comm ? *user_comm : MPI_COMM_WORLD;
  const SpawnOptions& so = options_.spawn;
  const auto timeout = so.timeout.value_or(cfg.startup_timeout);
  if (timeout.count() <= 0) {
    throw ValueError("troupe::Runtime: SpawnOptions::timeout must be > 0 ms, got " + std::to_string(timeout.count()));
  }
  MPI_Comm parent = MPI_COMM_NULL;
  TROUPE_MPI_CHECK(MPI_Comm_get_parent(&parent));
  if (parent != MPI_COMM_NULL && !user_comm) {  // a worker: join the parent's ranks
    const detail::SpawnLink link = detail::join_parent(parent, timeout);
    spawn_inter_ = link.inter;
    spawn_merged_ = link.merged;
    is_spawned_worker_ = true;
    return spawn_merged_;
  }
  const std::size_t workers = so.workers.value_or(cfg.spawn_workers);
  if (workers == 0) return base;
  if (workers > 4096) {
    throw ValueError("troupe::Runtime: SpawnOptions::workers must be at most 4096, got " + std::to_string(workers));
  }
  int world_size = 1, world_rank = 0;
  TROUPE_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size));
  TROUPE_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank));
  if (user_comm || world_size > 1 || parent != MPI_COMM_NULL) {
    // The same program runs under a launcher too: the ranks it has are its workers.
    if (world_rank == 0 && !options_.quiet && !cfg.quiet) {
      troupe::log("troupe::Runtime: not spawning the " + std::to_string(workers) +
                  " worker(s) asked for (SpawnOptions::workers / TROUPE_SPAWN_WORKERS): " +
                  (user_comm ? std::string("RuntimeOptions::comm was given")
                             : "the program already runs on " + std::to_string(world_size) + " ranks") +
                  "; workers are spawned only by a program started alone");
    }
    return base;
  }
  const std::string command =
      so.command.empty() ? detail::self_executable() : detail::resolve_worker_command(so.command);
  const std::vector<std::string> args = so.args              ? *so.args
                                        : so.command.empty() ? detail::self_arguments()
                                                             : std::vector<std::string>{};
  const detail::SpawnLink link = detail::spawn_and_merge(command, args, static_cast<int>(workers), timeout);
  spawn_inter_ = link.inter;
  spawn_merged_ = link.merged;
  spawned_workers_ = workers;
  return spawn_merged_;
}

MpiMode Runtime::mpi_mode() const noexcept {
  if (provided_ == ThreadLevel::Multiple) return MpiMode::Multiple;
  if (provided_ == ThreadLevel::Serialized && options_.serialize_mpi) return MpiMode::Serialized;
  return MpiMode::Funneled;
}

void Runtime::on_release(std::function<void()> fn) {
  std::lock_guard lock(release_mu_);
  on_release_.push_back(std::move(fn));
}

void Runtime::release() noexcept {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(release_mu_);
    hooks.swap(on_release_);
  }
  for (auto it = hooks.rbegin(); it != hooks.rend(); ++it) {
    try {
      (*it)();
    } catch (...) {  // a closing layer must not stop MPI from being finalized
    }
  }
  int finalized = 0;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return;  // someone else finalized MPI
  int initialized = 0;
  if (MPI_Initialized(&initialized) != MPI_SUCCESS || !initialized) return;
  if (comm_valid_) detail::trace::finish_session(comm_);  // collective: every rank's events to rank 0
  if (node_comm_valid_) {
    TROUPE_MPI_UNCHECKED(MPI_Comm_free(&node_comm_));
    node_comm_valid_ = false;
  }
  if (comm_valid_) {
    TROUPE_MPI_UNCHECKED(MPI_Comm_free(&comm_));
    comm_valid_ = false;
  }
  if (spawn_merged_ != MPI_COMM_NULL) TROUPE_MPI_UNCHECKED(MPI_Comm_free(&spawn_merged_));
  // MPI_Comm_free, not MPI_Comm_disconnect: disconnect waits for the other side's traffic,
  // which a worker that died never completes.
  if (spawn_inter_ != MPI_COMM_NULL) TROUPE_MPI_UNCHECKED(MPI_Comm_free(&spawn_inter_));
  detail::set_mpi_token_mode(false);
  detail::set_mpi_rule(0);
  if (owns_mpi_) {
    TROUPE_MPI_UNCHECKED(MPI_Finalize());
    owns_mpi_ = false;
  }
}

Runtime::~Runtime() {
  auto& st = detail::runtime_state();
  st.alive.store(false, std::memory_order_release);
  st.threads.store(0, std::memory_order_release);
  release();
  detail::reset_cores_shared();
  g_current.store(nullptr, std::memory_order_release);
}

std::string Runtime::describe_settings() const {
  const auto cpus = affinity_cpus();
  return "threads=" + std::to_string(threads_.count) + " (from " + std::string(troupe::to_string(threads_.source)) +
         ")\nthread_level=" + std::string(troupe::to_string(provided_)) +
         (owns_mpi_ ? " (requested " + std::string(troupe::to_string(options_.thread_level)) + ")" : " (adopted)") +
         "\ncpus=" + format_cpu_list(cpus) + " (" + std::to_string(cpus.size()) + " of " +
         std::to_string(online_cpu_count()) + " online" +
         (threads_.bound_to_part_of_node ? ", bound to part of the node" : "") +
         ")\nshared_cores=" + (shared_cores_ ? "1" : "0") +
         (settings().shared_cores ? " (TROUPE_SHARED_CORES)" : " (detected)") +
         "\nnode_rank=" + std::to_string(node_rank_) + "/" + std::to_string(node_size_) + " on " + host_ + "\n" +
         describe(settings());
}

RuntimeInfo Runtime::info() const {
  RuntimeInfo i;
  i.host = host_;
  i.pid = static_cast<long>(::getpid());
  i.rank = rank_;
  i.size = size_;
  i.node_rank = node_rank_;
  i.node_size = node_size_;
  i.threads = threads_.count;
  i.threads_source = std::string(troupe::to_string(threads_.source));
  i.affinity = affinity_cpus();
  i.thread_level = std::string(troupe::to_string(provided_));
  if (owns_mpi_) i.thread_level_requested = std::string(troupe::to_string(options_.thread_level));
  const MpiMode mode = mpi_mode();
  i.mpi_mode = mode == MpiMode::Multiple ? "multiple" : mode == MpiMode::Serialized ? "serialized" : "funneled";
  i.owns_mpi = owns_mpi_;
  i.node_cpus = online_cpu_count();
  i.shared_cores = shared_cores_;
  i.world_rank = world_rank_;
  i.world_size = world_size_;
  i.mpi_implementation = implementation_of(mpi_library_);
  i.mpi_library = mpi_library_.substr(0, mpi_library_.find_first_of("\r\n"));
  while (!i.mpi_library.empty() && (i.mpi_library.back() == ' ' || i.mpi_library.back() == ',' ||
                                    i.mpi_library.back() == '\t' || i.mpi_library.back() == '\0')) {
    i.mpi_library.pop_back();
  }
  i.mpi_standard = mpi_standard_;
  std::tie(i.rss_bytes, i.peak_rss_bytes) = rss_bytes();
  i.binding = binding_;
  i.warnings = check_binding(binding_);
  return i;
}

}  // namespace troupe
