#pragma once
/// @file
/// @brief troupe::Task<T>: a lazy C++20 coroutine that runs on a ThreadPool (asyncio's
/// coroutines, gevent's greenlets), with spawn / run and `co_await` on Tasks and Futures.
///
/// docs/coroutines.md explains where a task resumes, cancellation and the decisions.

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/future.hpp"
#include "troupe/pool/thread_pool.hpp"

namespace troupe {

template <class T = void>
class Task;

namespace detail {

/// The ThreadPool's door for coroutine resumptions: a plain task, no Future.
struct PoolAccess {
  template <class Fn>
  static bool post(ThreadPool& pool, Fn&& fn) {
    return pool.try_push_plain(std::forward<Fn>(fn));
  }
};

/// The debug check of `TROUPE_CORO_STALL_MS` (lib/src/coro/stall.cpp): the limit of one
/// step now, zero when the check is off. One atomic load (settings()).
std::chrono::nanoseconds coro_stall_limit() noexcept;
/// Counts a step that took @p took after resuming from @p site and reports it on stderr
/// (the first reports of the process; the count goes on: troupe::coro_stalls()).
void report_coro_stall(std::chrono::nanoseconds took, const char* site) noexcept;

/// Runs one step of a coroutine: resumes @p h, which runs until its next suspension or its
/// end. With the debug check on, a step longer than the limit is reported, naming @p site
/// (what the task resumed from). Measured when the step ends: no thread watches.
inline void run_step(std::coroutine_handle<> h, const char* site) noexcept {
  const auto limit = coro_stall_limit();
  if (limit.count() == 0) {
    h.resume();
    return;
  }
  const auto t0 = Clock::now();
  h.resume();
  const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
  if (took > limit) report_coro_stall(took, site);
}

/// Resumes @p h on a worker of @p pool. A pool that no longer accepts tasks (shut down)
/// gets the resumption run in the calling thread instead, so that no task is lost.
/// @p site names what the task resumes from (the debug check's report).
inline void resume_on(ThreadPool* pool, std::coroutine_handle<> h, const char* site) noexcept {
  bool posted = false;
  if (pool != nullptr) {
    try {
      posted = PoolAccess::post(*pool, [h, site]() noexcept { run_step(h, site); });
    } catch (...) {  // out of memory: resume here rather than lose the task
    }
  }
  if (!posted) run_step(h, site);
}

/// What the timer service calls when a deadline passes (troupe/coro/sleep.hpp).
class TimerEntry {
 public:
  virtual ~TimerEntry() = default;
  /// Called once, on the timer thread, when the entry's deadline passes. Must not block.
  virtual void on_timer() noexcept = 0;
};

/// The meeting point of one suspension: whichever of its events fires first (the awaited
/// thing is done, the token is stopped, a timer passed) wins and resumes the coroutine on
/// its pool, exactly once. Shared (std::shared_ptr) because a losing event may fire after
/// the coroutine has moved on (a future's callback outlives a cancelled await).
///
/// Protocol: the awaiter registers every event source, then calls arm() as the last thing
/// of await_suspend and returns its value: an event that fired before arm() leaves the
/// resumption to await_suspend (it returns false), one that fires after posts it.
///
/// The thread that posts the resumption may be foreign to the pool (the timer thread, the
/// engine's, another pool's worker) and still be inside the pool's push() when the resumed
/// task runs to its end, and the program destroys the pool. So the resumption first waits
/// (the one wait loop; a window of a push's length) until the poster is out of push().
class Waker : public TimerEntry, public std::enable_shared_from_this<Waker> {
 public:
  static constexpr int kPending = 0;
  static constexpr int kDone = 1;
  static constexpr int kCancelled = 2;

  /// @p site: what the task awaits (a static string; the debug check's report names it).
  Waker(std::coroutine_handle<> h, ThreadPool* pool, const char* site) noexcept
      : handle_(h), pool_(pool), site_(site) {}

  /// Fires with @p reason (kDone, kCancelled); true if this call won.
  bool fire(int reason) noexcept {
    int expected = kPending;
    if (!reason_.compare_exchange_strong(expected, reason, std::memory_order_acq_rel)) return false;
    if ((state_.fetch_or(kFired, std::memory_order_acq_rel) & kArmed) != 0) post();
    return true;
  }
  /// The end of await_suspend: true to stay suspended, false when an event already fired.
  bool arm() noexcept { return (state_.fetch_or(kArmed, std::memory_order_acq_rel) & kFired) == 0; }
  /// The winning reason (kPending until one fired).
  int reason() const noexcept { return reason_.load(std::memory_order_acquire); }
  void on_timer() noexcept override { fire(kDone); }

