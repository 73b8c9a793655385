#pragma once
/// @file
/// @brief troupe::Future<T> and troupe::Promise<T>: concurrent.futures.Future in C++.

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/detail/shared_state.hpp"

namespace troupe {

template <class T>
class Future;
template <class T>
class Promise;

namespace detail {
template <class T>
Future<T> make_future(StatePtr<SharedState<T>> s) noexcept;
template <class T>
Future<T> borrow_future(SharedState<T>* s) noexcept;
template <class T>
struct is_future : std::false_type {};
template <class T>
struct is_future<Future<T>> : std::true_type {};
[[noreturn]] void throw_timeout(const char* api, const Deadline& d);
[[noreturn]] void throw_cancelled(const char* api);
[[noreturn]] void throw_no_state(const char* api);
void report_callback_exception(const char* where) noexcept;

template <class T, class F>
auto then_type() {
  if constexpr (std::is_invocable_v<F&, const Future<T>&>) {
    return std::type_identity<std::invoke_result_t<F&, const Future<T>&>>{};
  } else if constexpr (std::is_void_v<T>) {
    return std::type_identity<std::invoke_result_t<F&>>{};
  } else {
    return std::type_identity<std::invoke_result_t<F&, T&>>{};
  }
}
template <class T, class F>
using then_result_t = typename decltype(then_type<T, std::decay_t<F>>())::type;
}  // namespace detail

/// @brief The eventual result of an asynchronous computation (concurrent.futures.Future).
///
/// A Future is a cheap, copyable handle; copies share one state, as Python objects do.
/// The state is one of pending, running, finished (with a value or an exception) or
/// cancelled. Every method is thread safe.
///
/// @tparam T the result type; `void` is allowed.
///
/// @code
/// troupe::ThreadPool pool;
/// auto f = pool.submit([](int x) { return x * x; }, 7);
/// f.add_done_callback([](const troupe::Future<int>& g) { std::printf("%d\n", g.result()); });
/// int v = f.result(std::chrono::seconds(5));   // 49, or TimeoutError
/// @endcode
///
/// @note A wait (result, exception, wait_for) called from a ThreadPool worker runs other
/// pool tasks while it waits, so tasks that wait on tasks they submitted cannot deadlock.
template <class T>
class Future {
 public:
  using value_type = T;
  /// @brief An empty future (valid() is false); every query but valid() throws InvalidStateError.
  Future() noexcept = default;

  /// @brief True when the future has a state.
  bool valid() const noexcept { return static_cast<bool>(state_); }
  /// @brief True when finished or cancelled. Never blocks.
  bool done() const {
    check("Future::done");
    return state_->is_terminal();
  }
  /// @brief True while the task is running (it can no longer be cancelled). Never blocks.
  bool running() const {
    check("Future::running");
    return state_->phase() == detail::StateBase::kRunning;
  }
  /// @brief True when cancelled. Never blocks.
  bool cancelled() const {
    check("Future::cancelled");
    return state_->phase() == detail::StateBase::kCancelled;
  }
  /// @brief Cancels the call if it has not started. Returns false when it is running or
  /// finished; true when it is (now or already) cancelled. Never blocks.
  bool cancel() {
    check("Future::cancel");
    return state_->cancel() || state_->phase() == detail::StateBase::kCancelled;
  }

