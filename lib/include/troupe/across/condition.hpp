#pragma once
/// @file
/// @brief troupe::Condition — Python's `threading.Condition` for the threads of one rank,
/// or across every rank and thread of the Runtime.

#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>

#include "troupe/across/lock.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/scope.hpp"

namespace troupe {

namespace detail {
class Handle;
}

/// @brief A condition variable bound to a troupe Lock or RLock (Python's
/// `threading.Condition(lock=None)`): wait() releases the lock, sleeps until notify() or
/// the timeout, and takes the lock back; notify(n) wakes the n oldest waiters.
///
/// **Mechanism** (docs/sync-across.md): the waiter queue lives on rank 0. wait() first
/// registers the waiter there, *then* releases the lock (whatever its recursion count, as
/// Python's `_release_save`), then waits for its wake-up, then takes the lock back with the
/// same count. A notify() issued after the release (it needs the lock) therefore always
/// finds the waiter: no lost wake-up. notify(n) marks the n oldest unwoken waiters; a
/// waiter whose timeout passes withdraws with one message, and a wake-up already on its
/// way is returned (wait() returns true), so notify(n) wakes exactly min(n, waiters)
/// threads. Waits do not help the pool (a wake-up is given to one waiter, like a unit).
///
/// @code
/// troupe::Condition cv(troupe::Scope::Ranks);        // its own RLock, on rank 0
/// std::unique_lock guard(cv);                         // Lockable
/// if (!cv.wait_for([&] { return ready(); }, std::chrono::seconds(10))) throw troupe::TimeoutError("not ready");
/// @endcode
///
/// @note Construction with a cross-rank scope is collective (every rank builds its
/// cross-rank objects in the same order; the own RLock, when no lock is given, is built
/// first). Not copyable or movable. Every member is thread-safe. Taking the lock back at
/// the end of wait() has no time limit (as in Python and std::condition_variable).
class Condition {
 public:
  /// @brief A condition over @p scope using @p lock, or its own RLock of the same scope
  /// when @p lock is null (Python's default). @p lock must outlive the condition.
  /// @throws ValueError when @p lock's scope is cross-rank and @p scope is not, or the
  /// reverse; what Lock's constructor throws.
  explicit Condition(Scope scope = Scope::Threads, Lock* lock = nullptr);
  ~Condition();
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// @brief Acquires the underlying lock (Python's `acquire(blocking)`).
  /// @return true when acquired. @throws as Lock::acquire.
  bool acquire(bool blocking = true) { return lock_->acquire(blocking); }
  /// @brief Acquires the underlying lock, waiting at most @p timeout.
  /// @return true when acquired. @throws as Lock::acquire.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return lock_->acquire(timeout);
  }
  /// @brief Acquires the underlying lock before @p deadline. @throws as Lock::acquire.
  bool acquire(const Deadline& deadline, CancellationToken token = {}) {
    return lock_->acquire(deadline, std::move(token));
  }
  /// @brief Releases the underlying lock. @throws as Lock::release.
  void release() { lock_->release(); }
  /// @brief Lockable: acquire().
  void lock() { lock_->acquire(); }
  /// @brief Lockable: release().
  void unlock() { lock_->release(); }
  /// @brief Lockable: acquire(false).
  bool try_lock() { return lock_->acquire(false); }

  /// @brief Releases the lock, waits for notify() or @p timeout, re-acquires the lock.
  /// @return true when notified, false when the timeout passed first (as Python). The lock
  /// is held again in every case, exceptions included.
  /// @throws InvalidStateError "Condition::wait: the lock is not held by this thread ..."
  /// (Python's RuntimeError) when the calling thread does not hold the lock; ValueError for
  /// a negative timeout; BrokenExecutor when a host rank is lost.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait(Deadline::after(timeout, "Condition::wait"));
  }
  /// @brief As wait(timeout), until @p deadline (Deadline{}: no limit) or a stop on @p token.
  /// @throws CancelledError when @p token stopped the wait (the lock is held again).
  bool wait(const Deadline& deadline, CancellationToken token = {});

  /// @brief Waits until @p predicate() is true (checked first, then after every wake-up)
  /// or @p timeout passes (Python's `wait_for`). Call it holding the lock.
  /// @return the predicate's last value.
  /// @throws as wait().
  template <class Pred, class Rep, class Period>
  bool wait_for(Pred&& predicate, std::chrono::duration<Rep, Period> timeout) {
    return wait_for(std::forward<Pred>(predicate), Deadline::after(timeout, "Condition::wait_for"));
  }
  /// @brief As wait_for(predicate, timeout), until @p deadline or a stop on @p token.
  template <class Pred>
  bool wait_for(Pred&& predicate, const Deadline& deadline, CancellationToken token = {}) {
    bool result = predicate();
    while (!result) {
      if (deadline.expired()) break;
      (void)wait(deadline, token);
      result = predicate();
    }
    return result;
  }

  /// @brief Wakes the @p n oldest waiters of every rank (none are waiting: nothing happens).
  /// @throws InvalidStateError "Condition::notify: the lock is not held by this thread ..."
  /// when the calling thread does not hold the lock.
  void notify(std::size_t n = 1);
  /// @brief Wakes every waiter of every rank (Python's `notify_all`).
  /// @throws as notify().
  void notify_all();

  /// @brief The underlying lock.
  Lock& underlying_lock() noexcept { return *lock_; }
  /// @brief The scope given at construction.
  Scope scope() const noexcept { return scope_; }

 private:
  void notify_impl(std::size_t n, const char* api);
  Scope scope_;
  std::unique_ptr<RLock> own_;
  Lock* lock_;
  std::unique_ptr<detail::Handle> handle_;
};

}  // namespace troupe
