#pragma once
/// @file
/// @brief troupe::Event — Python's threading.Event for the threads of one process.

#include <atomic>
#include <chrono>
#include <cstdint>

#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/wait.hpp"

namespace troupe {

/// @brief A flag that threads can wait for (Python's `threading.Event`).
///
/// The flag starts cleared. set() wakes every waiting thread; wait() returns at once
/// while the flag is set; clear() lowers it again. Unlike std::latch it can be reset,
/// and unlike std::atomic<bool>::wait it has a timed wait.
///
/// @code
/// troupe::Event ready;
/// std::jthread worker([&] { prepare(); ready.set(); });
/// if (!ready.wait(std::chrono::seconds(5))) throw troupe::TimeoutError("worker did not start");
/// @endcode
///
/// @note Thread safety: every member may be called concurrently from any thread.
/// Not copyable or movable (threads may be waiting on it), like std::mutex.
/// @note Waiting follows troupe's one wait policy (docs/guide.md, "How troupe waits"): a
/// brief spin, then a futex sleep; a waiting pool worker runs other pool tasks meanwhile,
/// so an Event set by a task queued behind the waiters cannot deadlock the pool.
class Event {
 public:
  /// @brief A cleared event.
  /// @throws nothing.
  Event() noexcept = default;
  /// @brief Not copyable: threads may be waiting on it.
  Event(const Event&) = delete;
  /// @brief Not copy-assignable: threads may be waiting on it.
  Event& operator=(const Event&) = delete;

  /// @brief Sets the flag and wakes every thread blocked in wait().
  ///
  /// Setting an already set event does nothing. Never blocks; no system call unless a
  /// thread sleeps in wait(). A thread waiting when set() is called returns true even if
  /// clear() follows at once (as in Python).
  /// @throws nothing.
  void set() noexcept;

  /// @brief Clears the flag; later wait() calls block until the next set().
  /// @throws nothing.
  void clear() noexcept;

  /// @brief True while the flag is set (Python's `is_set()`).
  /// @return the flag, read without locking.
  /// @throws nothing.
  [[nodiscard]] bool is_set() const noexcept { return (state_.load(std::memory_order_acquire) & kSet) != 0; }

  /// @brief Blocks until the flag is set, with no time limit.
  ///
  /// Python's `wait()` returns True in this case; there is nothing to return here.
  /// Prefer the timed overloads in code that must not hang.
  /// @throws nothing.
  void wait() const;

  /// @brief Blocks until the flag is set or @p timeout has passed.
  /// @param timeout how long to wait at most (any std::chrono::duration, >= 0; zero polls).
  /// @return the flag when the wait ends: true when set, false on timeout (as Python).
  /// @throws ValueError when @p timeout is negative.
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return wait(Deadline::after(timeout, "Event::wait"));
  }

  /// @brief Blocks until the flag is set, @p deadline passes, or @p token is stopped.
  /// @param deadline when to give up (Deadline{} waits forever).
  /// @param token stop requests end the wait with CancelledError.
  /// @return true when the flag was set during the wait (or is set), false when the
  /// deadline passed first.
  /// @throws CancelledError when @p token was stopped before the flag was set.
  [[nodiscard]] bool wait(const Deadline& deadline, CancellationToken token = {}) const;

 private:
  // Bit 0: the flag; bits 1..31: how many times set() raised it, so that a waiter also
  // returns for a set() that a clear() undid before the waiter looked.
  static constexpr std::uint32_t kSet = 1;
  static constexpr std::uint32_t kGeneration = 2;
  std::atomic<std::uint32_t> state_{0};
  mutable detail::WaitWord word_;
};

}  // namespace troupe
