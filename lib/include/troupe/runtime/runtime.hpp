#pragma once
/// @file
/// @brief troupe::Runtime — MPI initialization or adoption, topology, configuration.
///
/// @code
/// int main(int argc, char** argv) {
///   troupe::Runtime rt(argc, argv);          // mpirun -n N ./app, or ./app alone
///   troupe::log("hello from " + rt.host());  // "[rank 0/2] hello from node1"
/// }
/// @endcode

#include <mpi.h>

#include <chrono>
#include <functional>
#include <mutex>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/runtime/log.hpp"
#include "troupe/runtime/mpi_token.hpp"
#include "troupe/runtime/topology.hpp"

namespace troupe {

struct Settings;

/// @brief MPI thread support levels (`MPI_THREAD_SINGLE` ... `MPI_THREAD_MULTIPLE`).
enum class ThreadLevel { Single, Funneled, Serialized, Multiple };

/// @brief `"MPI_THREAD_MULTIPLE"` etc.
/// @note Thread-safe, never throws.
std::string_view to_string(ThreadLevel level) noexcept;

/// @brief Worker processes a singleton Runtime spawns (`MPIPoolExecutor(max_workers=N)`).
///
/// A program started without a launcher (an MPI singleton: world size 1, no parent) asks
/// for N workers; the Runtime spawns them with `MPI_Comm_spawn`, merges the parent and the
/// children into one intracommunicator (the parent is rank 0) and works on it, so comm(),
/// every Executor and every cross-rank object span 1 + N ranks. The default worker is this
/// same executable with the same arguments: each child runs the same `main`, constructs its
/// own Runtime (which finds its parent and joins it instead of spawning) and, in the
/// root-driven style, serves in `Executor::shutdown()` (docs/spawn.md).
struct SpawnOptions {
  /// Worker processes to spawn; nullopt: `TROUPE_SPAWN_WORKERS` (default 0: none). Ignored,
  /// with one log line, when the program runs under a launcher with more than one rank or
  /// on RuntimeOptions::comm: the same program runs both ways.
  std::optional<std::size_t> workers;
  /// Program the workers run; empty: this executable (`/proc/self/exe`). A name without a
  /// '/' is looked up in `PATH`. It must exist and be executable (checked before the spawn).
  std::string command;
  /// Arguments of the workers (without argv[0]); nullopt: this process's own arguments when
  /// command is empty (`/proc/self/cmdline`), none otherwise.
  std::optional<std::vector<std::string>> args;
  /// Bound on `MPI_Comm_spawn` + `MPI_Intercomm_merge` (and, in a worker, on joining its
  /// parent); nullopt: `TROUPE_STARTUP_TIMEOUT_MS` (60 s). On expiry the Runtime throws
  /// troupe::TimeoutError instead of waiting forever (mpi4py.futures waits forever).
  std::optional<std::chrono::milliseconds> timeout;
};

/// @brief How a troupe::Runtime starts.
struct RuntimeOptions {
  /// Thread level requested from `MPI_Init_thread` when troupe initializes MPI.
  /// The level actually provided is in Runtime::thread_level(). Ignored when MPI
  /// is already initialized (the host's level is adopted).
  ThreadLevel thread_level = ThreadLevel::Multiple;
  /// At MPI_THREAD_SERIALIZED (requested, or adopted from the host): run troupe's progress
  /// threads anyway, with every MPI call of the process serialized by one token — troupe's
  /// own, and the program's, which it then makes only inside troupe::with_mpi() (MpiMode::
  /// Serialized, troupe/runtime/mpi_token.hpp). false: no progress thread below MULTIPLE; the
  /// main thread drives MPI while it waits in troupe (MpiMode::Funneled). Ignored at MULTIPLE,
  /// FUNNELED and SINGLE.
  bool serialize_mpi = false;
  /// Communicator to work on instead of `MPI_COMM_WORLD` (adopt a sub-communicator
  /// or a `boost::mpi::communicator`, which converts to `MPI_Comm`). troupe
  /// duplicates it and never frees it. Requires MPI to be initialized already.
  std::optional<MPI_Comm> comm;
  /// Threads per rank; 0 = the rule of troupe/runtime/topology.hpp.
  std::size_t threads = 0;
  /// Digest of the table of callables that can be sent between ranks; later layers
  /// feed it. Must be equal on every rank, like the executable.
  std::uint64_t callable_digest = 0;
  /// Verify at start that every rank runs the same executable and callable table.
  bool check_same_binary = true;
  /// Suppress the start-up note about rank binding (also: `TROUPE_QUIET=1`, see
  /// troupe/core/config.hpp).
  bool quiet = false;
  /// Worker processes to spawn when started as a singleton (docs/spawn.md).
  SpawnOptions spawn;
};

/// @brief A snapshot of where this rank runs (the psutil-like view of a rank; `troupe-info`
/// prints it for every rank, docs/troupe-info.md explains each field).
struct RuntimeInfo {
  std::string host;            ///< host name
  long pid = 0;                ///< process id
  int rank = 0;                ///< rank in the runtime's communicator
  int size = 1;                ///< size of the runtime's communicator
  int world_rank = 0;          ///< rank in `MPI_COMM_WORLD`
  int world_size = 1;          ///< size of `MPI_COMM_WORLD`
  int node_rank = 0;           ///< rank among the ranks on this node
  int node_size = 1;           ///< ranks on this node
  std::size_t threads = 1;     ///< threads per rank
  std::string threads_source;  ///< which rule chose `threads` (see ThreadCountSource)
  std::vector<int> affinity;   ///< CPUs this process may run on
  std::size_t node_cpus = 1;   ///< CPUs online on the node
  bool shared_cores = false;   ///< Runtime::shared_cores()
  std::string thread_level;    ///< MPI thread level provided, e.g. "MPI_THREAD_MULTIPLE"
  /// Level requested from `MPI_Init_thread`; empty when MPI was adopted from the host.
  std::string thread_level_requested;
  std::string mpi_mode;                  ///< Runtime::mpi_mode(): "multiple", "serialized" or "funneled"
  bool owns_mpi = false;                 ///< troupe initialized MPI (and will finalize it)
  std::string mpi_implementation;        ///< "Open MPI", "MPICH", "Intel MPI", "MVAPICH", or "unknown"
  std::string mpi_library;               ///< first line of `MPI_Get_library_version`, e.g. "Open MPI v4.1.4, ..."
  std::string mpi_standard;              ///< `MPI_Get_version`, e.g. "3.1"
  long rss_bytes = 0;                    ///< resident set size now (VmRSS of `/proc/self/status`); 0 if unknown
  long peak_rss_bytes = 0;               ///< largest resident set size so far (VmHWM); 0 if unknown
  BindingFacts binding;                  ///< what check_binding() looked at
  std::vector<BindingWarning> warnings;  ///< check_binding(binding): the binding traps of this rank
  /// @brief One line: `host=... pid=... rank=0/2 node_rank=0/2 threads=1 (affinity) cpus=0 level=...`.
  std::string to_string() const;
};

/// @brief The MPI context of a troupe program; RAII, one alive at a time.
///
/// Construction:
/// - MPI not initialized: built with Open MPI, sets `OMPI_MCA_osc_rdma_priority=0` unless
///   the user set it (an Open MPI 4.1 `MPI_Compare_and_swap` crash; other implementations
///   get no such setting), then `MPI_Init_thread` with
///   RuntimeOptions::thread_level; destruction finalizes MPI.
/// - MPI already initialized by the host: adopts it; never finalizes it.
/// - RuntimeOptions::comm given: works on that communicator.
/// - RuntimeOptions::spawn.workers (or `TROUPE_SPAWN_WORKERS`) = N in a program started
///   alone: spawns N workers and works on the merge of itself (rank 0) and them; in a
///   process spawned so, joins the parent (docs/spawn.md). Each step is bounded by
///   SpawnOptions::timeout.
/// In every case troupe works on an `MPI_Comm_dup` (comm()) with `MPI_ERRORS_RETURN`,
/// so library messages can never match the user's, and every MPI error becomes a
/// troupe::MpiError. Started without `mpirun` it is a singleton: one rank.
///
/// Then it learns the topology (node-local ranks via `MPI_Comm_split_type`), the
/// threads per rank, and checks with one `MPI_Allreduce` that every rank runs the
/// same executable and callable table. It re-reads the `TROUPE_*` knobs
/// (troupe::settings(), docs/configuration.md); with `TROUPE_PRINT_SETTINGS=1` rank 0
/// logs describe_settings().
///
/// @note Construction and destruction are collective over the communicator.
class Runtime {
 public:
  /// @brief Starts (or adopts) MPI; collective.
  /// @param argc,argv main's arguments, passed on to `MPI_Init_thread`.
  /// @param options see RuntimeOptions.
  /// @throws troupe::InvalidStateError if another Runtime is alive or MPI was finalized;
  ///         troupe::Error on every rank if ranks run different executables or
  ///         callable tables; troupe::MpiError if an MPI call fails;
  ///         troupe::ValueError for a malformed `TROUPE_*` knob (troupe::settings()) or a
  ///         SpawnOptions::command that is not an executable file;
  ///         troupe::TimeoutError when spawning workers (or, in a worker, joining the
  ///         parent) does not complete within SpawnOptions::timeout — MPI is then left
  ///         initialized and never finalized (the abandoned call stays inside it): end the
  ///         program.
  Runtime(int& argc, char**& argv, RuntimeOptions options = {});
  /// @brief Same without main's arguments.
  explicit Runtime(RuntimeOptions options = {});
  /// @brief Adopts an already-initialized MPI and works on a duplicate of @p comm.
  explicit Runtime(MPI_Comm comm, RuntimeOptions options = {});