  /// @brief Waits without limit and returns the value (or rethrows the task's exception).
  ///
  /// On an lvalue future, a reference to the value held by the shared state (valid while
  /// any copy of this future lives). On an rvalue future (`pool.submit(f).result()`), the
  /// value itself, so that `for (auto x : pool.submit(f).result())` does not read freed
  /// memory: moved out when this future is the state's only Future handle (whatever the
  /// producer, such as a Promise or an executor, still holds: it never reads the value
  /// again), else copied. Other copies of the future, and callbacks added through
  /// add_done_callback / then that have not run yet, count as handles. A move-only value
  /// is moved out in any case; other copies then see a moved-from value, and so does a
  /// future obtained afterwards (Promise::get_future after the value was taken).
  /// @throws CancelledError if cancelled; the task's exception if it threw.
  decltype(auto) result() const& { return result_impl(Deadline{}, nullptr, "Future::result"); }
  /// @brief As result(), returning the value by value (see there).
  T result() && { return take_result(Deadline{}, nullptr, "Future::result"); }
  /// @brief As result(), giving up after @p timeout.
  /// @throws TimeoutError when the timeout passes; ValueError when it is negative.
  template <class Rep, class Period>
  decltype(auto) result(std::chrono::duration<Rep, Period> timeout) const& {
    return result_impl(Deadline::after(timeout, "Future::result"), nullptr, "Future::result");
  }
  /// @brief As result(timeout), returning the value by value (see result()).
  template <class Rep, class Period>
  T result(std::chrono::duration<Rep, Period> timeout) && {
    return take_result(Deadline::after(timeout, "Future::result"), nullptr, "Future::result");
  }
  /// @brief As result(timeout), also ending with CancelledError when @p token is stopped.
  template <class Rep, class Period>
  decltype(auto) result(std::chrono::duration<Rep, Period> timeout, const CancellationToken& token) const& {
    return result_impl(Deadline::after(timeout, "Future::result"), &token, "Future::result");
  }
  /// @brief As result(timeout, token), returning the value by value (see result()).
  template <class Rep, class Period>
  T result(std::chrono::duration<Rep, Period> timeout, const CancellationToken& token) && {
    return take_result(Deadline::after(timeout, "Future::result"), &token, "Future::result");
  }
  /// @brief As result(), ending with CancelledError when @p token is stopped.
  decltype(auto) result(const CancellationToken& token) const& {
    return result_impl(Deadline{}, &token, "Future::result");
  }
  /// @brief As result(token), returning the value by value (see result()).
  T result(const CancellationToken& token) && { return take_result(Deadline{}, &token, "Future::result"); }
  /// @brief Same as result() (the std::future spelling).
  decltype(auto) get() const& { return result_impl(Deadline{}, nullptr, "Future::get"); }
  /// @brief Same as result() on an rvalue future: the value by value.
  T get() && { return take_result(Deadline{}, nullptr, "Future::get"); }

  /// @brief Waits and returns the task's exception, or nullptr if it returned normally.
  /// @throws CancelledError if cancelled.
  std::exception_ptr exception() const { return exception_impl(Deadline{}, "Future::exception"); }
  /// @brief As exception(), giving up after @p timeout with TimeoutError.
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    return exception_impl(Deadline::after(timeout, "Future::exception"), "Future::exception");
  }

