#pragma once
/// @file
/// @brief Coroutine-native synchronization: AsyncEvent, AsyncSemaphore, AsyncQueue<T>
/// (asyncio.Event / Semaphore / Queue). A waiting task is suspended, no thread waits.
///
/// They are kept apart from troupe::Event / Semaphore (troupe/sync), which block threads,
/// as asyncio keeps asyncio.Event apart from threading.Event: see docs/coroutines.md.

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "troupe/coro/task.hpp"

namespace troupe {

namespace detail {

/// One suspended waiter of a primitive: its Waker and, for a queue, the item handed over.
template <class Item>
struct WaitNode : Waker {
  using Waker::Waker;
  std::optional<Item> item;
};

/// The common part of a primitive's awaiter: queue a node under the primitive's lock,
/// register the stop callback, arm. @p try_now (called under the lock) completes the
/// operation at once when it can, then the task does not suspend.
template <class Node>
class PrimitiveAwaiter {
 public:
  PrimitiveAwaiter(std::mutex& mutex, std::deque<std::shared_ptr<Node>>& waiters, const char* what) noexcept
      : mutex_(&mutex), waiters_(&waiters), what_(what) {}

 protected:
  template <class P, class TryNow, class OnQueued = void (*)(Node&)>
  bool suspend(
      std::coroutine_handle<P> h, TryNow&& try_now, OnQueued on_queued = [](Node&) {}) {
    auto& pr = h.promise();
    if (pr.token.stop_requested()) {
      cancelled_ = true;
      return false;
    }
    {
      std::lock_guard<std::mutex> lock(*mutex_);
      if (try_now()) return false;
      node_ = std::make_shared<Node>(h, pr.pool, what_);
      on_queued(*node_);
      waiters_->push_back(node_);
    }
    if (pr.token.stop_possible()) stop_.emplace(pr.token, CancelWaker{node_});
    return node_->arm();
  }
  /// After the resumption: returns when the operation completed, throws CancelledError
  /// when the token won (the node is then taken out of the primitive's queue).
  void finish() {
    stop_.reset();
    if (cancelled_) throw_coro_cancelled(what_);
    if (node_ && node_->reason() == Waker::kCancelled) {
      std::lock_guard<std::mutex> lock(*mutex_);
      auto it = std::find(waiters_->begin(), waiters_->end(), node_);
      if (it != waiters_->end()) waiters_->erase(it);
      throw_coro_cancelled(what_);
    }
  }

  std::mutex* mutex_;
  std::deque<std::shared_ptr<Node>>* waiters_;
  const char* what_;
  bool cancelled_ = false;
  std::shared_ptr<Node> node_;
  std::optional<WakerStopCallback> stop_;
};

}  // namespace detail

/// @brief asyncio.Event for troupe tasks: `co_await ev.wait()` suspends until set().
///
/// Thread safe: set() / clear() may be called from any thread, a task or not. Waiters
/// resume on their own pools. Cancellable: a stop request on the waiting task's token
/// ends its wait with CancelledError ("AsyncEvent::wait: cancelled by token").
class AsyncEvent {
  using Node = detail::WaitNode<char>;

 public:
  AsyncEvent() = default;
  AsyncEvent(const AsyncEvent&) = delete;
  AsyncEvent& operator=(const AsyncEvent&) = delete;

  /// @brief True when set. Never blocks.
  bool is_set() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return set_;
  }
  /// @brief Sets the flag and resumes every waiting task. Never blocks (beyond a short lock).
  void set() {
    std::deque<std::shared_ptr<Node>> woken;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      set_ = true;
      woken.swap(waiters_);
    }
    for (auto& n : woken) n->fire(detail::Waker::kDone);
  }
  /// @brief Clears the flag: later waits suspend again.
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    set_ = false;
  }

  /// @internal The awaiter of wait().
  class Awaiter : detail::PrimitiveAwaiter<Node> {
   public:
    explicit Awaiter(AsyncEvent& e) noexcept : PrimitiveAwaiter(e.mutex_, e.waiters_, "AsyncEvent::wait"), ev_(&e) {}
    bool await_ready() const noexcept { return false; }
    template <detail::TroupePromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return suspend(h, [this] { return ev_->set_; });
    }
    void await_resume() { finish(); }

   private:
    AsyncEvent* ev_;
  };
  /// @brief `co_await ev.wait()`: returns at once when set, else suspends until set().
  /// @throws CancelledError when the task's token is stopped first.
  Awaiter wait() noexcept { return Awaiter(*this); }

 private:
  mutable std::mutex mutex_;
  bool set_ = false;
  std::deque<std::shared_ptr<Node>> waiters_;
};

