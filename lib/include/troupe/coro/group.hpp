#pragma once
/// @file
/// @brief gevent's helpers for troupe tasks: TaskGroup (gevent.pool.Pool(n): at most n tasks
/// in flight) and AsyncResult<T> (gevent.event.AsyncResult: a one-shot value set from any
/// thread, awaited by tasks, waited for by threads).
///
/// AsyncResult is a thin name over the one mechanism troupe has for a one-shot value, a
/// Promise and its Future (`co_await future` in a task, `future.result(timeout)` in a
/// thread). TaskGroup is an AsyncSemaphore of n units around spawn, with a join.

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "troupe/coro/sync.hpp"
#include "troupe/coro/task.hpp"

namespace troupe {

/// @brief gevent.event.AsyncResult: a one-shot value (or exception) that any thread sets
/// once and that tasks `co_await` / threads wait for with a timeout.
///
/// A thin handle over a Promise<T> and its Future<T> (one mechanism per concept: nothing
/// here that a Promise and `co_await promise.get_future()` cannot do; the gevent names and
/// the one object are the convenience). Copies share the one value, as Python objects do.
/// Every member is thread safe. Each awaiter gets its own copy of the value (a move-only
/// value is moved out to the first reader, as Future::result() on an rvalue does).
///
/// @code
/// troupe::AsyncResult<int> answer;
/// auto t = troupe::spawn(pool, [](troupe::AsyncResult<int> r) -> troupe::Task<int> {
///   co_return 2 * co_await r;              // suspends until set()
/// }(answer));
/// std::thread([answer]() mutable { answer.set(21); }).detach();
/// int v = t.result(5s);                    // 42
/// @endcode
/// @tparam T the value type; `void` is allowed (set() without argument).
template <class T>
class AsyncResult {
 public:
  /// @brief An unset result.
  AsyncResult() : future_(promise_.get_future()) {}

  /// @brief Sets the value and resumes every awaiting task / waiting thread (gevent's
  /// set()). @throws InvalidStateError when already set. Never blocks.
  template <class... A>
  void set(A&&... value) {
    promise_.set_result(std::forward<A>(value)...);
  }
  /// @brief Sets an exception that every awaiter / get() rethrows (gevent's
  /// set_exception()). @throws InvalidStateError when already set; ValueError for null.
  void set_exception(std::exception_ptr e) { promise_.set_exception(std::move(e)); }
  /// @brief True once set (value or exception). Never blocks.
  bool ready() const { return future_.done(); }
  /// @brief True once set with a value (gevent's successful()). Never blocks.
  bool successful() const { return future_.done() && !future_.exception(); }

  /// @brief For threads: waits at most @p timeout and returns (a copy of) the value, or
  /// rethrows the exception that was set. From a pool worker the wait runs other tasks.
  /// @throws TimeoutError when not set in time; ValueError for a negative timeout.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) const {
    Future<T> f = future_;
    return std::move(f).result(timeout);
  }

  /// @brief `co_await result` in a task: suspends (no thread waits) until set, then returns
  /// the value or rethrows the exception. A stop request on the task's token ends the
  /// await with CancelledError ("co_await AsyncResult: cancelled by token").
  detail::FutureAwaiter<T> operator co_await() const {
    return detail::FutureAwaiter<T>(future_, "co_await AsyncResult", true);
  }

  /// @brief The Future behind it (add_done_callback, then, as_completed, ...).
  Future<T> future() const { return future_; }

 private:
  Promise<T> promise_;
  Future<T> future_;
};

/// @brief gevent.pool.Pool(n) for troupe tasks: a group of tasks of which at most @p limit
/// run at once on a pool.
///
/// - `co_await group.spawn(task)` (in a task) waits for a free slot (suspending, no thread
///   waits), then starts @p task on the group's pool and returns its Future;
///   `group.try_spawn(task)` (any thread) starts it only if a slot is free now.
/// - `co_await group.join()` (a task) or `group.wait(timeout)` (a thread) waits until every
///   task spawned so far has ended, then rethrows the **first error** (the first task to
///   fail, in time) if there was one, as gevent's `Pool.join(raise_error=True)`. The other
///   tasks are not stopped by an error (gevent's rule; asyncio.TaskGroup's rule, stop the
///   others, is what troupe::gather does); cancel() stops them all.
/// - Every task of the group gets the group's token: cancel() ends the await each one is
///   suspended in with CancelledError (then join rethrows that error, as the first).
///
/// A slot is freed when a task's future is done, so after join() every future is done.
/// Thread safe. The pool must outlive the tasks; destroying the group does not wait for
/// them (join first). Not copyable; the tasks keep what they need alive.
class TaskGroup {
  struct State {
    State(ThreadPool& p, std::ptrdiff_t n) : pool(&p), slots(n) {}
    ThreadPool* pool;
    AsyncSemaphore slots;
    std::stop_source stop;
    std::mutex mutex;
    std::size_t in_flight = 0;
    std::size_t spawned = 0;
    std::exception_ptr first;
    Promise<void> idle;  // replaced each time in_flight leaves 0; set when it comes back to 0

