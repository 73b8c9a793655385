#pragma once
/// @file
/// @brief troupe::Barrier — Python's threading.Barrier (cyclic, breakable, with timeouts).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/scope.hpp"

namespace troupe {

namespace detail {
class RankBarrier;
}

/// @brief A reusable barrier for a fixed number of threads, with Python's
/// `threading.Barrier` semantics.
///
/// Each of the @p parties threads calls wait(); when the last one arrives, the optional
/// action runs in that thread, then all parties are released and the barrier is ready for
/// the next cycle ("generation").
///
/// The barrier can *break*, exactly as in Python: when a party's wait times out, when a
/// wait is cancelled, when the action throws, or on abort(). A broken barrier makes every
/// party still waiting, and every later wait(), throw BrokenBarrierError until reset().
/// A timeout therefore affects all parties, not only the one that timed out: the others
/// would otherwise wait for a party that has given up.
///
/// Compared with std::barrier: waits can time out and be cancelled, the barrier can be
/// aborted and reset, wait() returns a unique arrival index, and the completion action
/// may throw (std::barrier requires a noexcept completion).
///
/// @code
/// troupe::Barrier step(4, [] { std::puts("all four arrived"); });
/// // in each of 4 threads:
/// auto index = step.wait(std::chrono::seconds(10));   // 0, 1, 2 or 3
/// if (index == 0) { /* exactly one thread per generation gets 0 */ }
/// @endcode
///
/// @note Thread safety: every member may be called concurrently from any thread. Not
/// copyable or movable. The action runs without the barrier's lock held, so it may call
/// parties(), n_waiting(), broken() or even abort() on the barrier.
/// @note Waiting follows troupe's one wait policy (docs/guide.md, "How troupe waits"): a
/// brief spin, then a futex sleep; a waiting pool worker runs other pool tasks meanwhile,
/// so N+1 pool tasks can meet at a Barrier(N+1) on a pool of N workers.
class Barrier {
 public:
  /// @brief The type of the action run by one party per generation.
  using Action = std::function<void()>;

  /// @brief A barrier for @p parties threads, with an optional action and no default timeout.
  /// @param parties number of threads that must call wait() to release the barrier, >= 1.
  /// @param action run by the last party to arrive, before any party is released; empty for none.
  /// @throws ValueError when @p parties < 1: "Barrier: parties must be >= 1, got 0".
  explicit Barrier(std::ptrdiff_t parties, Action action = {});

  /// @brief A barrier whose wait() without argument times out after @p timeout (Python's
  /// `Barrier(parties, action, timeout)`).
  /// @param parties number of threads, >= 1.
  /// @param action as above; pass `{}` for none.
  /// @param timeout default for wait() (any std::chrono::duration, >= 0).
  /// @throws ValueError when @p parties < 1 or @p timeout is negative.
  template <class Rep, class Period>
  Barrier(std::ptrdiff_t parties, Action action, std::chrono::duration<Rep, Period> timeout)
      : Barrier(parties, std::move(action)) {
    set_default_timeout(std::chrono::duration<double>(timeout).count());
  }

  /// @brief A barrier whose parties are given by @p scope (troupe/core/scope.hpp):
  /// - Scope::Threads: @p parties threads of this rank (the constructor above);
  /// - Scope::Ranks: one party per rank; @p parties must equal the Runtime's rank count;
  /// - Scope::RanksAndThreads: @p parties threads in all, the same number on every rank
  ///   (@p parties must be a multiple of the rank count).
  ///
  /// Across ranks the semantics are Python's: wait() returns a unique arrival index in
  /// [0, parties) (the global arrival order), the party that arrives last runs @p action
  /// before anyone leaves, and a timeout, a cancelled wait, a throwing action or abort() on
  /// any rank breaks the barrier on every rank. Mechanism and figures: docs/across.md
  /// ("Barrier"): an arrival ticket from one MPI-3 atomic on rank 0, then one
  /// `MPI_Ibarrier` per rank and generation, tested by the one wait loop.
  ///
  /// @note Cross-rank construction is collective (every rank, in the same order as its other
  /// cross-rank objects) and raises TimeoutError naming the missing ranks rather than hang;
  /// reset() and destruction are collective too (bounded by the start-up timeout: they
  /// complete the `MPI_Ibarrier`s a broken generation left, then free the counter). Below
  /// MPI_THREAD_MULTIPLE only the thread that built troupe's first cross-rank object may wait.
  /// @throws ValueError when @p parties does not match @p scope (the message says why);
  /// InvalidStateError without a live Runtime; TimeoutError at start-up.
  Barrier(Scope scope, std::ptrdiff_t parties, Action action = {});

  /// @brief As above, with a default timeout for wait() (Python's `timeout`).
  template <class Rep, class Period>
  Barrier(Scope scope, std::ptrdiff_t parties, Action action, std::chrono::duration<Rep, Period> timeout)
      : Barrier(scope, parties, std::move(action)) {
    set_default_timeout(std::chrono::duration<double>(timeout).count());
  }

