#pragma once
/// @file
/// @brief troupe::Semaphore and troupe::BoundedSemaphore — Python's threading semaphores,
/// for the threads of one process or across every rank and thread of the Runtime.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>

#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/scope.hpp"

namespace troupe {

namespace detail {
class Handle;
}

/// @brief A counting semaphore with timed, cancellable acquire (Python's `threading.Semaphore`).
///
/// The counter starts at @p value; acquire() takes one unit, blocking while it is zero;
/// release(n) gives n units back and wakes up to n waiters. There is no upper bound:
/// release() may raise the counter above its initial value (use BoundedSemaphore to
/// catch that bug).
///
/// Compared with std::counting_semaphore: the counter is checked (over-release of a
/// BoundedSemaphore throws instead of being undefined behaviour), the maximum is not a
/// template parameter, timeouts are validated, and waits honour a CancellationToken.
/// Where none of that matters std::counting_semaphore is fine.
///
/// @code
/// troupe::Semaphore slots(4);        // at most 4 threads inside
/// if (slots.acquire(std::chrono::milliseconds(100))) {
///   use_resource();
///   slots.release();
/// }
/// @endcode
///
/// @note Thread safety: every member may be called concurrently from any thread.
/// Not copyable or movable. Waiters are woken in no particular order (as in Python).
/// @note Waiting follows troupe's one wait policy (docs/guide.md, "How troupe waits"): a
/// brief spin, then a futex sleep; a waiting pool worker runs other pool tasks meanwhile,
/// so a release by a task queued behind the waiters cannot deadlock the pool.
///
/// **Across ranks** (`Semaphore(Scope::Ranks, n)` or `Scope::RanksAndThreads`, the same for
/// a semaphore; docs/sync-across.md): the counter lives on rank 0. acquire() is one call to
/// it: a free unit is granted at once, otherwise the request is queued and units released
/// later go to the queued requests in arrival order (FIFO-fair). A timed-out acquire
/// withdraws its request; a grant already on its way is returned, never lost. A cross-rank
/// acquire does not help the pool (a unit is a resource: a task run beneath the waiter
/// could wait for the very unit granted to it), so a release by a task queued behind the
/// waiters on the same pool can deadlock; release from elsewhere. Construction is
/// collective. Cross-rank calls may also throw BrokenExecutor (rank 0 lost) or
/// InvalidStateError (Runtime gone). Units taken by a rank that is lost are not given back.
/// @code
/// troupe::Semaphore licences(troupe::Scope::RanksAndThreads, 2);  // 2 holders at most, all ranks
/// if (licences.acquire(std::chrono::seconds(5))) { run_licensed_tool(); licences.release(); }
/// @endcode
class Semaphore {
 public:
  /// @brief A semaphore whose counter starts at @p value.
  /// @param value initial counter (Python's default is 1).
  /// @throws ValueError when @p value is negative: "Semaphore: initial value must be >= 0, got -1".
  explicit Semaphore(std::ptrdiff_t value = 1);
  /// @brief A semaphore over @p scope whose counter starts at @p value; Scope::Threads is the
  /// same as Semaphore(value). Collective for a cross-rank scope.
  /// @throws ValueError when @p value is negative; InvalidStateError when a cross-rank scope
  /// is asked for without a live Runtime; TimeoutError when the first cross-rank object is
  /// not built by every rank within the start-up timeout.
  Semaphore(Scope scope, std::ptrdiff_t value = 1);
  /// @brief Unregisters a cross-rank semaphore (requests still queued end with
  /// InvalidStateError).
  ~Semaphore();
  /// @brief Not copyable: threads may be waiting on it.
  Semaphore(const Semaphore&) = delete;
  /// @brief Not copy-assignable: threads may be waiting on it.
  Semaphore& operator=(const Semaphore&) = delete;

  /// @brief Takes one unit, blocking with no time limit while the counter is zero.
  /// @throws nothing for Scope::Threads; across ranks see the class note.
  void acquire();

  /// @brief Python's `acquire(blocking)`: blocks with no time limit (@p blocking) or tries
  /// once (!@p blocking, as try_acquire()).
  /// @return true when a unit was taken.
  /// @throws nothing for Scope::Threads; across ranks see the class note.
  bool acquire(bool blocking);

  /// @brief Takes one unit, blocking at most @p timeout while the counter is zero.
  /// @param timeout how long to wait at most (any std::chrono::duration, >= 0; zero polls).
  /// @return true when a unit was taken, false on timeout (as Python's `acquire(timeout=)`).
  /// @throws ValueError when @p timeout is negative.
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire(Deadline::after(timeout, api_acquire()));
  }

