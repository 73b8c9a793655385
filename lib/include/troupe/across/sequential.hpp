#pragma once
/// @file
/// @brief troupe::Sequential — mpi4py.util.sync.Sequential: the ranks run a region one
/// after the other, in rank order.

#include <atomic>
#include <chrono>
#include <memory>
#include <type_traits>
#include <utility>

#include "troupe/core/deadline.hpp"
#include "troupe/core/scope.hpp"

namespace troupe {

namespace detail {
class Handle;
}

/// @brief Runs a region on rank 0, then rank 1, ..., then the last rank (mpi4py's
/// `with Sequential(comm): ...`).
///
/// **Mechanism** (docs/sync-across.md): a turn token. begin() on rank 0 returns at once; on
/// rank i it waits for the token that rank i-1's end() sends it (a hub notice, no reply);
/// end() on rank i passes the token to rank i+1. Tokens are counted, so the region can be
/// used again (round k of rank i waits for round k of rank i-1). Unlike mpi4py every wait
/// has a timeout.
///
/// @code
/// troupe::Sequential seq(troupe::Scope::Ranks);      // collective
/// seq.run([&] { append_my_line(file); }, std::chrono::seconds(30));
/// { troupe::Sequential::Turn turn(seq, std::chrono::seconds(30)); print_my_part(); }
/// @endcode
///
/// @note Construction is collective (every rank builds its cross-rank objects in the same
/// order). begin() and end() pair up on each rank; call them from one thread at a time.
/// Not copyable or movable. Waiting for the turn does not help the pool.
class Sequential {
 public:
  /// @brief A sequential region over the ranks of the live Runtime.
  /// @throws ValueError when @p scope is not Scope::Ranks (the parties are ranks);
  /// InvalidStateError without a live Runtime; TimeoutError when the first cross-rank object
  /// is not built by every rank within the start-up timeout.
  explicit Sequential(Scope scope = Scope::Ranks);
  ~Sequential();
  Sequential(const Sequential&) = delete;
  Sequential& operator=(const Sequential&) = delete;

  /// @brief Waits for this rank's turn, at most @p timeout.
  /// @throws TimeoutError "Sequential::begin: rank i did not get its turn within ..." when
  /// the previous rank has not called end() in time; InvalidStateError when this rank is
  /// already in its turn; BrokenExecutor when a lower rank was lost; ValueError for a
  /// negative timeout.
  template <class Rep, class Period>
  void begin(std::chrono::duration<Rep, Period> timeout) {
    begin(Deadline::after(timeout, "Sequential::begin"));
  }
  /// @brief Waits for this rank's turn until @p deadline (Deadline{}: no limit) or a stop
  /// on @p token (CancelledError). @throws as begin(timeout).
  void begin(const Deadline& deadline, CancellationToken token = {});
  /// @brief Ends this rank's turn: passes it to the next rank. Never blocks.
  /// @throws InvalidStateError "Sequential::end: ..." when begin() did not start a turn, or
  /// when the Runtime is gone.
  void end();

  /// @brief begin(timeout), @p fn(), end() — end() also when @p fn throws (as mpi4py's
  /// `__exit__`), so the next ranks are not kept waiting.
  /// @return what @p fn returns. @throws as begin(); what @p fn throws.
  template <class F, class Rep, class Period>
  decltype(auto) run(F&& fn, std::chrono::duration<Rep, Period> timeout) {
    Turn turn(*this, timeout);
    return std::forward<F>(fn)();
  }

  /// @brief RAII turn: begin() in the constructor, end() in the destructor.
  class Turn {
   public:
    /// @brief Waits for the turn, at most @p timeout. @throws as Sequential::begin.
    template <class Rep, class Period>
    Turn(Sequential& seq, std::chrono::duration<Rep, Period> timeout) : seq_(seq) {
      seq_.begin(timeout);
    }
    /// @brief Ends the turn (an error of end(), only when the Runtime is gone, is dropped).
    ~Turn() {
      try {
        seq_.end();
      } catch (...) {
      }
    }
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;

   private:
    Sequential& seq_;
  };

 private:
  std::unique_ptr<detail::Handle> handle_;
  std::atomic<bool> active_{false};
};

}  // namespace troupe
