#pragma once
/// @file
/// @brief troupe::Timer — Python's threading.Timer: call a function once after a delay,
/// unless cancelled first.

#include <chrono>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "troupe/core/deadline.hpp"

namespace troupe {

namespace detail {
/// Type-erased, move-only `void()` callable (std::move_only_function is C++23).
struct TimerFunction {
  virtual ~TimerFunction() = default;
  virtual void operator()() = 0;
};
template <class F>
struct TimerFunctionImpl final : TimerFunction {
  explicit TimerFunctionImpl(F f) : fn(std::move(f)) {}
  void operator()() override { std::invoke(fn); }
  F fn;
};
}  // namespace detail

/// @brief Runs a function once, on its own thread, after an interval, unless cancelled
/// first (Python's `threading.Timer`).
///
/// Nothing happens until start(). The function then runs once, `interval` after start(),
/// unless cancel() came first; cancel() after the function has started is a no-op.
/// finished() and join() tell when it is over (function returned, or timer cancelled).
///
/// An exception thrown by the function is kept and rethrown by join(); if nobody joins,
/// the destructor prints it to stderr (as Python's threading.excepthook does) rather than
/// lose it silently.
///
/// @code
/// troupe::Timer watchdog(std::chrono::seconds(30), [] { std::fputs("stuck?\n", stderr); });
/// watchdog.start();
/// do_work();
/// watchdog.cancel();   // finished in time: the warning never prints
/// @endcode
///
/// @note Thread safety: start(), cancel(), finished(), cancelled() and join() may be called
/// concurrently from any thread. The destructor (and move assignment) must not race with
/// other calls. The destructor cancels a pending timer and joins its thread: it never waits
/// for the interval, but it does wait for a function that is already running.
class Timer {
 public:
  /// @brief A timer that will call `fn(args...)` @p interval after start().
  /// @param interval delay, any std::chrono::duration >= 0.
  /// @param fn callable; may be move-only; decay-copied into the timer.
  /// @param args arguments, decay-copied (as Python's `Timer(interval, function, args)`).
  /// @throws ValueError when @p interval is negative:
  /// "Timer: interval must be >= 0, got -1.000000s".
  template <class Rep, class Period, class F, class... Args>
  requires std::is_invocable_v < std::decay_t<F>
  &, std::decay_t<Args>&... > Timer(std::chrono::duration<Rep, Period> interval, F&& fn, Args&&... args)
      : Timer(std::chrono::duration<double>(interval),
              make_function(std::forward<F>(fn), std::forward<Args>(args)...)) {}

  /// @brief Cancels the timer if it has not fired yet, then joins its thread.
  ///
  /// Blocks only while the function is running. Prints an exception thrown by the
  /// function to stderr if join() never reported it.
  ~Timer();

  /// @brief Not copyable: a timer owns its thread.
  Timer(const Timer&) = delete;
  /// @brief Not copy-assignable: a timer owns its thread.
  Timer& operator=(const Timer&) = delete;
  /// @brief Moves the timer (its thread keeps running). The moved-from timer is empty:
  /// only destruction and assignment are allowed.
  /// @throws nothing.
  Timer(Timer&& other) noexcept;
  /// @brief Destroys this timer as the destructor would, then takes over @p other.
  /// @throws nothing.
  Timer& operator=(Timer&& other) noexcept;

  /// @brief Starts the countdown on a new thread.
  /// @throws InvalidStateError when the timer was already started (Python: RuntimeError).
  /// @throws std::system_error when no thread can be created.
  ///
  /// Starting a timer that was cancelled before start() is allowed and does nothing.
  void start();

  /// @brief Stops the timer if its function has not started yet (Python's `cancel()`).
  /// @return true when this call prevented the function from running; false when it had
  /// already started or finished, or the timer was already cancelled (then it is a no-op).
  /// @throws nothing. Does not block (beyond a short internal lock).
  bool cancel() noexcept;

  /// @brief True once the function has returned (or thrown) or the timer was cancelled
  /// (Python's `finished` event is set).
  /// @throws nothing.
  [[nodiscard]] bool finished() const noexcept;

  /// @brief True when cancel() stopped the function from running.
  /// @throws nothing.
  [[nodiscard]] bool cancelled() const noexcept;

  /// @brief Blocks until finished(), with no time limit.
  /// @throws InvalidStateError when the timer was neither started nor cancelled (it would
  /// never finish); rethrows the function's exception if it threw.
  void join();

  /// @brief Blocks until finished(), at most @p timeout.
  /// @param timeout any std::chrono::duration, >= 0.
  /// @return true when finished, false on timeout.
  /// @throws ValueError when @p timeout is negative; otherwise as join().
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join(Deadline::after(timeout, "Timer::join"));
  }

  /// @brief Blocks until finished(), @p deadline, or a stop request on @p token.
  /// @return true when finished, false when the deadline passed first.
  /// @throws CancelledError when @p token is stopped first; otherwise as join().
  bool join(const Deadline& deadline, CancellationToken token = {});

  /// @brief The delay between start() and the call.
  /// @throws nothing.
  [[nodiscard]] std::chrono::duration<double> interval() const noexcept { return interval_; }

 private:
  struct State;

  template <class F, class... Args>
  static std::unique_ptr<detail::TimerFunction> make_function(F&& fn, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      return std::make_unique<detail::TimerFunctionImpl<std::decay_t<F>>>(std::forward<F>(fn));
    } else {
      auto bound = [f = std::forward<F>(fn), ... a = std::forward<Args>(args)]() mutable { std::invoke(f, a...); };
      return std::make_unique<detail::TimerFunctionImpl<decltype(bound)>>(std::move(bound));
    }
  }

  Timer(std::chrono::duration<double> interval, std::unique_ptr<detail::TimerFunction> fn);
  void destroy() noexcept;

  std::chrono::duration<double> interval_;
  std::unique_ptr<State> state_;
};

}  // namespace troupe
