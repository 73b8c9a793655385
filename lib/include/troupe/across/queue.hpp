#pragma once
/// @file
/// @brief troupe::Queue, troupe::JoinableQueue and troupe::SimpleQueue — Python's
/// `queue.Queue` / `multiprocessing.JoinableQueue` / `queue.SimpleQueue` for the threads of
/// one rank, or across every rank and thread of the Runtime. docs/queues.md has the whole
/// story (semantics, mechanism, figures).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "troupe/across/async_call.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/core/scope.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe {

/// @brief A non-blocking put found the queue full, or a put's timeout passed while it was
/// full (Python's `queue.Full`).
class Full : public Error {
 public:
  using Error::Error;
};

/// @brief A non-blocking get found the queue empty, or a get's timeout passed while it was
/// empty (Python's `queue.Empty`).
class Empty : public Error {
 public:
  using Error::Error;
};

/// @brief The queue was closed (Python 3.13's `queue.ShutDown`): a put after close(), or a
/// get on a closed queue whose remaining items have all been taken. The message names the
/// call.
class ShutDown : public Error {
 public:
  using Error::Error;
};

/// @brief A snapshot of a queue's state at its host rank.
struct QueueStats {
  std::size_t qsize = 0;         ///< items queued now
  std::size_t high_water = 0;    ///< the most items ever queued at once (never above maxsize when bounded)
  std::ptrdiff_t maxsize = 0;    ///< as given (0: unbounded)
  std::uint64_t puts = 0;        ///< items admitted so far
  std::uint64_t gets = 0;        ///< items handed out so far
  std::uint64_t unfinished = 0;  ///< items put and not yet task_done'd (JoinableQueue)
  bool closed = false;           ///< close() was called
  std::size_t parked_gets = 0;   ///< gets waiting at the host now
  std::size_t parked_puts = 0;   ///< puts waiting for room at the host now
};

namespace detail {

class Handle;

enum class QueueKind { kQueue, kJoinable, kSimple };

/// The type-erased machinery of the three queues (lib/src/across/queue.cpp): items are
/// serialized bytes, the host rank keeps them.
class QueueCore {
 public:
  QueueCore(Scope scope, std::ptrdiff_t maxsize, int host, QueueKind kind);
  ~QueueCore();
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  enum Api {
    kApiPut,
    kApiGet,
    kApiPutMany,
    kApiGetMany,
    kApiJoin,
    kApiClose,
    kApiTaskDone,
    kApiStats,
    kApiPutAsync,
    kApiCount
  };
  /// "Queue::put", "JoinableQueue::get", ...: the name errors carry.
  const char* api(Api a) const noexcept { return api_[a].c_str(); }

  void put(std::vector<std::byte> item, bool block, const Deadline& deadline, const std::stop_token* token);
  void put_async(std::vector<std::byte> item);
  void put_many(std::vector<std::vector<std::byte>> items, const Deadline& deadline, const std::stop_token* token);
  std::vector<std::byte> get(bool block, const Deadline& deadline, const std::stop_token* token);
  AsyncCall<std::vector<std::byte>> get_async();
  std::vector<std::vector<std::byte>> get_many(std::size_t max, const Deadline& deadline, const std::stop_token* token);
  void close();
  void task_done();
  bool join(const Deadline& deadline, const std::stop_token* token);
  QueueStats stats() const;
  std::ptrdiff_t maxsize() const noexcept { return maxsize_; }
  Scope scope() const noexcept;

 private:
  std::shared_ptr<void> state_;
  std::unique_ptr<Handle> handle_;
  std::ptrdiff_t maxsize_ = 0;
  std::string api_[kApiCount];
};

template <class T>
T decode_item(const std::vector<std::byte>& bytes) {
  return wire::deserialize<T>(bytes);
}

template <class T>
AsyncCall<T> decode_async(AsyncCall<std::vector<std::byte>> call) {
  return AsyncCall<T>{call.future.then([](const std::vector<std::byte>& bytes) { return decode_item<T>(bytes); }),
                      std::move(call.cancel)};
}

}  // namespace detail

