#pragma once
/// @file
/// @brief gather / when_any / wait_for: asyncio.gather, asyncio.wait(FIRST_COMPLETED) and
/// asyncio.wait_for for troupe::Task (gevent.joinall, gevent.Timeout).
///
/// The children of gather and when_any run concurrently on the awaiting task's pool, each
/// with a token of its own that the awaiting task's token stops too. None of them outlives
/// the combinator: a child that is cancelled is still awaited before the combinator
/// returns or throws (structured concurrency, as asyncio.TaskGroup does).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "troupe/coro/sleep.hpp"
#include "troupe/coro/task.hpp"

namespace troupe {

namespace detail {

/// Awaits a future's end without reading it and without cancellation (the combinators
/// cancel children through their tokens, then wait for every one of them).
template <class U>
class DoneAwaiter {
 public:
  explicit DoneAwaiter(const Future<U>& f) : future_(f) {}
  bool await_ready() const { return future_.done(); }
  template <TroupePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    waker_ = std::make_shared<Waker>(h, h.promise().pool, "troupe::gather / when_any (a child's end)");
    future_.add_done_callback([w = waker_]() noexcept { w->fire(Waker::kDone); });
    return waker_->arm();
  }
  void await_resume() const noexcept {}

 private:
  Future<U> future_;
  std::shared_ptr<Waker> waker_;
};

/// What the children of one gather / when_any share.
struct Group {
  std::stop_source children;
  std::atomic<long> first{-1};  // gather: the first child to fail; when_any: the first to end
};

/// Links @p parent to the group's children: a stop request on the parent stops them.
inline auto link_token(const std::stop_token& parent, const std::shared_ptr<Group>& g) {
  return std::stop_callback(parent, [g]() noexcept { g->children.request_stop(); });
}

template <class T>
using gather_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
gather_value_t<T> take_value(Future<T>& f) {
  if constexpr (std::is_void_v<T>) {
    std::move(f).result();
    return {};
  } else {
    return std::move(f).result();
  }
}

/// Spawns one child of a gather: a failure records itself as the first (if it is) and
/// stops the others.
template <class T>
Future<T> spawn_gathered(ThreadPool& pool, Task<T>&& t, const std::shared_ptr<Group>& g, long index) {
  auto f = spawn(pool, std::move(t), g->children.get_token());
  f.add_done_callback([g, index](const Future<T>& done) {
    if (done.exception()) {
      long none = -1;
      if (g->first.compare_exchange_strong(none, index, std::memory_order_acq_rel)) g->children.request_stop();
    }
  });
  return f;
}

template <class T>
Task<std::vector<gather_value_t<T>>> gather_impl(std::vector<Task<T>> tasks) {
  ThreadPool& pool = co_await this_pool();
  auto g = std::make_shared<Group>();
  auto link = link_token(co_await this_token(), g);
  std::vector<Future<T>> futures;
  futures.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    futures.push_back(spawn_gathered(pool, std::move(tasks[i]), g, static_cast<long>(i)));
  }
  for (auto& f : futures) co_await DoneAwaiter<T>(f);
  const long failed = g->first.load(std::memory_order_acquire);
  if (failed >= 0) std::rethrow_exception(futures[static_cast<std::size_t>(failed)].exception());
  std::vector<gather_value_t<T>> out;
  out.reserve(futures.size());
  for (auto& f : futures) out.push_back(take_value(f));
  co_return out;
}

template <class... U>
Task<void> wait_all(Future<U>&... f) {
  (co_await DoneAwaiter<U>(f), ...);
}

template <std::size_t... I, class... T>
Task<std::tuple<gather_value_t<T>...>> gather_tuple(std::index_sequence<I...>, Task<T>... tasks) {
  ThreadPool& pool = co_await this_pool();
  auto g = std::make_shared<Group>();
  auto link = link_token(co_await this_token(), g);
  std::tuple<Future<T>...> futures{spawn_gathered(pool, std::move(tasks), g, static_cast<long>(I))...};
  co_await std::apply([](auto&... f) { return wait_all(f...); }, futures);
  const long failed = g->first.load(std::memory_order_acquire);
  if (failed >= 0) {
    std::exception_ptr e;
    long i = 0;
    std::apply([&](auto&... f) { ((i++ == failed ? (void)(e = f.exception()) : (void)0), ...); }, futures);
    std::rethrow_exception(e);
  }
  co_return std::apply([](auto&... f) { return std::tuple<gather_value_t<T>...>(take_value(f)...); }, futures);
}

/// The timer of wait_for: stops the inner task's token when the time is up.
struct TimeoutStop final : TimerEntry {
  std::stop_source source;
  std::atomic<bool> finished{false};
  std::atomic<bool> timed_out{false};
  void on_timer() noexcept override {
    if (finished.load(std::memory_order_acquire)) return;
    timed_out.store(true, std::memory_order_release);
    source.request_stop();
  }
};