 private:
  static constexpr std::uint8_t kArmed = 1;
  static constexpr std::uint8_t kFired = 2;
  static constexpr std::uint8_t kPosted = 4;

  void post() noexcept {
    bool posted = false;
    if (pool_ != nullptr) {
      try {
        posted = PoolAccess::post(*pool_, [self = shared_from_this()]() noexcept { self->resume_posted(); });
      } catch (...) {  // out of memory: resume here rather than lose the task
      }
    }
    if (!posted) {
      run_step(handle_, site_);
      return;
    }
    state_.fetch_or(kPosted, std::memory_order_release);
    word_.notify_all();
  }
  void resume_posted() noexcept {
    if ((state_.load(std::memory_order_acquire) & kPosted) == 0) {
      WaitParams params;
      params.help = false;  // nothing else may run on this stack before the resumption
      word_.wait([this] { return (state_.load(std::memory_order_acquire) & kPosted) != 0; }, Deadline{}, nullptr,
                 "troupe coroutine resumption", params);
    }
    run_step(handle_, site_);
  }

  std::coroutine_handle<> handle_;
  ThreadPool* pool_;
  const char* site_;
  std::atomic<int> reason_{kPending};
  std::atomic<std::uint8_t> state_{0};
  WaitWord word_;
};

/// Fires a Waker with kCancelled: the callback of a std::stop_callback.
struct CancelWaker {
  std::shared_ptr<Waker> waker;
  void operator()() const noexcept { waker->fire(Waker::kCancelled); }
};
using WakerStopCallback = std::stop_callback<CancelWaker>;

/// Throws CancelledError "<what>: cancelled by token".
[[noreturn]] inline void throw_coro_cancelled(const char* what) {
  throw CancelledError(std::string(what).append(": cancelled by token"));
}

/// What every troupe coroutine's promise carries: the pool it resumes on and its token.
struct PromiseBase {
  ThreadPool* pool = nullptr;
  std::stop_token token;
};

template <class P>
concept TroupePromise = std::is_base_of_v<PromiseBase, P>;

/// The outcome of a Task: nothing yet, a value, or an exception.
template <class T>
class TaskResult {
 public:
  template <class U>
  void return_value(U&& v) {
    result_.template emplace<1>(std::forward<U>(v));
  }
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
  T take() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    return std::move(std::get<1>(result_));
  }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};
template <>
class TaskResult<void> {
 public:
  void return_void() noexcept {}
  void unhandled_exception() noexcept { error_ = std::current_exception(); }
  void take() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

/// Awaits a Task: the child inherits the pool and (unless given one) the token and runs in
/// the awaiting thread. Whichever of the two ends second continues the parent: a child
/// that completes within await_suspend lets the parent go on in place (no resumption, so a
/// loop of a million `co_await small()` does not grow the stack, at any optimization
/// level: GCC 12 makes a symmetric transfer a tail call only at -O2 without sanitizers);
/// a child that suspended resumes its parent when it ends (symmetric transfer).
template <class T>
class TaskAwaiter {
 public:
  TaskAwaiter(std::coroutine_handle<typename Task<T>::promise_type> child, std::optional<std::stop_token> token)
      : child_(child), token_(std::move(token)) {}
  bool await_ready() const noexcept { return false; }
  template <TroupePromise P>
  bool await_suspend(std::coroutine_handle<P> parent) noexcept {
    auto& c = child_.promise();
    c.pool = parent.promise().pool;
    c.token = token_ ? *token_ : parent.promise().token;
    c.continuation = parent;
    child_.resume();
    // True: the child ended already: go on in place. False: it will resume the parent.
    return !c.handoff.exchange(true, std::memory_order_acq_rel);
  }
  T await_resume() { return child_.promise().take(); }