/// @brief A FIFO queue of T whose parties are the threads of this rank (Scope::Threads) or
/// every thread of every rank (Scope::Ranks, Scope::RanksAndThreads: the same for a queue).
///
/// **Mechanism** (docs/queues.md): the items live, serialized with troupe's wire codec, on
/// one host rank (rank 0 unless given). put() and get() are one call each to the host (no
/// message from the host rank itself). A get on an empty queue parks at the host and is
/// answered by the put that brings an item, oldest get first; a put on a full queue parks
/// until a get makes room, oldest put first, so @p maxsize holds over all ranks together. A
/// timeout withdraws the parked request with one more message; an item already on its way
/// is returned, never lost. put_many()/get_many() move many items in one call, and
/// put_async() sends one item without waiting for an answer (the fast paths: a call per
/// item is bound by the round-trip latency).
///
/// **close()** (Python 3.13's `shutdown(immediate=False)`): later puts throw ShutDown; gets
/// return the items still queued, then throw ShutDown; every put and get parked at the host
/// on any rank wakes at once with ShutDown. Items are never dropped by close().
///
/// @tparam T any type the wire codec can send (troupe/wire/serialize.hpp), default-constructible.
/// @code
/// troupe::Queue<int> q(troupe::Scope::Ranks, /*maxsize=*/64);   // collective
/// if (rank == 0) { for (int i = 0; i < 100; ++i) q.put(i); q.close(); }
/// else try { for (;;) use(q.get(std::chrono::seconds(10))); } catch (const troupe::ShutDown&) {}
/// @endcode
///
/// @note Construction with a cross-rank scope is collective (every rank builds its
/// cross-rank objects in the same order). Not copyable or movable. Every member is
/// thread-safe. Waits for an item or for room do not run other pool tasks (a helped task
/// could wait for the very item granted beneath it); join() does.
template <class T>
class Queue {
 public:
  /// @brief A queue over @p scope holding at most @p maxsize items (0: unbounded), hosted on
  /// rank @p host.
  /// @throws ValueError "Queue: maxsize must be >= 0, got -1" or when @p host is not a rank;
  /// InvalidStateError when a cross-rank scope is asked for without a live Runtime.
  explicit Queue(Scope scope = Scope::Threads, std::ptrdiff_t maxsize = 0, int host = 0)
      : Queue(scope, maxsize, host, detail::QueueKind::kQueue) {}
  virtual ~Queue() = default;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  /// @brief Puts @p item, waiting as long as the queue is full.
  /// @throws ShutDown after close() (also when close() ends the wait); BrokenExecutor when
  /// the host rank is lost; InvalidStateError when the Runtime is gone.
  void put(const T& item) { core_->put(wire::serialize(item), true, Deadline{}, nullptr); }
  /// @brief Puts @p item, waiting at most @p timeout for room (Python's `put(item, timeout=)`).
  /// @throws Full when the timeout passes first; ValueError for a negative timeout; as put().
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    put(item, Deadline::after(timeout, core_->api(detail::QueueCore::kApiPut)));
  }
  /// @brief Puts @p item, waiting until @p deadline or a stop request on @p token.
  /// @throws Full when the deadline passes first; CancelledError when @p token stops first.
  void put(const T& item, const Deadline& deadline, CancellationToken token = {}) {
    core_->put(wire::serialize(item), true, deadline, &token);
  }
  /// @brief Puts @p item without waiting for the host's answer (Python's
  /// `multiprocessing.Queue.put`, whose feeder thread sends later): the item is on its way
  /// when this returns, and reaches the host after this rank's earlier puts. The fast path
  /// for one item at a time (a one-way notice instead of a round trip).
  ///
  /// Unbounded queues only: on a bounded queue, or on the host rank, it is put() (a bound
  /// needs the host's admission). What differs from put(): right after it returns, another
  /// rank's qsize()/get_nowait()/join() may not see the item yet (it is in flight). close()
  /// returns only once every rank has confirmed that none of its put_async is still on its
  /// way, so every item put_async before close() returned is got, and a put_async after
  /// close() returned throws ShutDown.
  /// @throws ShutDown "Queue::put_async: the queue is closed" once this rank has learned of
  /// close(); InvalidStateError when the Runtime is gone.
  void put_async(const T& item) { core_->put_async(wire::serialize(item)); }
  /// @brief Puts @p item only if there is room now (Python's `put_nowait`).
  /// @throws Full when the queue is full (or puts are waiting before this one); as put().
  void put_nowait(const T& item) { core_->put(wire::serialize(item), false, Deadline{}, nullptr); }
  /// @brief Puts every item of @p items in order, in as few calls as room allows (one when
  /// unbounded or roomy): the fast path.
  /// @throws ShutDown after close() (items before the one that failed were put: the message
  /// says how many); Full when @p deadline passes (likewise); CancelledError.
  void put_many(const std::vector<T>& items, const Deadline& deadline = {}, CancellationToken token = {}) {
    std::vector<std::vector<std::byte>> bytes;
    bytes.reserve(items.size());
    for (const auto& it : items) bytes.push_back(wire::serialize(it));
    core_->put_many(std::move(bytes), deadline, &token);
  }

  /// @brief Removes and returns the oldest item, waiting as long as the queue is empty.
  /// @throws ShutDown when the queue is closed and empty; as put().
  T get() { return detail::decode_item<T>(core_->get(true, Deadline{}, nullptr)); }
  /// @brief As get(), waiting at most @p timeout (Python's `get(timeout=)`).
  /// @throws Empty when the timeout passes first; ValueError for a negative timeout.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return get(Deadline::after(timeout, core_->api(detail::QueueCore::kApiGet)));
  }
  /// @brief As get(), waiting until @p deadline or a stop request on @p token.
  /// @throws Empty when the deadline passes first; CancelledError when @p token stops first.
  T get(const Deadline& deadline, CancellationToken token = {}) {
    return detail::decode_item<T>(core_->get(true, deadline, &token));
  }
  /// @brief Returns the oldest item if there is one now (Python's `get_nowait`).
  /// @throws Empty when the queue is empty; ShutDown when closed and empty.
  T get_nowait() { return detail::decode_item<T>(core_->get(false, Deadline{}, nullptr)); }
  /// @brief A get that no thread waits for (asyncio's `await queue.get()`): in a coroutine
  /// `T item = co_await q.get_async();` (troupe/coro/across.hpp), which suspends the task
  /// until the host hands it the oldest item. The future ends with the item, ShutDown
  /// (closed and empty), CancelledError ("Queue::get: cancelled by token") when cancel()
  /// withdrew it, or as get(). See AsyncCall: a get that is started must be awaited or
  /// cancelled. Never blocks.
  AsyncCall<T> get_async() { return detail::decode_async<T>(core_->get_async()); }
  /// @brief Waits (until @p deadline) for at least one item, then returns the oldest items,
  /// at most @p max of them, in one call: the fast path.
  /// @throws ValueError when @p max is 0; Empty when the deadline passes first; ShutDown
  /// when closed and empty; CancelledError.
  std::vector<T> get_many(std::size_t max, const Deadline& deadline = {}, CancellationToken token = {}) {
    auto raw = core_->get_many(max, deadline, &token);
    std::vector<T> out;
    out.reserve(raw.size());
    for (const auto& b : raw) out.push_back(detail::decode_item<T>(b));
    return out;
  }

  /// @brief The number of items queued now (a snapshot; one message to the host).
  std::size_t qsize() const { return core_->stats().qsize; }
  /// @brief qsize() == 0 (a snapshot).
  bool empty() const { return qsize() == 0; }
  /// @brief True when bounded and maxsize items are queued (a snapshot).
  bool full() const { return core_->maxsize() > 0 && qsize() >= static_cast<std::size_t>(core_->maxsize()); }
  /// @brief The bound given at construction (0: unbounded).
  std::ptrdiff_t maxsize() const noexcept { return core_->maxsize(); }
  /// @brief Closes the queue for every rank (see the class comment). Idempotent; never blocks
  /// for long (one call to the host).
  void close() { core_->close(); }
  /// @brief A snapshot of the host's counters (qsize, high-water mark, puts, gets, ...).
  QueueStats stats() const { return core_->stats(); }
  /// @brief The scope given at construction.
  Scope scope() const noexcept { return core_->scope(); }

 protected:
  Queue(Scope scope, std::ptrdiff_t maxsize, int host, detail::QueueKind kind)
      : core_(std::make_unique<detail::QueueCore>(scope, maxsize, host, kind)) {}
  std::unique_ptr<detail::QueueCore> core_;
};

