#pragma once
/// @file
/// @brief troupe::Event — Python's threading.Event for the threads of one process.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "troupe/core/deadline.hpp"

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
class Event {
 public:
  /// @brief A cleared event.
  /// @throws std::bad_alloc when the internal condition variable cannot be allocated.
  Event() = default;
  /// @brief Not copyable: threads may be waiting on it.
  Event(const Event&) = delete;
  /// @brief Not copy-assignable: threads may be waiting on it.
  Event& operator=(const Event&) = delete;

  /// @brief Sets the flag and wakes every thread blocked in wait().
  ///
  /// Setting an already set event does nothing. Does not block (beyond a short
  /// internal lock).
  /// @throws nothing.
  void set() noexcept;

  /// @brief Clears the flag; later wait() calls block until the next set().
  /// @throws nothing.
  void clear() noexcept;

  /// @brief True while the flag is set (Python's `is_set()`).
  /// @return the flag, read without locking.
  /// @throws nothing.
  [[nodiscard]] bool is_set() const noexcept { return flag_.load(std::memory_order_acquire); }

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
  /// @return true when the flag is set, false when the deadline passed first.
  /// @throws CancelledError when @p token was stopped before the flag was set.
  [[nodiscard]] bool wait(const Deadline& deadline, CancellationToken token = {}) const;

 private:
  std::atomic<bool> flag_{false};
  mutable std::mutex mutex_;
  mutable std::condition_variable_any cv_;
};

}  // namespace troupe