  /// @brief Frees troupe's communicators and finalizes MPI if troupe initialized it.
  /// Does nothing if MPI has already been finalized by someone else. Never throws,
  /// never waits for other ranks beyond what `MPI_Finalize` itself does.
  ~Runtime();

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  Runtime(Runtime&&) = delete;
  Runtime& operator=(Runtime&&) = delete;

  /// @brief The live Runtime, or nullptr. Thread-safe.
  static Runtime* current() noexcept;

  /// @brief troupe's private duplicate of the world (or adopted) communicator.
  MPI_Comm comm() const noexcept { return comm_; }
  /// @brief Communicator of the ranks on this node (a split of comm()).
  MPI_Comm node_comm() const noexcept { return node_comm_; }
  /// @brief Rank in comm().
  int rank() const noexcept { return rank_; }
  /// @brief Size of comm().
  int size() const noexcept { return size_; }
  /// @brief Rank among the ranks on this node.
  int node_rank() const noexcept { return node_rank_; }
  /// @brief Ranks on this node.
  int node_size() const noexcept { return node_size_; }
  /// @brief Host name.
  const std::string& host() const noexcept { return host_; }
  /// @brief Worker processes this Runtime spawned (SpawnOptions); 0 when it spawned none.
  std::size_t spawned_workers() const noexcept { return spawned_workers_; }
  /// @brief True in a process that a troupe Runtime spawned (it joined its parent's ranks).
  bool is_spawned_worker() const noexcept { return is_spawned_worker_; }
  /// @brief Threads per rank, and where that number came from.
  std::size_t threads() const noexcept { return threads_.count; }
  /// @brief Which rule chose threads().
  ThreadCountSource threads_source() const noexcept { return threads_.source; }
  /// @brief True when this rank's threads share cores with other ranks' threads on the node
  /// (resolve_shared_cores(): `TROUPE_SHARED_CORES`, else the node's affinity masks and
  /// thread counts). While this Runtime lives, troupe's waits and its progress threads then
  /// sleep instead of spinning (docs/guide.md, "How troupe waits").
  bool shared_cores() const noexcept { return shared_cores_; }
  /// @brief MPI thread level provided.
  ThreadLevel thread_level() const noexcept { return provided_; }
  /// @brief How troupe shares MPI with the program: Multiple at MPI_THREAD_MULTIPLE,
  /// Serialized at MPI_THREAD_SERIALIZED with RuntimeOptions::serialize_mpi, else Funneled
  /// (troupe/runtime/mpi_token.hpp has the rule of each).
  MpiMode mpi_mode() const noexcept;
  /// @brief True when troupe may run progress threads (MpiMode::Multiple or Serialized).
  bool progress_threads() const noexcept { return mpi_mode() != MpiMode::Funneled; }
  /// @brief True if troupe called `MPI_Init_thread` and will call `MPI_Finalize`.
  bool owns_mpi() const noexcept { return owns_mpi_; }
  /// @brief Digest of this executable (ELF build id, else file contents); cached.
  std::uint64_t executable_digest() const noexcept { return exe_digest_; }
  /// @brief Snapshot of host, pid, ranks, threads, affinity, thread level, MPI library,
  /// memory and binding warnings (RuntimeInfo).
  /// @note Thread-safe, never blocks, makes no MPI call (the MPI facts are read at start-up).
  RuntimeInfo info() const;
  /// @brief This rank's binding traps (check_binding() over the facts gathered at start-up):
  /// what the start-up note and `troupe-info` report.
  /// @note Thread-safe, never blocks.
  std::vector<BindingWarning> binding_warnings() const { return check_binding(binding_); }
  /// @brief The effective configuration of this rank, one fact per line: threads and
  /// their source, the MPI thread level, the affinity mask and the node, then
  /// troupe::describe(troupe::settings()).
  /// @return the lines, each ending in '\n'.
  /// @note Thread-safe, never blocks; reads the affinity mask.
  std::string describe_settings() const;
  /// @brief Writes `[rank r/N] message` to stderr (see troupe::log).
  void log(std::string_view message) const noexcept { troupe::log(message); }