    void started() {
      std::lock_guard<std::mutex> lock(mutex);
      if (in_flight++ == 0) idle = Promise<void>();
      ++spawned;
    }
    void ended(std::exception_ptr error) noexcept {
      std::optional<Promise<void>> now_idle;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (error && !first) first = std::move(error);
        if (--in_flight == 0) now_idle.emplace(idle);
      }
      slots.release();
      if (now_idle) {
        try {
          now_idle->set_result();
        } catch (...) {  // cannot happen: each idle promise is set once
        }
      }
    }
    Future<void> idle_future() {
      std::lock_guard<std::mutex> lock(mutex);
      return in_flight == 0 ? Future<void>() : idle.get_future();
    }
    void rethrow_first() {
      std::exception_ptr e;
      {
        std::lock_guard<std::mutex> lock(mutex);
        e = first;
      }
      if (e) std::rethrow_exception(e);
    }
  };

 public:
  /// @brief A group running at most @p limit tasks at once on @p pool.
  /// @throws ValueError when @p limit is 0.
  TaskGroup(ThreadPool& pool, std::size_t limit) : state_(make_state(pool, limit)), limit_(limit) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  /// @brief `Future<T> f = co_await group.spawn(task)`: waits for a free slot, then starts
  /// @p task on the group's pool (gevent's Pool.spawn, which blocks while the pool is full).
  /// A stop request on the *spawning* task's token ends the wait for a slot with
  /// CancelledError ("AsyncSemaphore::acquire: cancelled by token"); @p task is then not
  /// started.
  /// @throws InvalidStateError for an empty task (at the call) or a pool shut down.
  template <class T>
  Task<Future<T>> spawn(Task<T> task) {
    if (!task.valid()) throw InvalidStateError("TaskGroup::spawn: the task is empty (moved from?)");
    return spawn_impl<T>(state_, std::move(task));
  }

  /// @brief Starts @p task if a slot is free now (gevent's `Pool.full()` check and spawn in
  /// one); std::nullopt when the group is full. Any thread. Never blocks.
  /// @throws InvalidStateError for an empty task or a pool shut down.
  template <class T>
  std::optional<Future<T>> try_spawn(Task<T> task) {
    if (!task.valid()) throw InvalidStateError("TaskGroup::try_spawn: the task is empty (moved from?)");
    if (!state_->slots.try_acquire()) return std::nullopt;
    return start<T>(state_, std::move(task));
  }

  /// @brief `co_await group.join()`: waits (suspending) until every task spawned so far has
  /// ended, then rethrows the first error if any (gevent's `Pool.join(raise_error=True)`).
  /// Use `co_await troupe::wait_for(group.join(), timeout)` for a time limit (the group's
  /// tasks go on after a TimeoutError). Cancellable by the awaiting task's token.
  Task<void> join() { return join_impl(state_); }

  /// @brief For threads: waits at most @p timeout for every task spawned so far to end.
  /// @return false when the time passed first; true when all ended without error.
  /// @throws the first error of the group's tasks; ValueError for a negative timeout.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    auto deadline = Deadline::after(timeout, "TaskGroup::wait");
    for (;;) {
      Future<void> idle = state_->idle_future();
      if (!idle.valid()) break;
      if (!idle.wait_until(deadline.infinite() ? Clock::time_point::max() : deadline.time_point())) return false;
    }
    state_->rethrow_first();
    return true;
  }

  /// @brief Stops the token of every task of the group (those spawned later too): each ends
  /// the await it is in with CancelledError, which it may catch. Never blocks.
  void cancel() noexcept { state_->stop.request_stop(); }

  /// @brief Tasks running now (spawned, future not done). A snapshot.
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->in_flight;
  }
  /// @brief Tasks spawned so far.
  std::size_t spawned() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->spawned;
  }
  /// @brief The limit given at construction.
  std::size_t limit() const noexcept { return limit_; }
  /// @brief The first error of the group's tasks so far (nullptr: none). Never blocks.
  std::exception_ptr first_error() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->first;
  }

 private:
  static std::shared_ptr<State> make_state(ThreadPool& pool, std::size_t limit) {
    if (limit == 0) throw ValueError("TaskGroup: limit must be >= 1, got 0");
    return std::make_shared<State>(pool, static_cast<std::ptrdiff_t>(limit));
  }

  // Called with a slot taken: starts the task; the slot is freed when its future is done.
  template <class T>
  static Future<T> start(const std::shared_ptr<State>& st, Task<T> task) {
    st->started();
    Future<T> f;
    try {
      f = troupe::spawn(*st->pool, std::move(task), st->stop.get_token());
    } catch (...) {
      st->ended(nullptr);
      throw;
    }
    f.add_done_callback([st](const Future<T>& done) { st->ended(done.exception()); });
    return f;
  }

  template <class T>
  static Task<Future<T>> spawn_impl(std::shared_ptr<State> st, Task<T> task) {
    co_await st->slots.acquire();
    co_return start<T>(st, std::move(task));
  }

  static Task<void> join_impl(std::shared_ptr<State> st) {
    for (;;) {
      Future<void> idle = st->idle_future();
      if (!idle.valid()) break;
      co_await idle;
    }
    st->rethrow_first();
  }

  std::shared_ptr<State> state_;
  std::size_t limit_;
};

}  // namespace troupe
