#pragma once
/// @file
/// @brief troupe::Lock and troupe::RLock — Python's `threading.Lock` / `RLock` for the
/// threads of one rank, or across every rank and thread of the Runtime.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "troupe/core/deadline.hpp"
#include "troupe/core/scope.hpp"

namespace troupe {

namespace detail {
class Handle;
}

/// @brief A mutual-exclusion lock whose parties are the threads of this rank
/// (Scope::Threads) or every thread of every rank (Scope::Ranks, Scope::RanksAndThreads:
/// the two are the same for a lock).
///
/// **Mechanism** (docs/across.md, "Locks"): the lock's state lives on one host rank (rank
/// 0 unless given). acquire() sends one request; a free lock answers at once, a held one
/// queues the request in arrival order and the releasing call hands the lock to the
/// oldest waiter (fair, first come first served). A waiter whose timeout passes withdraws
/// its request with one more message; if the grant was already on its way, acquire()
/// returns true (a grant is never lost). A call from the host rank itself costs no message.
///
/// **Owner.** The lock is owned by the thread (on its rank) that acquired it. release() by
/// any other thread, or of a lock not held, throws InvalidStateError (Python's Lock allows
/// a release by another thread; across ranks that is almost always a bug, so troupe refuses
/// it). A lock held by a rank that is lost is released to the next waiter.
///
/// Satisfies Lockable: `std::lock_guard`, `std::unique_lock` and `std::scoped_lock` work.
///
/// @code
/// troupe::Lock lock(troupe::Scope::Ranks);          // collective: every rank builds it
/// {
///   std::lock_guard guard(lock);                    // mutual exclusion over all ranks
///   append_to_shared_file();
/// }
/// if (lock.acquire(std::chrono::milliseconds(50))) { /* got it within 50 ms */ lock.release(); }
/// @endcode
///
/// @note Construction with a cross-rank scope is collective: every rank builds its
/// cross-rank objects in the same order (the first one also sets up troupe's messaging,
/// within TROUPE_STARTUP_TIMEOUT_MS). Not copyable or movable. Every member is thread-safe.
/// Waits follow troupe's one wait policy: a pool worker runs other tasks while it waits.
class Lock {
 public:
  /// @brief A lock over @p scope, held on rank @p host.
  /// @throws ValueError when @p host is not a rank; InvalidStateError when a cross-rank
  /// scope is asked for without a live Runtime; TimeoutError when the first cross-rank object
  /// is not built by every rank within the start-up timeout.
  explicit Lock(Scope scope = Scope::Threads, int host = 0);
  ~Lock();
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  /// @brief Blocks until the lock is acquired (@p blocking), or tries once (!@p blocking).
  /// @return true when acquired.
  /// @throws BrokenExecutor when the host rank is lost; InvalidStateError when the Runtime
  /// is gone (a Lock never throws for a lock held by someone else).
  bool acquire(bool blocking = true);
  /// @brief Waits at most @p timeout (Python's `acquire(timeout=...)`).
  /// @return true when acquired, false when the timeout passed first.
  /// @throws ValueError for a negative timeout; as acquire().
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire(Deadline::after(timeout, api_acquire()));
  }
  /// @brief Python's `acquire(blocking, timeout)`: a timeout with blocking = false is an error.
  /// @throws ValueError "Lock::acquire: cannot give a timeout for a non-blocking acquire".
  template <class Rep, class Period>
  bool acquire(bool blocking, std::chrono::duration<Rep, Period> timeout) {
    check_blocking(blocking);
    return acquire(timeout);
  }
  /// @brief Waits until @p deadline or a stop request on @p token.
  /// @return true when acquired, false when the deadline passed first.
  /// @throws CancelledError when @p token is stopped first; as acquire().
  bool acquire(const Deadline& deadline, CancellationToken token = {});
  /// @brief Releases the lock held by this thread.
  /// @throws InvalidStateError "Lock::release: not held by this thread (...)" when the lock
  /// is free or held by another thread or rank; the lock is left as it was.
  void release();
  /// @brief True while some thread of some rank holds the lock (a snapshot; one message to
  /// the host).
  bool locked() const;
  /// @brief True when the calling thread (of this rank) holds the lock: Python's private
  /// `_is_owned()`, which Condition uses to refuse a wait or notify without the lock. One
  /// message to the host (none on the host rank).
  /// @throws BrokenExecutor when the host rank is lost; InvalidStateError when the Runtime
  /// is gone.
  bool held_by_this_thread() const;

  /// @brief Lockable: acquire().
  void lock() { acquire(); }
  /// @brief Lockable: release().
  void unlock() { release(); }
  /// @brief Lockable: acquire(false).
  bool try_lock() { return acquire(false); }

  /// @brief The scope given at construction.
  Scope scope() const noexcept;

 protected:
  Lock(Scope scope, int host, bool recursive);

 private:
  const char* api_acquire() const noexcept { return recursive_ ? "RLock::acquire" : "Lock::acquire"; }
  const char* api_release() const noexcept { return recursive_ ? "RLock::release" : "Lock::release"; }
  static void check_blocking(bool blocking);
  // For Condition (Python's _release_save / _acquire_restore): releases the lock held by
  // this thread whatever its recursion count and returns the count; takes it back (waiting
  // without a time limit, no helping) with that count.
  friend class Condition;
  std::uint64_t release_save(const char* api);
  void acquire_restore(std::uint64_t count, const char* api);
  std::unique_ptr<detail::Handle> handle_;
  bool recursive_ = false;
};

/// @brief A reentrant lock (Python's `threading.RLock`): the thread that holds it may
/// acquire it again; it is free after as many release() calls. Same scopes, mechanism and
/// errors as Lock; release() by a thread that does not hold it throws InvalidStateError
/// (as Python's RLock raises RuntimeError).
/// @code
/// troupe::RLock lock(troupe::Scope::RanksAndThreads);
/// std::lock_guard outer(lock);
/// std::lock_guard inner(lock);   // same thread: fine
/// @endcode
class RLock : public Lock {
 public:
  /// @brief A reentrant lock over @p scope, held on rank @p host. @throws as Lock.
  explicit RLock(Scope scope = Scope::Threads, int host = 0) : Lock(scope, host, true) {}
};

}  // namespace troupe