  /// @brief Registers @p fn to run when this Runtime is destroyed, before troupe frees its
  /// communicators and finalizes MPI; the last registered runs first. Layers that keep
  /// state on the Runtime's communicators (the cross-rank objects' messenger) close it here.
  /// @param fn must not throw (an exception is swallowed) and must not wait unboundedly.
  /// @note Thread-safe; never blocks.
  void on_release(std::function<void()> fn);

 private:
  void start(int* argc, char*** argv, const std::optional<MPI_Comm>& user_comm);
  MPI_Comm spawn_or_join(const Settings& cfg, const std::optional<MPI_Comm>& user_comm);
  void release() noexcept;

  RuntimeOptions options_;
  MPI_Comm comm_{};
  MPI_Comm node_comm_{};
  bool comm_valid_ = false;
  bool node_comm_valid_ = false;
  MPI_Comm spawn_inter_ = MPI_COMM_NULL;   // parent <-> workers (spawned or joined)
  MPI_Comm spawn_merged_ = MPI_COMM_NULL;  // its merge: what comm_ duplicates
  std::size_t spawned_workers_ = 0;
  bool is_spawned_worker_ = false;
  bool owns_mpi_ = false;
  int rank_ = 0;
  int size_ = 1;
  int world_rank_ = 0;
  int world_size_ = 1;
  std::string mpi_library_;   // MPI_Get_library_version, whole
  std::string mpi_standard_;  // MPI_Get_version, "3.1"
  int node_rank_ = 0;
  int node_size_ = 1;
  std::string host_;
  ThreadCount threads_;
  bool shared_cores_ = false;
  BindingFacts binding_;
  ThreadLevel provided_ = ThreadLevel::Single;
  std::uint64_t exe_digest_ = 0;
  std::mutex release_mu_;
  std::vector<std::function<void()>> on_release_;
};

/// @brief Digest of the running executable: its ELF build id if it has one, else a
/// hash of the file `/proc/self/exe`. Computed once per process.
/// @note Thread-safe, never throws (0 if nothing can be read).
std::uint64_t executable_digest() noexcept;

}  // namespace troupe