  /// @brief Blocks until done (finished or cancelled).
  void wait() const {
    check("Future::wait");
    state_->wait(Deadline{});
  }
  /// @brief Blocks until done or @p timeout; returns done().
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    check("Future::wait_for");
    return state_->wait(Deadline::after(timeout, "Future::wait_for"));
  }
  /// @brief Blocks until done or the time point @p tp; returns done().
  bool wait_until(Clock::time_point tp) const {
    check("Future::wait_until");
    return state_->wait(Deadline::at(tp));
  }

  /// @brief Attaches @p fn, called as `fn(future)` (or `fn()`) when the future is done.
  ///
  /// Callbacks run in order of addition, in the thread that completes the future, or at
  /// once in the calling thread if it is already done. An exception escaping a callback
  /// is reported on stderr and otherwise ignored (as Python logs it).
  template <class F>
  void add_done_callback(F&& fn) const {
    check("Future::add_done_callback");
    // The callback holds the state by raw pointer: the state owns the callback and is alive
    // while it runs (its completer or the adding caller holds it). A copy of the future here
    // would keep a state that never finishes (its promise dropped) alive for ever.
    // A callback given the future may read the value: it is a reader from now until it has
    // run, so that a waiter woken before it runs copies the value rather than taking it.
    constexpr bool reads = std::is_invocable_v<F&, const Future<T>&>;
    add_reading_callback(reads, [fn = std::forward<F>(fn), raw = state_.get()]() mutable {
      try {
        if constexpr (reads) {
          const Future<T> self = detail::borrow_future(raw);
          fn(self);
        } else {
          static_assert(std::is_invocable_v<F&>,
                        "Future::add_done_callback: the callback must be callable as fn(const Future<T>&) or fn()");
          fn();
        }
      } catch (...) {
        detail::report_callback_exception("Future::add_done_callback");
      }
      if constexpr (reads) raw->drop_reader();
    });
  }

  /// @brief A future of `fn(value)` (or `fn(future)`), run when this one is done.
  ///
  /// If @p fn takes the value and this future failed or was cancelled, @p fn is not
  /// called and the returned future carries the same exception (CancelledError when
  /// cancelled). If @p fn takes a `const Future<T>&`, it is always called. @p fn runs in
  /// the thread that completes this future (or in the caller if already done).
  template <class F>
  auto then(F&& fn) const -> Future<detail::then_result_t<T, F>> {
    using U = detail::then_result_t<T, F>;
    check("Future::then");
    auto next = detail::StatePtr<detail::SharedState<U>>(new detail::SharedState<U>());
    // As in add_done_callback: the state, not a future, so that no cycle keeps it alive; a
    // reader until it has run (fn reads the value or the future).
    constexpr bool reads = !std::is_void_v<T> || std::is_invocable_v<F&, const Future<T>&>;
    add_reading_callback(reads, [fn = std::forward<F>(fn), raw = state_.get(), next]() mutable {
      try {
        if constexpr (std::is_invocable_v<F&, const Future<T>&>) {
          const Future<T> self = detail::borrow_future(raw);
          if constexpr (std::is_void_v<U>) {
            fn(self);
            next->set_value();
          } else {
            next->set_value(fn(self));
          }
        } else {
          if (raw->phase() == detail::StateBase::kCancelled) detail::throw_cancelled("Future::then");
          if (raw->has_error()) std::rethrow_exception(raw->error());
          if constexpr (std::is_void_v<T>) {
            if constexpr (std::is_void_v<U>) {
              fn();
              next->set_value();
            } else {
              next->set_value(fn());
            }
          } else {
            if constexpr (std::is_void_v<U>) {
              fn(raw->value());
              next->set_value();
            } else {
              next->set_value(fn(raw->value()));
            }
          }
        }
      } catch (...) {
        next->set_error(std::current_exception());
      }
      if constexpr (reads) raw->drop_reader();
    });
    return detail::make_future<U>(std::move(next));
  }

  /// @brief Identity of the shared state (for containers of futures).
  const void* id() const noexcept { return state_.get(); }
  friend bool operator==(const Future& a, const Future& b) noexcept { return a.state_.get() == b.state_.get(); }

  /// @internal Access to the state for the library's own algorithms: waits and error checks
  /// only (a raw pointer is no reader, so reading the value through it could race with an
  /// rvalue result() that moves the value out).
  detail::SharedState<T>* state() const noexcept { return state_.get(); }

 private:
  template <class U>
  friend Future<U> detail::make_future(detail::StatePtr<detail::SharedState<U>>) noexcept;
  template <class U>
  friend class Future;

  void check(const char* api) const {
    if (!state_) detail::throw_no_state(api);
  }
  // Adds a callback; when @p reads, it counts as a reader of the state from now until it
  // has run (the callback ends with drop_reader()).
  void add_reading_callback(bool reads, std::function<void()> cb) const {
    if (reads) state_->add_reader();
    try {
      state_->add_callback(std::move(cb));
    } catch (...) {  // not added (out of memory): it will never run
      if (reads) state_->drop_reader();
      throw;
    }
  }
  void wait_or_throw(const Deadline& d, const CancellationToken* token, const char* api) const {
    check(api);
    if (!state_->is_terminal() && !state_->wait(d, token)) detail::throw_timeout(api, d);
  }
  decltype(auto) result_impl(const Deadline& d, const CancellationToken* token, const char* api) const {
    wait_or_throw(d, token, api);
    if (state_->phase() == detail::StateBase::kCancelled) detail::throw_cancelled(api);
    if (state_->has_error()) std::rethrow_exception(state_->error());
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(state_->value());
    }
  }
  // result() of an rvalue future: the value is moved out when no other reader can read it
  // (no other Future handle, no pending callback that may read it; a producer still
  // holding the state does not count) or when it cannot be copied, copied otherwise. No
  // reader can appear meanwhile: a new one is a copy of an existing Future, a callback
  // added through one, or a producer's get_future() (documented on result()).
  T take_result(const Deadline& d, const CancellationToken* token, const char* api) const {
    if constexpr (std::is_void_v<T>) {
      result_impl(d, token, api);
    } else {
      const T& value = result_impl(d, token, api);
      if constexpr (std::is_copy_constructible_v<T>) {
        if (!state_->sole_reader()) return value;
      } else {
        (void)value;
      }
      return std::move(state_->value());
    }
  }
  std::exception_ptr exception_impl(const Deadline& d, const char* api) const {
    wait_or_throw(d, nullptr, api);
    if (state_->phase() == detail::StateBase::kCancelled) detail::throw_cancelled(api);
    return state_->error();
  }

  detail::ReaderPtr<detail::SharedState<T>> state_;
};

