#pragma once
/// @file
/// @brief troupe::lock_all / troupe::try_lock_all_for — take several locks in one global
/// order (by address), so that threads naming the same locks in different orders cannot
/// deadlock.

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "troupe/core/deadline.hpp"

#if defined(__SANITIZE_THREAD__)
#define TROUPE_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TROUPE_DETAIL_TSAN 1
#endif
#endif
#ifndef TROUPE_DETAIL_TSAN
#define TROUPE_DETAIL_TSAN 0
#endif

namespace troupe {

/// @brief What lock_all() needs: `lock()` and `unlock()` (the standard's BasicLockable).
template <class L>
concept BasicLockable = requires(L& l) {
  l.lock();
  l.unlock();
};

/// @brief What try_lock_all_for() needs: BasicLockable plus
/// `try_lock_until(steady_clock::time_point)` (std::timed_mutex, std::recursive_timed_mutex,
/// std::shared_timed_mutex, ...).
template <class L>
concept TimedLockable = BasicLockable<L> && requires(L& l, Clock::time_point tp) {
  { l.try_lock_until(tp) } -> std::convertible_to<bool>;
};

namespace detail {
/// One lockable, type-erased; sorted by `object` address.
struct LockEntry {
  void* object;
  void (*lock)(void*);
  void (*unlock)(void*) noexcept;
  bool (*try_lock_until)(void*, Clock::time_point);  // null unless TimedLockable
};

template <class L>
LockEntry make_lock_entry(L& l) noexcept {
  LockEntry e{};
  e.object = static_cast<void*>(std::addressof(l));
  e.lock = [](void* p) { static_cast<L*>(p)->lock(); };
  e.unlock = [](void* p) noexcept { static_cast<L*>(p)->unlock(); };
  if constexpr (TimedLockable<L>) {
#if TROUPE_DETAIL_TSAN
    // GCC 12's ThreadSanitizer does not intercept pthread_mutex_clocklock, which
    // std::timed_mutex::try_lock_until(steady_clock) uses: TSan would miss the acquisition
    // and report false races. Under TSan only, go through system_clock (timedlock, which
    // it does intercept) when the lock accepts it.
    if constexpr (requires(L & l, std::chrono::system_clock::time_point stp) { l.try_lock_until(stp); }) {
      e.try_lock_until = [](void* p, Clock::time_point tp) -> bool {
        const auto left = tp - Clock::now();
        return static_cast<L*>(p)->try_lock_until(
            std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(left));
      };
      return e;
    }
#endif
    e.try_lock_until = [](void* p, Clock::time_point tp) -> bool { return static_cast<L*>(p)->try_lock_until(tp); };
  } else {
    e.try_lock_until = nullptr;
  }
  return e;
}

/// Sorts by address (ValueError on a duplicate) and locks in that order; on an exception
/// unlocks what it took and rethrows.
void lock_entries(LockEntry* entries, std::size_t n);
/// As lock_entries, but gives up at `deadline`: then unlocks what it took and returns false.
bool try_lock_entries_until(LockEntry* entries, std::size_t n, const Deadline& deadline);
/// Unlocks in reverse order.
void unlock_entries(LockEntry* entries, std::size_t n) noexcept;
}  // namespace detail

/// @brief RAII owner of the locks taken by lock_all() / try_lock_all_for(); unlocks them
/// (in reverse acquisition order) when destroyed.
/// @tparam N number of locks.
///
/// @note Thread safety: like std::unique_lock, a guard belongs to the thread that took the
/// locks; it is movable (to return it from a function) but not copyable.
template <std::size_t N>
class [[nodiscard]] LockAllGuard {
 public:
  /// @brief Adopts entries that are already locked, sorted. Called by lock_all(); not meant
  /// for users.
  /// @throws nothing.
  LockAllGuard(std::adopt_lock_t, const std::array<detail::LockEntry, N>& entries) noexcept
      : entries_(entries), owns_(true) {}

  /// @brief Takes over @p other's locks; @p other then owns none.
  /// @throws nothing.
  LockAllGuard(LockAllGuard&& other) noexcept : entries_(other.entries_), owns_(std::exchange(other.owns_, false)) {}
  /// @brief Unlocks what this guard owns, then takes over @p other's locks.
  /// @throws nothing.
  LockAllGuard& operator=(LockAllGuard&& other) noexcept {
    if (this != &other) {
      unlock();
      entries_ = other.entries_;
      owns_ = std::exchange(other.owns_, false);
    }
    return *this;
  }
  /// @brief Not copyable: each lock must be unlocked once.
  LockAllGuard(const LockAllGuard&) = delete;
  /// @brief Not copy-assignable: each lock must be unlocked once.
  LockAllGuard& operator=(const LockAllGuard&) = delete;