/// @brief asyncio.Semaphore for troupe tasks: at most `value` holders at once; waiters are
/// served first come, first served.
///
/// Thread safe. release() hands the unit straight to the oldest waiting task (no thread
/// blocks, none barges in). Cancellable: a stop request on the waiting task's token ends
/// its acquire with CancelledError ("AsyncSemaphore::acquire: cancelled by token") and
/// takes no unit.
class AsyncSemaphore {
  using Node = detail::WaitNode<char>;

 public:
  /// @brief A semaphore with @p value units. @throws ValueError when negative.
  explicit AsyncSemaphore(std::ptrdiff_t value = 1) : value_(value) {
    if (value < 0) throw ValueError("AsyncSemaphore: initial value must be >= 0, got " + std::to_string(value));
  }
  AsyncSemaphore(const AsyncSemaphore&) = delete;
  AsyncSemaphore& operator=(const AsyncSemaphore&) = delete;

  /// @brief Units free now. Never blocks.
  std::ptrdiff_t value() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return value_;
  }
  /// @brief True when an acquire would suspend (asyncio's locked()).
  bool locked() const { return value() == 0; }

  /// @brief Gives a unit back: to the oldest waiting task if any, else to the count.
  void release() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!waiters_.empty()) {
      auto n = std::move(waiters_.front());
      waiters_.pop_front();
      if (n->fire(detail::Waker::kDone)) return;  // handed over (a cancelled one is skipped)
    }
    ++value_;
  }
  /// @brief Takes a unit without waiting; false when none is free.
  bool try_acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (value_ == 0) return false;
    --value_;
    return true;
  }

  /// @internal The awaiter of acquire().
  class Awaiter : detail::PrimitiveAwaiter<Node> {
   public:
    explicit Awaiter(AsyncSemaphore& s) noexcept
        : PrimitiveAwaiter(s.mutex_, s.waiters_, "AsyncSemaphore::acquire"), sem_(&s) {}
    bool await_ready() const noexcept { return false; }
    template <detail::TroupePromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return suspend(h, [this] {
        if (sem_->value_ == 0 || !sem_->waiters_.empty()) return false;
        --sem_->value_;
        return true;
      });
    }
    void await_resume() { finish(); }

   private:
    AsyncSemaphore* sem_;
  };
  /// @brief `co_await sem.acquire()`: takes a unit, suspending while none is free.
  /// @throws CancelledError when the task's token is stopped first (no unit taken).
  Awaiter acquire() noexcept { return Awaiter(*this); }

 private:
  mutable std::mutex mutex_;
  std::ptrdiff_t value_;
  std::deque<std::shared_ptr<Node>> waiters_;
};

/// @brief asyncio.Queue for troupe tasks: bounded FIFO, `co_await q.put(x)` suspends while
/// full, `co_await q.get()` while empty.
///
/// Thread safe; items are handed straight from a put to a waiting get (and a get makes
/// room for the oldest waiting put). Cancellable: a stop request on the waiting task's
/// token ends its put / get with CancelledError and neither loses nor duplicates an item
/// (a cancelled put did not enqueue its item).
/// @tparam T the item type (movable).
template <class T>
class AsyncQueue {
  using Node = detail::WaitNode<T>;

 public:
  /// @brief A queue holding at most @p maxsize items (0: unbounded, as asyncio).
  explicit AsyncQueue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  AsyncQueue(const AsyncQueue&) = delete;
  AsyncQueue& operator=(const AsyncQueue&) = delete;