namespace detail {
template <class T>
Future<T> make_future(StatePtr<SharedState<T>> s) noexcept {
  Future<T> f;
  f.state_ = ReaderPtr<SharedState<T>>(std::move(s));
  return f;
}
/// A new handle on a state the caller knows to be alive (a callback, run by its state).
template <class T>
Future<T> borrow_future(SharedState<T>* s) noexcept {
  return make_future<T>(StatePtr<SharedState<T>>(s, /*adopt=*/false));
}
}  // namespace detail

/// @brief The producer side of a Future (what an executor holds).
///
/// set_result / set_exception may be called once; a second call throws
/// InvalidStateError, as Python's Future.set_result does on a done future.
/// Destroying a Promise whose future is still pending leaves it pending (use
/// set_exception to fail it). Thread safe.
template <class T>
class Promise {
 public:
  /// @brief A promise with a fresh pending state.
  Promise() : state_(new detail::SharedState<T>()) {}
  /// @brief The future bound to this promise (may be called many times).
  Future<T> get_future() const { return detail::make_future<T>(state_); }
  /// @brief Marks the future running; returns false if it was cancelled (then do not run).
  bool set_running_or_notify_cancel() { return state_->try_start(); }
  /// @brief Completes the future with a value.
  /// @throws InvalidStateError if already done.
  /// The call holds its own reference to the state: the thread that awaited the future may
  /// destroy this Promise as soon as the value is visible, while this call still wakes the
  /// waiters and runs the callbacks.
  template <class... A>
  void set_result(A&&... a) {
    const auto keep = state_;
    if (!keep->set_value(std::forward<A>(a)...)) throw InvalidStateError("Promise::set_result: future already done");
  }
  /// @brief Completes the future with an exception (holding its own reference, as set_result).
  /// @throws InvalidStateError if already done.
  void set_exception(std::exception_ptr e) {
    if (!e) throw ValueError("Promise::set_exception: exception_ptr is null");
    const auto keep = state_;
    if (!keep->set_error(std::move(e))) throw InvalidStateError("Promise::set_exception: future already done");
  }

 private:
  detail::StatePtr<detail::SharedState<T>> state_;
};

/// @brief A future that is already finished with @p value.
template <class T>
Future<std::decay_t<T>> make_ready_future(T&& value) {
  Promise<std::decay_t<T>> p;
  p.set_result(std::forward<T>(value));
  return p.get_future();
}
/// @brief A finished Future<void>.
inline Future<void> make_ready_future() {
  Promise<void> p;
  p.set_result();
  return p.get_future();
}
/// @brief A future that is already finished with exception @p e.
template <class T>
Future<T> make_exceptional_future(std::exception_ptr e) {
  Promise<T> p;
  p.set_exception(std::move(e));
  return p.get_future();
}

}  // namespace troupe