/// @brief A Queue that counts unfinished items (Python's `multiprocessing.JoinableQueue` /
/// `queue.Queue.task_done` + `join`): every item put adds one, every task_done() removes
/// one, join() waits, on any rank, until the count is 0.
/// @code
/// troupe::JoinableQueue<Task> q(troupe::Scope::Ranks);
/// // consumers: auto t = q.get(); run(t); q.task_done();
/// q.join(std::chrono::seconds(60));   // every item put has been processed, on every rank
/// @endcode
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  /// @brief As Queue's constructor.
  explicit JoinableQueue(Scope scope = Scope::Threads, std::ptrdiff_t maxsize = 0, int host = 0)
      : Queue<T>(scope, maxsize, host, detail::QueueKind::kJoinable) {}

  /// @brief Marks one item got earlier as processed (by any thread of any rank).
  /// @throws ValueError "JoinableQueue::task_done: called more times than items were put"
  /// when every item put was already marked (the count is left at 0).
  void task_done() { this->core_->task_done(); }
  /// @brief Waits until every item put so far has been task_done'd.
  /// @return true (a wait without a deadline returns only when the count is 0).
  bool join() { return this->core_->join(Deadline{}, nullptr); }
  /// @brief As join(), at most @p timeout.
  /// @return false when the timeout passed while items were unfinished (a join with a
  /// timeout that passes simply returns false; it may be called again).
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join(Deadline::after(timeout, this->core_->api(detail::QueueCore::kApiJoin)));
  }
  /// @brief As join(), until @p deadline or a stop request on @p token.
  /// @return false when the deadline passed first. @throws CancelledError.
  bool join(const Deadline& deadline, CancellationToken token = {}) { return this->core_->join(deadline, &token); }
};