  /// @brief Takes one unit, blocking until @p deadline or until @p token is stopped.
  /// @param deadline when to give up (Deadline{} waits forever).
  /// @param token a stop request ends the wait with CancelledError.
  /// @return true when a unit was taken, false when the deadline passed first.
  /// @throws CancelledError when @p token was stopped before a unit became available.
  [[nodiscard]] bool acquire(const Deadline& deadline, CancellationToken token = {});

  /// @brief Takes one unit if one is available now (Python's `acquire(blocking=False)`).
  /// Across ranks a request queued before it is served first (FIFO): a free unit with
  /// requests queued is theirs.
  /// @return true when a unit was taken. Never blocks (lock-free) for Scope::Threads; across
  /// ranks one call to rank 0.
  /// @throws nothing for Scope::Threads; across ranks see the class note.
  [[nodiscard]] bool try_acquire();

  /// @brief Gives @p n units back and wakes up to @p n waiting threads (Python's `release(n)`).
  ///
  /// Never blocks; no system call unless a thread sleeps in acquire().
  /// @param n units to give back, >= 1.
  /// @throws ValueError when @p n < 1, when the counter would overflow, or, for a
  /// BoundedSemaphore, when the counter would exceed the initial value; the counter is then
  /// left unchanged. Across ranks the check is made at rank 0, atomically with the
  /// release: the counter is unchanged on every rank when it throws; the units released
  /// go first to queued requests, oldest first.
  void release(std::ptrdiff_t n = 1);

  /// @brief The counter now; a snapshot that may be stale as soon as it is returned (across
  /// ranks: one call to rank 0).
  /// @return units available.
  /// @throws nothing for Scope::Threads; across ranks see the class note.
  [[nodiscard]] std::ptrdiff_t value() const;

  /// @brief The scope given at construction.
  /// @throws nothing.
  [[nodiscard]] Scope scope() const noexcept;

 protected:
  /// @brief Used by BoundedSemaphore: a semaphore that refuses to exceed @p value when @p bounded.
  /// @throws ValueError when @p value is negative.
  Semaphore(std::ptrdiff_t value, bool bounded);
  /// @brief The same over @p scope. @throws as Semaphore(Scope, std::ptrdiff_t).
  Semaphore(Scope scope, std::ptrdiff_t value, bool bounded);

  /// @brief The value the semaphore was created with.
  std::ptrdiff_t initial_value_impl() const noexcept { return initial_; }

 private:
  const char* api_acquire() const noexcept { return bounded_ ? "BoundedSemaphore::acquire" : "Semaphore::acquire"; }
  // Cross-rank paths (lib/src/across/semaphore.cpp).
  bool acquire_across(bool blocking, const Deadline& deadline, CancellationToken* token);
  void release_across(std::ptrdiff_t n);
  std::ptrdiff_t value_across() const;

  std::atomic<std::ptrdiff_t> value_;
  detail::WaitWord word_;  // notified by release()
  const std::ptrdiff_t initial_;
  const bool bounded_;
  std::unique_ptr<detail::Handle> handle_;  // null for Scope::Threads
};

/// @brief A semaphore that may not be released above its initial value (Python's
/// `threading.BoundedSemaphore`).
///
/// Releasing more often than acquiring is almost always a bug (a double release on an
/// error path); it throws ValueError with the numbers, e.g.
/// "BoundedSemaphore::release: released too many times (value would be 4 > initial 3)".
///
/// @code
/// troupe::BoundedSemaphore connections(3);
/// connections.acquire();
/// connections.release();
/// connections.release();   // throws troupe::ValueError
/// @endcode
///
/// @note Thread safety: as Semaphore. A BoundedSemaphore can be used through a
/// Semaphore& and keeps its bound.
class BoundedSemaphore : public Semaphore {
 public:
  /// @brief A bounded semaphore whose counter starts at, and may not exceed, @p value.
  /// @param value initial and maximum counter (Python's default is 1).
  /// @throws ValueError when @p value is negative.
  explicit BoundedSemaphore(std::ptrdiff_t value = 1) : Semaphore(value, true) {}
  /// @brief A bounded semaphore over @p scope (see Semaphore's class note); Scope::Threads is
  /// the same as BoundedSemaphore(value). Collective for a cross-rank scope.
  /// @throws as Semaphore(Scope, std::ptrdiff_t).
  BoundedSemaphore(Scope scope, std::ptrdiff_t value = 1) : Semaphore(scope, value, true) {}

  /// @brief The bound: the value the semaphore was created with.
  /// @throws nothing.
  [[nodiscard]] std::ptrdiff_t initial_value() const noexcept { return initial_value_impl(); }
};

}  // namespace troupe
