#pragma once
/// @file
/// @brief Every `TROUPE_*` environment knob, read and validated in one place.
///
/// One table in config.cpp lists each knob (name, default, rule, effect) and drives the
/// parsing, the validation and describe(); docs/configuration.md is written from it.
/// Only the variables the user sets are here. What the launcher says about this launch
/// (`SLURM_CPUS_PER_TASK`, `OMPI_COMM_WORLD_LOCAL_SIZE`, ...) is read where it is used
/// (troupe/runtime/topology.hpp) with detail::parse_count() and is never an error: users
/// do not set those.
///
/// @code
/// const troupe::Settings& s = troupe::settings();  // throws ValueError on a bad knob
/// std::fputs(troupe::describe(s).c_str(), stderr);
/// @endcode

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

/// @brief Every TROUPE_* knob, parsed and validated once.
///
/// A default-constructed Settings holds every default. One rule for every knob: an unset
/// variable means the default; a set one must satisfy the knob's rule (spaces around the
/// number allowed), and a set but empty or blank one is an error, like any other bad value.
/// A knob whose default is a rule rather than a number (`TROUPE_THREADS`,
/// `TROUPE_SHARED_CORES`) also takes the word `auto`: that rule, as when unset.
struct Settings {
  /// `TROUPE_THREADS` (an integer in [1, 65536]): threads per rank; nullopt: the rule of
  /// troupe/runtime/topology.hpp.
  std::optional<std::size_t> threads;
  /// `TROUPE_QUIET` (0 or 1): hide the Runtime's start-up note about rank binding.
  bool quiet = false;
  /// `TROUPE_PRINT_SETTINGS` (0 or 1): rank 0 logs Runtime::describe_settings() at start-up.
  bool print_settings = false;
  /// `TROUPE_SPIN_US` (>= 0): how long an idle pool worker spins before it sleeps.
  std::chrono::microseconds pool_spin{50};
  /// `TROUPE_ENGINE_BACKOFF_US` (> 0): longest idle sleep of an engine's progress thread.
  std::chrono::microseconds engine_backoff{1000};
  /// `TROUPE_ENGINE_LINGER_US` (>= 0): how long an engine keeps polling after traffic.
  std::chrono::microseconds engine_linger{200};
  /// `TROUPE_WAIT_BACKOFF_US` (> 0): longest nap of a thread that waits while helping or
  /// driving progress.
  std::chrono::microseconds wait_backoff{500};
  /// `TROUPE_SHARED_CORES` (auto, 0 or 1): whether this rank's threads share cores with
  /// other ranks' threads (then waits sleep instead of spinning, see docs/guide.md "How troupe
  /// waits"); nullopt (auto): troupe::Runtime detects it (troupe/runtime/topology.hpp).
  std::optional<std::size_t> shared_cores;
  /// `TROUPE_WIRE_LOCAL` (0 or 1): the default of ExecutorOptions::wire_local (every task
  /// goes through the wire format, also when it runs on the submitting rank; a debug switch).
  bool wire_local = false;
  /// `TROUPE_STARTUP_TIMEOUT_MS` (> 0): how long a collective construction (an Executor)
  /// waits for every rank before it raises an error naming those that did not arrive.
  std::chrono::milliseconds startup_timeout{60'000};
  /// `TROUPE_FAILURE_TIMEOUT_MS` (>= 0; 0 off): a rank silent this long while another rank
  /// waits on it is declared lost (executors with a progress thread).
  std::chrono::milliseconds failure_timeout{10'000};
  /// `TROUPE_SPAWN_WORKERS` (an integer in [0, 4096]): the default of
  /// RuntimeOptions::spawn.workers: a Runtime started as a singleton spawns this many worker
  /// processes (`MPI_Comm_spawn`) and works on itself and them (docs/spawn.md); 0: none.
  std::size_t spawn_workers = 0;
  /// `TROUPE_CORO_STALL_MS` (>= 0; 0 off): the debug check of troupe/coro: a coroutine step
  /// (a task's run from one resumption to its next suspension) that holds a pool worker
  /// longer than this is reported on stderr and counted (troupe::coro_stalls()). A blocking
  /// call inside a task is what makes a step long (docs/coroutines.md).
  std::chrono::milliseconds coro_stall{0};
  /// `TROUPE_TRACE` (a file path; unset: off): rank 0 writes a Chrome/Perfetto trace of the
  /// tasks per rank x thread and of the messages there when the Runtime ends
  /// (docs/tracing.md). Rank 0's value decides for every rank.
  std::string trace;
  /// `TROUPE_PROGRESS` (0, 1 or 2): the default of MapOptions::progress: 0 no progress bar,
  /// 1 a bar on the root's stderr when it is a terminal, 2 always (logs, tests).
  std::size_t progress = 0;
  /// Names of the knobs that the environment set (the others hold their default).
  std::vector<std::string> from_env;
};

/// @brief Reads and validates every knob from the environment once; later calls return
/// the cached result.
/// @return the process's settings; the reference stays valid for the life of the process.
/// @throws troupe::ValueError naming the variable, its value and the rule when a knob is
///         malformed or set but empty (nothing is cached then, so every call throws the
///         same error).
/// @note Thread-safe; the first call takes a lock, later calls one atomic load. A
///       troupe::Runtime reads the environment again when it starts (see
///       detail::reload_settings()), so `setenv` before the Runtime is honoured.
const Settings& settings();

/// @brief Parses every knob from a lookup function instead of the environment (tests).
/// @param getenv_fn name -> value, or nullptr when the variable is unset.
/// @return the settings; knobs whose lookup gives nullptr keep their default.
/// @throws troupe::ValueError naming the first malformed variable, its value and the rule
///         (`TROUPE_THREADS must be an integer in [1, 65536], got '0'`), or, for a set but
///         empty or blank one, saying so with the default and the rule.
/// @note Thread-safe if @p getenv_fn is; never blocks.
Settings read_settings(const std::function<const char*(const char*)>& getenv_fn);

/// @brief One line per knob: `NAME=value (default D, from env|default): effect`.
/// @param s settings to describe (its from_env says where each value came from).
/// @return the lines, each ending in '\n'.
/// @note Thread-safe, never blocks.
std::string describe(const Settings& s);

/// @brief One knob's effective value, as describe() prints it (for tools: `troupe-info --json`).
struct KnobState {
  std::string name;           ///< the variable, e.g. `TROUPE_THREADS`
  std::string value;          ///< its effective value, e.g. `auto`, `50`
  std::string default_value;  ///< its default
  bool from_env = false;      ///< true when the environment set it
  std::string effect;         ///< what it does (one line)
};

/// @brief Every knob of @p s in the table's order: the data describe() formats.
/// @note Thread-safe, never blocks.
std::vector<KnobState> knob_states(const Settings& s);

namespace detail {

/// @brief Re-reads the environment and makes the result what settings() returns.
///
/// Called by troupe::Runtime when it starts. The previous Settings object is kept (never
/// freed), so references handed out before stay valid.
/// @return the new settings.
/// @throws troupe::ValueError as settings(); the cached settings are unchanged then.
/// @note Thread-safe.
const Settings& reload_settings();

/// @brief Parses a whole string (spaces around allowed) as a non-negative integer.
/// @param text the text, or nullptr.
/// @return the value, or nullopt for nullptr, "", or anything that is not such an integer.
/// @note Thread-safe, never throws.
std::optional<std::size_t> parse_count(const char* text) noexcept;

}  // namespace detail
}  // namespace troupe