 private:
  std::coroutine_handle<typename Task<T>::promise_type> child_;
  std::optional<std::stop_token> token_;
};

/// Awaits a Future, resuming on the awaiting task's pool (never in the completing thread).
/// @p cancellable: a stop request on the task's token ends the await with CancelledError
/// naming @p what (the future itself is left alone).
template <class U>
class FutureAwaiter {
 public:
  FutureAwaiter(Future<U> f, const char* what, bool cancellable) noexcept
      : future_(std::move(f)), what_(what), cancellable_(cancellable) {}
  bool await_ready() const { return future_.done(); }
  template <TroupePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    auto& pr = h.promise();
    if (cancellable_ && pr.token.stop_requested()) {
      cancelled_ = true;
      return false;
    }
    waker_ = std::make_shared<Waker>(h, pr.pool, what_);
    if (cancellable_ && pr.token.stop_possible()) stop_.emplace(pr.token, CancelWaker{waker_});
    future_.add_done_callback([w = waker_]() noexcept { w->fire(Waker::kDone); });
    return waker_->arm();
  }
  U await_resume() {
    stop_.reset();
    if (cancelled_ || (waker_ && waker_->reason() == Waker::kCancelled)) throw_coro_cancelled(what_);
    return std::move(future_).result();
  }

 private:
  Future<U> future_;
  const char* what_;
  bool cancellable_;
  bool cancelled_ = false;
  std::shared_ptr<Waker> waker_;
  std::optional<WakerStopCallback> stop_;
};

/// The coroutine behind spawn(): runs the task and completes the promise.
struct Detached {
  struct promise_type : PromiseBase {
    Detached get_return_object() noexcept { return Detached{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // drive() catches everything
  };
  std::coroutine_handle<promise_type> handle;
};

template <class T>
Detached drive(Task<T> task, Promise<T> promise) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      promise.set_result();
    } else {
      promise.set_result(co_await std::move(task));
    }
  } catch (...) {
    try {
      promise.set_exception(std::current_exception());
    } catch (...) {  // already done: nothing to report to
    }
  }
}

}  // namespace detail

/// @brief A lazy coroutine returning T, run on a ThreadPool (asyncio's coroutine object).
///
/// A function returning `troupe::Task<T>` that uses `co_await` / `co_return` is a
/// coroutine; calling it creates the task without running anything. It starts when it
/// is awaited by another task (`T v = co_await child();`, running in the same thread by
/// same thread) or spawned on a pool (troupe::spawn, troupe::run).
///
/// Inside, `co_await` works on: another Task, a troupe::Future (local or remote),
/// troupe::sleep, troupe::mpi_request, AsyncEvent / AsyncSemaphore / AsyncQueue, and the
/// combinators gather / when_any / wait_for. Each suspension costs no thread: the task
/// resumes later on a worker of its pool. Exceptions propagate through `co_await` as
/// themselves. A stop request on the token given to spawn ends the current (and every
/// later) suspension with CancelledError.
///
/// Move-only; destroying a Task that never started frees it. Not thread safe itself (it is
/// owned by one awaiter), though the work it does may run on any worker of its pool.
///
/// @code
/// troupe::Task<int> answer() { co_await troupe::sleep(10ms); co_return 42; }
/// troupe::Task<int> twice() { co_return 2 * co_await answer(); }
/// int v = troupe::run(pool, twice(), 5s);   // 84
/// @endcode
template <class T>
class [[nodiscard]] Task {
  static_assert(!std::is_reference_v<T>, "troupe::Task<T>: T must not be a reference");

 public:
  using value_type = T;

  /// @internal The coroutine promise.
  struct promise_type : detail::PromiseBase, detail::TaskResult<T> {
    std::coroutine_handle<> continuation = std::noop_coroutine();
    std::atomic<bool> handoff{false};  // set by the first of: the awaiter's start, the end
    Task get_return_object() noexcept { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct FinalAwaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        auto& p = h.promise();
        // The awaiter is past its start: resume it. Else it goes on by itself.
        return p.handoff.exchange(true, std::memory_order_acq_rel) ? p.continuation : std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
  };

  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  /// @brief True when the task holds a coroutine (not moved from, not default built).
  bool valid() const noexcept { return static_cast<bool>(handle_); }

  /// @brief Runs the task in the awaiting task (same thread, no pool hop) and
  /// returns its value or rethrows its exception. The task inherits the awaiter's pool and
  /// cancellation token. @throws InvalidStateError on an empty task.
  detail::TaskAwaiter<T> operator co_await() && { return detail::TaskAwaiter<T>(checked("co_await Task"), {}); }

  /// @internal As co_await, with a token of the caller's choosing (wait_for, gather).
  detail::TaskAwaiter<T> with_token(std::stop_token token) && {
    return detail::TaskAwaiter<T>(checked("co_await Task"), std::move(token));
  }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  std::coroutine_handle<promise_type> checked(const char* api) const {
    if (!handle_) throw InvalidStateError(std::string(api).append(": the task is empty (moved from?)"));
    return handle_;
  }
  void reset() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }

  std::coroutine_handle<promise_type> handle_;
};

/// @brief Awaits a Future in a Task: the task suspends (no thread waits) and resumes on its
/// pool when the future is done; returns its value or rethrows its exception
/// (CancelledError when it was cancelled). Works for local and remote futures alike.
/// A stop request on the task's token ends the await with CancelledError (the future
/// itself is left running). @throws InvalidStateError on an empty future.
template <class U>
detail::FutureAwaiter<U> operator co_await(Future<U> f) {
  return detail::FutureAwaiter<U>(std::move(f), "co_await Future", true);
}

/// @brief Starts @p task on @p pool and returns the Future of its result (asyncio's
/// create_task, gevent.spawn). Never blocks.
///
/// The task runs on a worker of @p pool and every resumption after a suspension too. @p
/// token (optional) cancels it: a stop request ends the await it is suspended in (and any
/// later one) with CancelledError, which the task may catch; uncaught, the future ends
/// with it. The pool must outlive the task. The future is marked running at once:
/// Future::cancel() cannot stop a task, its token can.
/// @throws InvalidStateError on an empty task or a pool that is shut down.
template <class T>
Future<T> spawn(ThreadPool& pool, Task<T> task, CancellationToken token = {}) {
  if (!task.valid()) throw InvalidStateError("troupe::spawn: the task is empty (moved from?)");
  Promise<T> promise;
  auto future = promise.get_future();
  promise.set_running_or_notify_cancel();
  auto driver = detail::drive<T>(std::move(task), std::move(promise));
  driver.handle.promise().pool = &pool;
  driver.handle.promise().token = std::move(token);
  bool posted = false;
  try {
    posted = detail::PoolAccess::post(pool, [h = driver.handle]() noexcept { detail::run_step(h, "troupe::spawn"); });
  } catch (...) {
    driver.handle.destroy();
    throw;
  }
  if (!posted) {
    driver.handle.destroy();
    throw InvalidStateError("troupe::spawn: the pool is shut down");
  }
  return future;
}

/// @brief Runs @p task on @p pool and waits for its result at most @p timeout
/// (asyncio.run). From a worker of that pool the wait runs other tasks meanwhile.
/// On timeout the task is cancelled (a stop request on its token) and TimeoutError is
/// thrown; the task then unwinds on the pool by itself.
/// @throws TimeoutError; ValueError for a negative timeout; the task's exception.
template <class T, class Rep, class Period>
T run(ThreadPool& pool, Task<T> task, std::chrono::duration<Rep, Period> timeout) {
  auto deadline = Deadline::after(timeout, "troupe::run");
  CancellationSource source;
  auto future = spawn(pool, std::move(task), source.get_token());
  if (!future.wait_until(deadline.infinite() ? Clock::time_point::max() : deadline.time_point())) {
    source.request_stop();
    throw TimeoutError(std::string("troupe::run: the task did not finish within ")
                           .append(std::to_string(std::chrono::duration<double>(timeout).count()))
                           .append("s (it was cancelled)"));
  }
  return std::move(future).result();
}

namespace detail {
struct ThisToken {
  std::stop_token token;
  bool await_ready() const noexcept { return false; }
  template <TroupePromise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    token = h.promise().token;
    return false;
  }
  std::stop_token await_resume() noexcept { return std::move(token); }
};
struct ThisPool {
  ThreadPool* pool = nullptr;
  bool await_ready() const noexcept { return false; }
  template <TroupePromise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    pool = h.promise().pool;
    return false;
  }
  ThreadPool& await_resume() noexcept { return *pool; }
};
}  // namespace detail

/// @brief The number of coroutine steps of this process that held a pool worker longer
/// than `TROUPE_CORO_STALL_MS` (the debug check; always 0 while it is off). The first
/// ones are also reported on stderr. Thread safe, never blocks.
std::uint64_t coro_stalls() noexcept;

/// @brief `co_await troupe::this_token()` gives the running task's CancellationToken (to
/// pass to a blocking call, or to poll). Never suspends.
inline detail::ThisToken this_token() noexcept { return {}; }
/// @brief `co_await troupe::this_pool()` gives the pool the running task resumes on (to
/// spawn siblings). Never suspends.
inline detail::ThisPool this_pool() noexcept { return {}; }

}  // namespace troupe
