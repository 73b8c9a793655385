#pragma once
/// @file
/// @brief troupe::Event — Python's threading.Event for the threads of one process, or
/// across every rank and thread of the Runtime.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/scope.hpp"

namespace troupe {

namespace detail {
class Handle;
}

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
///
/// **Across ranks** (`Event(Scope::Ranks)` or `Scope::RanksAndThreads`, the same for an
/// event; docs/sync-across.md): the flag lives on rank 0. set() and clear() are one call to
/// it (none from rank 0 itself) and return once the flag has changed there; a wait() that
/// finds the flag clear parks its request at rank 0 until set() answers every parked
/// request, on every rank. Construction is collective (every rank builds its cross-rank
/// objects in the same order). Cross-rank calls may throw: BrokenExecutor when rank 0 was
/// lost, InvalidStateError when the Runtime is gone.
/// @code
/// troupe::Event go(troupe::Scope::Ranks);           // every rank builds it
/// if (rt.rank() == 0) go.set();                     // releases the waiters of every rank
/// if (!go.wait(std::chrono::seconds(10))) throw troupe::TimeoutError("no go");
/// @endcode
class Event {
 public:
  /// @brief A cleared event for the threads of this process (Scope::Threads).
  /// @throws nothing.
  Event() noexcept;
  /// @brief A cleared event over @p scope; Scope::Threads is the same as Event().
  /// @throws InvalidStateError when a cross-rank scope is asked for without a live Runtime;
  /// TimeoutError when the first cross-rank object is not built by every rank within the
  /// start-up timeout.
  explicit Event(Scope scope);
  /// @brief Unregisters a cross-rank event (waiters still parked at rank 0 end with
  /// InvalidStateError).
  ~Event();
  /// @brief Not copyable: threads may be waiting on it.
  Event(const Event&) = delete;
  /// @brief Not copy-assignable: threads may be waiting on it.
  Event& operator=(const Event&) = delete;

  /// @brief Sets the flag and wakes every thread blocked in wait().
  ///
  /// Setting an already set event does nothing. Never blocks; no system call unless a
  /// thread sleeps in wait(). A thread waiting when set() is called returns true even if
  /// clear() follows at once (as in Python). Across ranks: one call to rank 0, which answers
  /// every parked wait() of every rank before it answers this call.
  /// @throws nothing for Scope::Threads; across ranks BrokenExecutor (rank 0 lost) or
  /// InvalidStateError (Runtime gone).
  void set();

  /// @brief Clears the flag; later wait() calls block until the next set().
  /// @throws nothing for Scope::Threads; across ranks as set().
  void clear();

  /// @brief True while the flag is set (Python's `is_set()`).
  /// @return the flag, read without locking (across ranks: one call to rank 0).
  /// @throws nothing for Scope::Threads; across ranks as set().
  [[nodiscard]] bool is_set() const {
    if (handle_) return is_set_across();
    return (state_.load(std::memory_order_acquire) & kSet) != 0;
  }

  /// @brief The scope given at construction.
  /// @throws nothing.
  [[nodiscard]] Scope scope() const noexcept;

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
  /// @throws CancelledError when @p token was stopped before the flag was set; across
  /// ranks as set().
  [[nodiscard]] bool wait(const Deadline& deadline, CancellationToken token = {}) const;

 private:
  // Cross-rank paths (lib/src/across/event.cpp).
  void set_across() const;
  void clear_across() const;
  bool is_set_across() const;
  bool wait_across(const Deadline& deadline, CancellationToken& token) const;

  // Bit 0: the flag; bits 1..31: how many times set() raised it, so that a waiter also
  // returns for a set() that a clear() undid before the waiter looked.
  static constexpr std::uint32_t kSet = 1;
  static constexpr std::uint32_t kGeneration = 2;
  std::atomic<std::uint32_t> state_{0};
  mutable detail::WaitWord word_;
  std::unique_ptr<detail::Handle> handle_;  // null for Scope::Threads
};

}  // namespace troupe
