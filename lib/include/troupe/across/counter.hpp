#pragma once
/// @file
/// @brief troupe::Counter — a global atomic counter for self-scheduling loops
/// (mpi4py.util.sync.Counter), over the threads of one rank or over every rank.

#include <atomic>
#include <cstdint>
#include <memory>

#include "troupe/core/scope.hpp"

namespace troupe {

namespace detail {
class AtomicCell;
class Hub;
}  // namespace detail

/// @brief A 64-bit counter every party can add to and read atomically.
///
/// **Mechanism** (docs/across.md, "Counter"): Scope::Threads is a `std::atomic`. Across ranks
/// the value lives in an `MPI_Win_allocate` window on the host rank, inside one passive
/// epoch for the counter's whole life; next() is one `MPI_Fetch_and_op` and one
/// `MPI_Win_flush` (no lock/unlock per call, unlike mpi4py's Counter), from any thread at
/// MPI_THREAD_MULTIPLE. The host takes no part: it need not call MPI while others count.
///
/// @code
/// troupe::Counter next_item(troupe::Scope::Ranks);             // collective
/// for (auto i = next_item.next(); i < n; i = next_item.next())  // self-scheduling loop
///   work(i);
/// @endcode
///
/// @note Construction and destruction with a cross-rank scope are collective: every rank,
/// in the same order as its other cross-rank objects; each raises TimeoutError (naming the
/// ranks that did not come) rather than hang when a rank does not arrive within
/// TROUPE_STARTUP_TIMEOUT_MS. Every member is thread-safe. Below MPI_THREAD_MULTIPLE only
/// the thread that built troupe's first cross-rank object may call next() (InvalidStateError
/// otherwise). Not copyable or movable.
class Counter {
 public:
  /// @brief A counter over @p scope starting at @p start, held on rank @p host.
  /// @throws ValueError when @p host is not a rank; InvalidStateError for a cross-rank scope
  /// without a live Runtime; TimeoutError when a rank does not build it in time.
  explicit Counter(Scope scope = Scope::Threads, std::int64_t start = 0, int host = 0);
  /// @brief Collective for cross-rank scopes (bounded wait, see the class note).
  ~Counter();
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  /// @brief Adds @p incr and returns the value before (mpi4py's `Counter.next(incr)`).
  /// Never blocks on other parties (one remote atomic across ranks).
  /// @throws InvalidStateError from a thread that may not call MPI (see the class note); MpiError.
  std::int64_t next(std::int64_t incr = 1);
  /// @brief Same as next(@p delta) (the std::atomic spelling).
  std::int64_t fetch_add(std::int64_t delta) { return next(delta); }
  /// @brief The current value (a remote read across ranks).
  std::int64_t value();
  /// @brief The scope given at construction.
  Scope scope() const noexcept { return scope_; }

 private:
  void check_thread(const char* api) const;
  Scope scope_;
  std::atomic<std::int64_t> local_{0};
  std::shared_ptr<detail::Hub> hub_;
  std::unique_ptr<detail::AtomicCell> cell_;
};

}  // namespace troupe