  /// @brief The scope given at construction (Scope::Threads for the thread constructors).
  [[nodiscard]] Scope scope() const noexcept { return across_ ? across_scope_ : Scope::Threads; }

  /// @brief Not copyable: threads may be waiting on it.
  Barrier(const Barrier&) = delete;
  /// @brief Not copy-assignable: threads may be waiting on it.
  Barrier& operator=(const Barrier&) = delete;

  /// @brief Waits for all parties, using the default timeout given to the constructor (if
  /// any, else no time limit).
  /// @return the arrival index of this thread in its generation, in [0, parties()): the
  /// first to arrive gets 0, the one that ran the action parties()-1 (as Python).
  /// @throws BrokenBarrierError when the barrier is or becomes broken or is reset while
  /// waiting, and when the default timeout passes (which breaks the barrier for all).
  /// @throws anything the action throws, in the thread that ran it (the barrier then breaks).
  std::ptrdiff_t wait();

  /// @brief Waits for all parties, at most @p timeout (overrides the default timeout).
  /// @param timeout any std::chrono::duration, >= 0.
  /// @return the arrival index, as wait().
  /// @throws ValueError when @p timeout is negative (the barrier is left untouched).
  /// @throws BrokenBarrierError when broken, reset, or when @p timeout passes: as in Python,
  /// the party that times out breaks the barrier and gets BrokenBarrierError too.
  template <class Rep, class Period>
  std::ptrdiff_t wait(std::chrono::duration<Rep, Period> timeout) {
    return wait(Deadline::after(timeout, "Barrier::wait"));
  }

  /// @brief Waits for all parties until @p deadline, or until @p token is stopped.
  /// @param deadline when to give up (Deadline{} waits forever; the default timeout is not used).
  /// @param token a stop request breaks the barrier (as a timeout does) and throws CancelledError.
  /// @return the arrival index, as wait().
  /// @throws BrokenBarrierError, CancelledError, or the action's exception.
  ///
  /// Once every party has arrived, the deadline and the token no longer matter: a party
  /// never breaks a generation that has completed, even while the action is still running.
  std::ptrdiff_t wait(const Deadline& deadline, CancellationToken token = {});

  /// @brief Puts the barrier into the broken state: current and later waits throw
  /// BrokenBarrierError until reset(). Useful to release waiting threads when a peer fails.
  /// @throws nothing. Does not block (beyond a short internal lock).
  void abort() noexcept;

  /// @brief Returns the barrier to its initial, unbroken state.
  ///
  /// Threads waiting at the time get BrokenBarrierError (as in Python); new waits join a
  /// fresh generation once those threads have left. A cross-rank barrier's reset() is
  /// collective (one thread per rank, every rank) and bounded by the start-up timeout; if a
  /// rank does not take part in time the barrier stays broken.
  /// @throws nothing. Does not block (beyond a short internal lock).
  void reset() noexcept;

  /// @brief True while the barrier is broken (Python's `broken`).
  /// @throws nothing.
  [[nodiscard]] bool broken() const noexcept;

  /// @brief The number of threads needed to pass the barrier (Python's `parties`).
  /// @throws nothing.
  [[nodiscard]] std::ptrdiff_t parties() const noexcept { return parties_; }

  /// @brief The number of threads waiting in the current generation (Python's `n_waiting`);
  /// a snapshot. Across ranks: this rank's waiting threads only.
  /// @throws nothing.
  [[nodiscard]] std::ptrdiff_t n_waiting() const noexcept;

 private:
  enum class State : std::uint8_t {
    kFilling,    // accepting arrivals
    kReleasing,  // all arrived, the action is running (lock released)
    kDraining,   // released; the parties of the generation are leaving
    kResetting,  // reset() while parties waited; they are leaving with an error
    kBroken,
  };

  void set_default_timeout(double seconds);
  // The cross-rank paths (lib/src/across/barrier.cpp).
  std::ptrdiff_t across_wait(const Deadline& deadline, CancellationToken token);
  void across_abort() noexcept;
  void across_reset() noexcept;
  bool across_broken() const noexcept;
  std::ptrdiff_t across_n_waiting() const noexcept;
  void break_locked(std::string reason);
  void leave_locked() noexcept;
  [[noreturn]] void throw_broken_locked() const;

  const std::ptrdiff_t parties_;
  Action action_;
  std::optional<std::chrono::duration<double>> default_timeout_;

  // State changes under mutex_; waiters read state_ and generation_ without it (their
  // conditions are looked at while spinning) and sleep on word_. The mutex is only ever
  // held for a few instructions, never across a wait.
  mutable std::mutex mutex_;
  detail::WaitWord word_;
  std::atomic<State> state_{State::kFilling};
  std::ptrdiff_t count_ = 0;                  // parties inside wait() for the current generation
  std::atomic<std::uint64_t> generation_{0};  // incremented each time a generation is released
  std::string broken_reason_;
  std::shared_ptr<detail::RankBarrier> across_;  // null for Scope::Threads
  Scope across_scope_ = Scope::Threads;
};

}  // namespace troupe
