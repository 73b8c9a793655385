#pragma once
/// @file
/// @brief troupe::with_mpi — the program's own MPI calls while troupe runs.
///
/// troupe never has two of its threads inside MPI at once: every MPI call it makes holds
/// one token. Which rule the program follows for its own MPI calls depends on the mode the
/// Runtime chose (Runtime::mpi_mode(), docs/thread-levels.md):
///
/// | mode | MPI thread level | troupe's progress | the program's own MPI calls |
/// |---|---|---|---|
/// | MpiMode::Multiple | MULTIPLE | a progress thread per engine | from any thread, at any time |
/// | MpiMode::Serialized | SERIALIZED | progress threads; ONE token for the whole process | only inside
/// `troupe::with_mpi(...)` (or as requests handed to `Executor::async_mpi`) | | MpiMode::Funneled | FUNNELED, SINGLE
/// (or SERIALIZED without RuntimeOptions::serialize_mpi) | no progress thread: the main thread drives MPI while it
/// waits in troupe | from the main thread, while it is not inside a troupe call |
///
/// @code
/// troupe::RuntimeOptions ro;
/// ro.thread_level = troupe::ThreadLevel::Serialized;
/// ro.serialize_mpi = true;                      // MpiMode::Serialized
/// troupe::Runtime rt(argc, argv, ro);
/// troupe::Executor ex(rt);                      // progress threads at SERIALIZED
/// troupe::with_mpi([&] { MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_SUM, comm); });
/// @endcode
///
/// A violation (an MPI call outside with_mpi in MpiMode::Serialized) is undefined behaviour
/// in MPI terms; link `troupe::mpi_check` into a debug build to have every such call
/// reported (docs/thread-levels.md, "Finding a violation").

#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"

namespace troupe {

/// @brief How troupe shares MPI with the program (see the table in this file).
enum class MpiMode { Multiple, Serialized, Funneled };

namespace detail {

/// @brief True while MpiMode::Serialized is on: every MPI call of the process holds the token.
bool mpi_token_mode() noexcept;
/// @brief Turns MpiMode::Serialized on or off (the Runtime, at start and release).
void set_mpi_token_mode(bool on) noexcept;
/// @brief True if the calling thread holds the token (always false outside MpiMode::Serialized).
bool mpi_token_held() noexcept;
/// @brief Takes the token if it is free; true on success. The engines' progress rounds use it.
bool try_acquire_mpi_token() noexcept;
/// @brief Waits for the token until @p deadline (the one wait loop); false on timeout.
bool acquire_mpi_token(const Deadline& deadline);
/// @brief Gives the token back (the calling thread must hold it).
void release_mpi_token() noexcept;

/// @brief Which thread may call MPI now, as the mpi_check wrappers verify it: 0 any thread
/// (MpiMode::Multiple, or no Runtime), 1 the holder of the token (MpiMode::Serialized),
/// 2 the thread that initialized MPI (MpiMode::Funneled at FUNNELED or SINGLE).
void set_mpi_rule(int rule) noexcept;
/// @brief Called by each troupe::mpi_check wrapper before the PMPI_ call: checks the calling
/// thread against the rule; a violation is counted, and aborts under MpiCheckAction::Abort.
/// @param name the MPI function; @p is_main whether the caller is MPI's main thread.
void check_mpi_call(const char* name, bool is_main) noexcept;
int mpi_rule() noexcept;

/// @brief Holds the token around troupe's own MPI calls in MpiMode::Serialized (a no-op in
/// the other modes, and for a thread that holds the token already).
class MpiSection {
 public:
  MpiSection() noexcept {
    if (mpi_token_mode() && !mpi_token_held()) {
      (void)acquire_mpi_token(Deadline{});
      taken_ = true;
    }
  }
  ~MpiSection() {
    if (taken_) release_mpi_token();
  }
  MpiSection(const MpiSection&) = delete;
  MpiSection& operator=(const MpiSection&) = delete;

 private:
  bool taken_ = false;
};

}  // namespace detail

/// @brief What a violation found by troupe::mpi_check does.
enum class MpiCheckAction {
  Abort,  ///< print the call and the rule on stderr, then abort (the default: a debug build stops where it broke the
          ///< rule)
  Count,  ///< print it once per MPI function and count it (tests; a long run that wants every finding)
};
/// @brief Sets what a violation does (thread-safe).
void set_mpi_check_action(MpiCheckAction action) noexcept;
/// @brief What troupe::mpi_check found so far: calls checked, violations, and the last one
/// ("MPI_Send from a thread without troupe's MPI token (MpiMode::Serialized)").
struct MpiCheckReport {
  std::uint64_t checked = 0;     ///< MPI calls that went through a wrapper (0: mpi_check not linked)
  std::uint64_t violations = 0;  ///< calls against the rule of the mode
  std::string last;              ///< the last violation, in words
};
/// @brief The report so far (thread-safe).
MpiCheckReport mpi_check_report();

/// @brief Runs @p fn() holding troupe's MPI token and returns what it returns: the way a
/// program makes its own MPI calls in MpiMode::Serialized. In the other modes it just runs
/// @p fn (MpiMode::Multiple allows MPI from any thread; in MpiMode::Funneled only the main
/// thread may call MPI, which this does not check). Reentrant: a nested call runs @p fn
/// directly.
/// @param deadline how long to wait for the token (troupe holds it for single MPI calls and
/// progress rounds; another thread's with_mpi holds it for as long as its @p fn runs).
/// @throws TimeoutError "with_mpi: ..." when @p deadline passes first; what @p fn throws.
/// @note While @p fn runs, troupe makes no progress on this rank: keep it short, and prefer
/// non-blocking calls whose requests go to Executor::async_mpi over blocking ones that wait
/// for other ranks.
template <class F>
decltype(auto) with_mpi(F&& fn, const Deadline& deadline = {}) {
  if (!detail::mpi_token_mode() || detail::mpi_token_held()) return std::forward<F>(fn)();
  if (!detail::acquire_mpi_token(deadline)) {
    throw TimeoutError("with_mpi: troupe's MPI token was not free before the deadline");
  }
  struct Release {
    ~Release() { detail::release_mpi_token(); }
  } release;
  return std::forward<F>(fn)();
}

/// @brief with_mpi() waiting at most @p timeout for the token.
template <class F, class Rep, class Period>
decltype(auto) with_mpi(F&& fn, std::chrono::duration<Rep, Period> timeout) {
  return with_mpi(std::forward<F>(fn), Deadline::after(timeout, "with_mpi"));
}

}  // namespace troupe