  /// @brief Unlocks every lock still owned.
  /// @throws nothing.
  ~LockAllGuard() { unlock(); }

  /// @brief Unlocks every lock now (in reverse acquisition order); later calls do nothing.
  /// @throws nothing.
  void unlock() noexcept {
    if (owns_) {
      owns_ = false;
      detail::unlock_entries(entries_.data(), N);
    }
  }

  /// @brief True while the guard holds its locks.
  /// @throws nothing.
  [[nodiscard]] bool owns_lock() const noexcept { return owns_; }
  /// @brief Same as owns_lock().
  /// @throws nothing.
  explicit operator bool() const noexcept { return owns_; }

 private:
  std::array<detail::LockEntry, N> entries_;
  bool owns_;
};

/// @brief Locks every argument, in increasing address order, and returns a guard that
/// unlocks them all.
/// @tparam L lock types (BasicLockable: std::mutex, std::recursive_mutex, std::shared_mutex,
/// std::unique_lock<...>, user types with lock()/unlock()); they may differ.
/// @param locks the locks, in any order.
/// @return a LockAllGuard that owns all of them.
/// @throws ValueError when the same object is passed twice (locking it twice would deadlock).
/// @throws whatever a lock() throws (e.g. std::system_error); the locks already taken are
/// released first.
///
/// Blocks, with no time limit, until every lock is taken. Because every caller takes locks
/// in the same global order, two threads calling `lock_all(a, b)` and `lock_all(b, a)`
/// cannot deadlock. The order also holds against code that takes *one* of these locks and
/// then another with lock_all(); it does not protect against locks taken one by one outside
/// lock_all() in an inconsistent order.
///
/// std::scoped_lock(a, b) is also deadlock-free (it uses try-and-back-off, which can spin
/// under contention and has no timed form); lock_all() blocks on one lock at a time in a
/// fixed order and has a timed variant, try_lock_all_for().
///
/// @code
/// std::mutex from_m, to_m;
/// auto guard = troupe::lock_all(from_m, to_m);   // safe against lock_all(to_m, from_m)
/// transfer(from, to);
/// @endcode
/// @note Thread safety: any number of threads may call it concurrently on overlapping locks.
template <class... L>
[[nodiscard]] LockAllGuard<sizeof...(L)> lock_all(L&... locks) {
  static_assert(sizeof...(L) >= 1, "troupe::lock_all: needs at least one lock");
  static_assert((BasicLockable<L> && ...),
                "troupe::lock_all: every argument must be BasicLockable (have lock() and unlock())");
  std::array<detail::LockEntry, sizeof...(L)> entries{detail::make_lock_entry(locks)...};
  detail::lock_entries(entries.data(), entries.size());
  return LockAllGuard<sizeof...(L)>(std::adopt_lock, entries);
}

/// @brief Like lock_all(), but gives up after @p timeout, releasing whatever it had taken.
/// @tparam L lock types, each TimedLockable (e.g. std::timed_mutex).
/// @param timeout how long to try at most (any std::chrono::duration, >= 0; zero tries once).
/// @param locks the locks, in any order.
/// @return a guard owning all locks, or std::nullopt when the timeout passed first (then
/// no lock is held).
/// @throws ValueError when @p timeout is negative or the same object is passed twice.
/// @throws whatever a lock operation throws; the locks already taken are released first.
///
/// The whole acquisition shares one deadline: each lock gets the time that is left.
///
/// @code
/// std::timed_mutex a, b;
/// if (auto guard = troupe::try_lock_all_for(std::chrono::milliseconds(50), a, b)) {
///   // both held until guard goes out of scope
/// }
/// @endcode
/// @note Thread safety: as lock_all().
template <class Rep, class Period, class... L>
[[nodiscard]] std::optional<LockAllGuard<sizeof...(L)>> try_lock_all_for(std::chrono::duration<Rep, Period> timeout,
                                                                         L&... locks) {
  static_assert(sizeof...(L) >= 1, "troupe::try_lock_all_for: needs at least one lock");
  static_assert((TimedLockable<L> && ...),
                "troupe::try_lock_all_for: every lock must be TimedLockable "
                "(lock(), unlock() and try_lock_until(steady_clock::time_point)), e.g. std::timed_mutex");
  const Deadline deadline = Deadline::after(timeout, "try_lock_all_for");
  std::array<detail::LockEntry, sizeof...(L)> entries{detail::make_lock_entry(locks)...};
  if (!detail::try_lock_entries_until(entries.data(), entries.size(), deadline)) return std::nullopt;
  return std::optional<LockAllGuard<sizeof...(L)>>(std::in_place, std::adopt_lock, entries);
}

}  // namespace troupe
