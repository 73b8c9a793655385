#pragma once
/// @file
/// @brief troupe::Semaphore and troupe::BoundedSemaphore — Python's threading semaphores.

#include <atomic>
#include <chrono>
#include <cstddef>

#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/wait.hpp"

namespace troupe {

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
class Semaphore {
 public:
  /// @brief A semaphore whose counter starts at @p value.
  /// @param value initial counter (Python's default is 1).
  /// @throws ValueError when @p value is negative: "Semaphore: initial value must be >= 0, got -1".
  explicit Semaphore(std::ptrdiff_t value = 1);
  /// @brief Not copyable: threads may be waiting on it.
  Semaphore(const Semaphore&) = delete;
  /// @brief Not copy-assignable: threads may be waiting on it.
  Semaphore& operator=(const Semaphore&) = delete;

  /// @brief Takes one unit, blocking with no time limit while the counter is zero.
  /// @throws nothing.
  void acquire();

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
  /// @return true when a unit was taken. Never blocks (lock-free).
  /// @throws nothing.
  [[nodiscard]] bool try_acquire() noexcept;

  /// @brief Gives @p n units back and wakes up to @p n waiting threads (Python's `release(n)`).
  ///
  /// Never blocks; no system call unless a thread sleeps in acquire().
  /// @param n units to give back, >= 1.
  /// @throws ValueError when @p n < 1, when the counter would overflow, or, for a
  /// BoundedSemaphore, when the counter would exceed the initial value; the counter is then
  /// left unchanged.
  void release(std::ptrdiff_t n = 1);

  /// @brief The counter now; a snapshot that may be stale as soon as it is returned.
  /// @return units available.
  /// @throws nothing.
  [[nodiscard]] std::ptrdiff_t value() const noexcept;

 protected:
  /// @brief Used by BoundedSemaphore: a semaphore that refuses to exceed @p value when @p bounded.
  /// @throws ValueError when @p value is negative.
  Semaphore(std::ptrdiff_t value, bool bounded);

  /// @brief The value the semaphore was created with.
  std::ptrdiff_t initial_value_impl() const noexcept { return initial_; }

 private:
  const char* api_acquire() const noexcept { return bounded_ ? "BoundedSemaphore::acquire" : "Semaphore::acquire"; }

  std::atomic<std::ptrdiff_t> value_;
  detail::WaitWord word_;  // notified by release()
  const std::ptrdiff_t initial_;
  const bool bounded_;
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

  /// @brief The bound: the value the semaphore was created with.
  /// @throws nothing.
  [[nodiscard]] std::ptrdiff_t initial_value() const noexcept { return initial_value_impl(); }
};

}  // namespace troupe