/// @brief An unbounded FIFO queue with only put (and put_async), get, empty and qsize (Python's
/// `queue.SimpleQueue`). Same scopes and mechanism as Queue; it has no close(), so a
/// consumer bounds its wait with a timeout (Empty) or the program sends its own end marker.
template <class T>
class SimpleQueue {
 public:
  /// @brief An unbounded queue over @p scope, hosted on rank @p host. @throws as Queue.
  explicit SimpleQueue(Scope scope = Scope::Threads, int host = 0)
      : core_(std::make_unique<detail::QueueCore>(scope, 0, host, detail::QueueKind::kSimple)) {}
  SimpleQueue(const SimpleQueue&) = delete;
  SimpleQueue& operator=(const SimpleQueue&) = delete;

  /// @brief Puts @p item (never waits for room).
  void put(const T& item) { core_->put(wire::serialize(item), true, Deadline{}, nullptr); }
  /// @brief As Queue::put_async (a one-way notice; the item reaches the host after this
  /// rank's earlier puts, and may not be visible to other ranks at once).
  void put_async(const T& item) { core_->put_async(wire::serialize(item)); }
  /// @brief Removes and returns the oldest item, waiting as long as the queue is empty.
  T get() { return detail::decode_item<T>(core_->get(true, Deadline{}, nullptr)); }
  /// @brief As get(), at most @p timeout. @throws Empty when the timeout passes first.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return get(Deadline::after(timeout, core_->api(detail::QueueCore::kApiGet)));
  }
  /// @brief As get(), until @p deadline or a stop request on @p token.
  /// @throws Empty when the deadline passes first; CancelledError.
  T get(const Deadline& deadline, CancellationToken token = {}) {
    return detail::decode_item<T>(core_->get(true, deadline, &token));
  }
  /// @brief As Queue::get_async: a get that no thread waits for (`co_await q.get_async()`).
  AsyncCall<T> get_async() { return detail::decode_async<T>(core_->get_async()); }
  /// @brief The number of items queued now (a snapshot).
  std::size_t qsize() const { return core_->stats().qsize; }
  /// @brief qsize() == 0 (a snapshot).
  bool empty() const { return qsize() == 0; }

 private:
  std::unique_ptr<detail::QueueCore> core_;
};

}  // namespace troupe