  /// @brief Items in the queue now. Never blocks.
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_.size();
  }
  /// @brief Enqueues without waiting; false when full.
  bool try_put(T item) {
    std::lock_guard<std::mutex> lock(mutex_);
    return put_locked(item);
  }
  /// @brief Dequeues without waiting; nullopt when empty.
  std::optional<T> try_get() {
    std::lock_guard<std::mutex> lock(mutex_);
    return get_locked();
  }

  /// @internal The awaiter of put().
  class PutAwaiter : detail::PrimitiveAwaiter<Node> {
   public:
    PutAwaiter(AsyncQueue& q, T item)
        : detail::PrimitiveAwaiter<Node>(q.mutex_, q.putters_, "AsyncQueue::put"), q_(&q) {
      item_.emplace(std::move(item));
    }
    bool await_ready() const noexcept { return false; }
    template <detail::TroupePromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      // The item moves into the node when the task suspends: a get takes it from there.
      return this->suspend(
          h, [this] { return q_->put_locked(*item_); }, [this](Node& n) { n.item = std::move(item_); });
    }
    void await_resume() { this->finish(); }

   private:
    friend class AsyncQueue;
    AsyncQueue* q_;
    std::optional<T> item_;
  };
  /// @internal The awaiter of get().
  class GetAwaiter : detail::PrimitiveAwaiter<Node> {
   public:
    explicit GetAwaiter(AsyncQueue& q) noexcept
        : detail::PrimitiveAwaiter<Node>(q.mutex_, q.getters_, "AsyncQueue::get"), q_(&q) {}
    bool await_ready() const noexcept { return false; }
    template <detail::TroupePromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return this->suspend(h, [this] {
        got_ = q_->get_locked();
        return got_.has_value();
      });
    }
    T await_resume() {
      this->finish();
      if (got_) return std::move(*got_);
      return std::move(*this->node_->item);
    }

   private:
    AsyncQueue* q_;
    std::optional<T> got_;
  };

  /// @brief `co_await q.put(x)`: enqueues @p item, suspending while the queue is full.
  /// @throws CancelledError when the task's token is stopped first (nothing enqueued).
  PutAwaiter put(T item) { return PutAwaiter(*this, std::move(item)); }
  /// @brief `co_await q.get()`: dequeues the oldest item, suspending while empty.
  /// @throws CancelledError when the task's token is stopped first (nothing dequeued).
  GetAwaiter get() noexcept { return GetAwaiter(*this); }

 private:
  // Under the lock. A waiting getter takes the item directly; else the buffer if not full.
  bool put_locked(T& item) {
    while (!getters_.empty()) {
      auto n = std::move(getters_.front());
      getters_.pop_front();
      n->item.emplace(std::move(item));
      if (n->fire(detail::Waker::kDone)) return true;
      item = std::move(*n->item);  // that getter was cancelled: take the item back
      n->item.reset();
    }
    if (maxsize_ != 0 && items_.size() >= maxsize_) return false;
    items_.push_back(std::move(item));
    return true;
  }
  // Under the lock. The oldest item, and room for the oldest waiting putter.
  std::optional<T> get_locked() {
    if (items_.empty()) return pop_putter_item();
    std::optional<T> out(std::move(items_.front()));
    items_.pop_front();
    if (auto more = pop_putter_item()) items_.push_back(std::move(*more));
    return out;
  }
  std::optional<T> pop_putter_item() {
    while (!putters_.empty()) {
      auto n = std::move(putters_.front());
      putters_.pop_front();
      std::optional<T> item = std::move(n->item);
      if (n->fire(detail::Waker::kDone)) return item;
      n->item = std::move(item);  // that putter was cancelled: its item stays with it
    }
    return std::nullopt;
  }

  mutable std::mutex mutex_;
  std::size_t maxsize_;
  std::deque<T> items_;
  std::deque<std::shared_ptr<Node>> getters_;
  std::deque<std::shared_ptr<Node>> putters_;
};

}  // namespace troupe