template <class T>
Task<T> wait_for_impl(Task<T> task, Deadline deadline, double seconds) {
  auto parent = co_await this_token();
  auto timer = std::make_shared<TimeoutStop>();
  std::stop_callback link(parent, [timer]() noexcept { timer->source.request_stop(); });
  schedule_timer(deadline.time_point(), timer);
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task).with_token(timer->source.get_token());
      timer->finished.store(true, std::memory_order_release);
    } else {
      T value = co_await std::move(task).with_token(timer->source.get_token());
      timer->finished.store(true, std::memory_order_release);
      co_return value;
    }
  } catch (const CancelledError&) {
    timer->finished.store(true, std::memory_order_release);
    if (timer->timed_out.load(std::memory_order_acquire) && !parent.stop_requested()) {
      throw TimeoutError(std::string("troupe::wait_for: the task did not finish within ")
                             .append(std::to_string(seconds))
                             .append("s (it was cancelled)"));
    }
    throw;
  } catch (...) {
    timer->finished.store(true, std::memory_order_release);
    throw;
  }
}

}  // namespace detail

/// @brief `co_await troupe::gather(std::move(tasks))`: runs every task concurrently on the
/// awaiting task's pool and returns their values in the order given (asyncio.gather,
/// gevent.joinall(raise_error=True)); `void` tasks give std::monostate.
///
/// The first task to fail (in time) stops the tokens of the others, every task is then
/// awaited, and that first exception is rethrown as itself; the others' outcomes are
/// dropped. A stop request on the awaiting task's token stops them all the same way.
template <class T>
Task<std::vector<detail::gather_value_t<T>>> gather(std::vector<Task<T>> tasks) {
  for (const auto& t : tasks) {
    if (!t.valid()) throw InvalidStateError("troupe::gather: a task is empty (moved from?)");
  }
  return detail::gather_impl<T>(std::move(tasks));
}

/// @brief `co_await troupe::gather(a(), b(), ...)`: as gather(vector), for tasks of
/// different types; returns a tuple (std::monostate for `void` tasks).
template <class... T>
Task<std::tuple<detail::gather_value_t<T>...>> gather(Task<T>... tasks) {
  if ((!tasks.valid() || ...)) throw InvalidStateError("troupe::gather: a task is empty (moved from?)");
  return detail::gather_tuple(std::index_sequence_for<T...>{}, std::move(tasks)...);
}

/// @brief The winner of when_any: its index, and its value (absent for `void` tasks).
template <class T>
struct AnyResult {
  std::size_t index;
  detail::gather_value_t<T> value;
};

/// @brief `co_await troupe::when_any(std::move(tasks))`: runs the tasks concurrently and
/// returns the first to finish (asyncio.wait(return_when=FIRST_COMPLETED), gevent.wait
/// with count=1). The others are then cancelled through their tokens and awaited; if the
/// first to finish failed, its exception is rethrown.
/// @throws ValueError for an empty vector; InvalidStateError for an empty task.
template <class T>
Task<AnyResult<T>> when_any(std::vector<Task<T>> tasks);

namespace detail {
template <class T>
Task<AnyResult<T>> when_any_impl(std::vector<Task<T>> tasks) {
  ThreadPool& pool = co_await this_pool();
  auto g = std::make_shared<Group>();
  auto link = link_token(co_await this_token(), g);
  Promise<void> first_done;
  auto first = first_done.get_future();
  std::vector<Future<T>> futures;
  futures.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    futures.push_back(spawn(pool, std::move(tasks[i]), g->children.get_token()));
    futures.back().add_done_callback([g, first_done, i]() mutable {
      long none = -1;
      if (g->first.compare_exchange_strong(none, static_cast<long>(i), std::memory_order_acq_rel)) {
        first_done.set_result();
        g->children.request_stop();
      }
    });
  }
  co_await DoneAwaiter<void>(first);
  for (auto& f : futures) co_await DoneAwaiter<T>(f);
  const auto winner = static_cast<std::size_t>(g->first.load(std::memory_order_acquire));
  co_return AnyResult<T>{winner, take_value(futures[winner])};
}
}  // namespace detail

template <class T>
Task<AnyResult<T>> when_any(std::vector<Task<T>> tasks) {
  if (tasks.empty()) throw ValueError("troupe::when_any: no tasks");
  for (const auto& t : tasks) {
    if (!t.valid()) throw InvalidStateError("troupe::when_any: a task is empty (moved from?)");
  }
  return detail::when_any_impl<T>(std::move(tasks));
}

/// @brief `co_await troupe::wait_for(task, timeout)`: runs @p task (in the awaiting task,
/// with a token of its own) and gives up after @p timeout (asyncio.wait_for,
/// gevent.Timeout): the task's token is then stopped, the task is awaited while it
/// unwinds, and TimeoutError is thrown. A task that finishes anyway (it caught the
/// CancelledError and returned) gives its value. A stop request on the awaiting task's
/// token reaches the task too and ends with CancelledError, not TimeoutError.
/// @throws ValueError for a negative timeout (at the call); TimeoutError; the task's exception.
template <class T, class Rep, class Period>
Task<T> wait_for(Task<T> task, std::chrono::duration<Rep, Period> timeout) {
  if (!task.valid()) throw InvalidStateError("troupe::wait_for: the task is empty (moved from?)");
  auto deadline = Deadline::after(timeout, "troupe::wait_for");
  if (deadline.infinite()) return task;
  return detail::wait_for_impl<T>(std::move(task), deadline, std::chrono::duration<double>(timeout).count());
}

}  // namespace troupe
