#pragma once
/// @file
/// @brief The hub of the cross-rank objects: one messenger per Runtime, object ids, calls
/// to an object's host rank and their replies, with deadlines that never lose a reply.
///
/// Every cross-rank primitive (Lock, Semaphore, Event, Condition, Queue, Pipe, Bag, ...) is
/// a client of the one messaging layer through this hub:
/// - **objects**: built collectively, in the same order on every rank, so the n-th object
///   has id n everywhere (UPC++'s dist_object rule); records for an object not yet built
///   here are held until it registers, records for one already destroyed are answered
///   "gone";
/// - **calls**: call(host, object, op, args, deadline) sends a kObject record to the host
///   rank and waits, with the one wait loop, for the one kReply the host sends, now or
///   later (a parked request: a get on an empty queue, an acquire of a held lock). A call
///   to this rank's own host runs the host code directly, with no message;
/// - **deadlines without lost replies**: when the deadline passes (or the token stops) the
///   caller sends a cancel; the host answers it with kCancelled only if the call is still
///   parked. Either way exactly one reply comes back, in order after any earlier one, so a
///   grant or an item that was already on its way is returned, never dropped;
/// - **lost hosts**: the messenger's failure detector ends the calls to a lost host with
///   kLostHost and tells every object (on_lost) so it can drop that rank's waiters.
///
/// Scope::Threads objects use a process-local hub with the same interface: one rank, no
/// MPI, every call direct.

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <stop_token>
#include <vector>

#include "troupe/across/async_call.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/scope.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe::messaging {
class Messenger;
}

namespace troupe::detail {

/// @brief Status of a reply. Object-specific codes start at kFirstObjectStatus.
enum ReplyStatus : std::uint8_t {
  kReplyOk = 0,         ///< done; the body is the op's result
  kReplyCancelled = 1,  ///< the caller's cancel found the call still parked: nothing happened
  kReplyLostHost = 2,   ///< the host rank was declared lost
  kReplyGone = 3,       ///< the object was destroyed on the host (or the hub closed)
  kFirstObjectStatus = 16,
};

/// @brief One reply to a call.
struct Reply {
  std::uint8_t status = kReplyOk;
  std::vector<std::byte> body;
};

/// @brief The op number of a cancel (never an object's own op).
inline constexpr std::uint32_t kCancelOp = 0xFFFFFFFFu;

class Hub;

/// @brief The host side of one object. Built on every rank; only the host rank's instance
/// receives calls for it (except objects that send notices to every rank). The hub calls
/// these on the thread that delivers messages (keep them short, never block) or, for calls
/// from this rank to itself, on the caller's thread: guard the state with a mutex.
class Hosted {
 public:
  virtual ~Hosted() = default;
  /// @brief A call (@p call != 0: reply exactly once, now or later, with Hub::reply) or a
  /// notice (@p call == 0: no reply) from rank @p src.
  /// @throws wire::DecodeError for a record that makes no sense (the messaging layer's error
  /// policy takes over for remote records).
  virtual void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader& args) = 0;
  /// @brief The caller gave up on @p call: reply kReplyCancelled if it is still parked here
  /// (and forget it); otherwise do nothing (its reply was sent already).
  virtual void on_cancel(int src, std::uint64_t call) = 0;
  /// @brief Rank @p rank was declared lost: forget its parked calls (no reply needed) and
  /// whatever it held, as the object documents.
  virtual void on_lost(int /*rank*/) {}
  /// @brief The object is being destroyed here, or the hub closes: reply kReplyGone to
  /// every parked call.
  virtual void on_close() {}
};

/// @brief See the file comment.
class Hub : public std::enable_shared_from_this<Hub> {
 public:
  /// @brief The hub of @p scope: a process-local one for Scope::Threads; for the others the
  /// live Runtime's, made collectively by the first cross-rank object (within @p deadline,
  /// naming the ranks that did not come).
  /// @throws InvalidStateError naming @p api when no Runtime is alive for a cross-rank
  /// scope; TimeoutError from the collective construction.
  static std::shared_ptr<Hub> of(Scope scope, const Deadline& deadline, const char* api);

  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  /// @brief True for the process-local hub (Scope::Threads).
  bool local() const noexcept { return msgr_ == nullptr; }
  /// @brief The hub's private communicator (MPI_COMM_NULL for the local hub). Objects that
  /// need MPI collectives or RMA of their own duplicate it.
  MPI_Comm comm() const noexcept { return comm_; }
  /// @brief The messenger (nullptr for the local hub).
  messaging::Messenger* messenger() noexcept { return msgr_.get(); }
  /// @brief True when the calling thread may make MPI calls of its own (MPI_THREAD_MULTIPLE,
  /// or the thread that made the hub).
  bool may_call_mpi() const noexcept;

  /// @brief Registers @p object under the next id (the same on every rank when objects are
  /// built in the same order) and hands it the records that arrived early.
  std::uint64_t add(std::shared_ptr<Hosted> object);
  /// @brief Unregisters @p id (calls on_close()); later records for it are answered "gone".
  void remove(std::uint64_t id) noexcept;

  /// @brief Calls @p op of @p object on rank @p host and waits for its reply.
  /// @return the reply; on deadline or stop request the call is cancelled at the host and
  /// the reply that wins is returned (kReplyCancelled when the cancel did). A reply is
  /// never lost.
  /// @throws InvalidStateError once the hub is closed; TimeoutError naming @p api when the
  /// host does not answer a cancel within the start-up timeout (it is not making progress).
  /// @param help whether a waiting pool worker runs other tasks meanwhile: true for waits on
  /// an event every party reaches (Barrier, Event, join); false for waits that take a
  /// resource (a lock, a permit, an item), where a helped task could wait for the very
  /// resource granted to the waiter beneath it on the same thread's stack.
  Reply call(int host, std::uint64_t object, std::uint32_t op, std::vector<std::byte> args, const Deadline& deadline,
             const std::stop_token* token, const char* api, bool help = true);
  /// @brief As call(), with no thread waiting: the reply completes the returned future on
  /// the thread that delivers it (for a call to this rank's own host, possibly before this
  /// returns). Its cancel() sends the same cancel as a call() whose deadline passed, so
  /// exactly one reply still comes (kReplyCancelled when the cancel won). The failure
  /// detector watches the host while the call is in flight; close() ends it with kReplyGone.
  /// @throws InvalidStateError once the hub is closed; what sending throws.
  AsyncCall<Reply> call_async(int host, std::uint64_t object, std::uint32_t op, std::vector<std::byte> args,
                              const char* api);
  /// @brief Sends a one-way notice to @p object on rank @p dest (direct when local).
  void notice(int dest, std::uint64_t object, std::uint32_t op, std::vector<std::byte> args);
  /// @brief Host side: the reply to @p call of rank @p dest. Never blocks.
  void reply(int dest, std::uint64_t call, std::uint8_t status, std::vector<std::byte> body = {});

  /// @brief Closes the hub (the Runtime is going away): parked calls end with kReplyGone,
  /// the messenger stops. Idempotent.
  void close() noexcept;

  struct Impl;

 private:
  Hub();
  void deliver(int src, std::uint64_t object, std::uint64_t call, std::uint32_t op, std::vector<std::byte> args);
  void complete(std::uint64_t call, std::uint8_t status, std::vector<std::byte> body);

  std::unique_ptr<Impl> impl_;
  std::unique_ptr<messaging::Messenger> msgr_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

/// @brief A process-unique number of the calling thread (owners of locks, waiters).
/// @note Thread-safe, never throws; never 0.
std::uint64_t thread_tag() noexcept;

/// @brief One object's client side: its hub, id and host rank; unregisters on destruction.
/// Maps the hub's generic outcomes to errors that name the object's call.
class Handle {
 public:
  /// @brief Registers @p state (the host side) with the hub of @p scope. @p host is the rank
  /// that holds the object's state (0 for the local hub).
  /// @throws ValueError naming @p api when @p host is not a rank; what Hub::of throws.
  Handle(Scope scope, std::shared_ptr<Hosted> state, int host, const char* api);
  ~Handle();
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  /// @brief Calls @p op at the host. Returns the reply, whose status is kReplyOk,
  /// kReplyCancelled (the deadline passed and nothing happened) or an object's own code.
  /// @throws BrokenExecutor naming @p api when the host rank was lost; InvalidStateError when
  /// the object or its Runtime is gone; CancelledError when @p token stopped the call.
  Reply call(std::uint32_t op, std::vector<std::byte> args, const Deadline& deadline, const std::stop_token* token,
             const char* api, bool help = true) const;
  /// @brief As call(), with no thread waiting (Hub::call_async): the future ends with
  /// BrokenExecutor / InvalidStateError where call() throws them, else with the reply.
  AsyncCall<Reply> call_async(std::uint32_t op, std::vector<std::byte> args, const char* api) const;
  /// @brief A notice to the object's instance on rank @p dest.
  void notice(int dest, std::uint32_t op, std::vector<std::byte> args) const {
    hub_->notice(dest, id_, op, std::move(args));
  }

  Hub& hub() const noexcept { return *hub_; }
  Scope scope() const noexcept { return scope_; }
  int host() const noexcept { return host_; }
  std::uint64_t id() const noexcept { return id_; }

 private:
  std::shared_ptr<Hub> hub_;
  Scope scope_;
  int host_ = 0;
  std::uint64_t id_ = 0;
};

/// @brief The calls an object's host parked (a lock's waiters, a queue's blocked gets),
/// oldest first, each with a payload of the object's choosing. One helper for the three
/// things every host must do with them: withdraw one on cancel, forget a lost rank's, and
/// answer all on close. Not thread-safe: the object's own mutex guards it.
template <class Extra = bool>
class Parked {
 public:
  struct Entry {
    int src;
    std::uint64_t call;
    Extra extra;
  };
  void park(int src, std::uint64_t call, Extra extra = {}) { q_.push_back(Entry{src, call, std::move(extra)}); }
  bool empty() const noexcept { return q_.empty(); }
  std::size_t size() const noexcept { return q_.size(); }
  Entry& front() noexcept { return q_.front(); }
  /// @brief Removes and returns the oldest call.
  Entry pop() {
    Entry e = std::move(q_.front());
    q_.pop_front();
    return e;
  }
  /// @brief Hosted::on_cancel: replies kReplyCancelled to (@p src, @p call) and forgets it if
  /// it is parked; returns whether it was.
  bool cancel(Hub& hub, int src, std::uint64_t call) {
    for (auto it = q_.begin(); it != q_.end(); ++it) {
      if (it->src == src && it->call == call) {
        q_.erase(it);
        hub.reply(src, call, kReplyCancelled);
        return true;
      }
    }
    return false;
  }
  /// @brief Hosted::on_lost: forgets the calls of @p rank (nobody waits for their replies).
  void drop_rank(int rank) {
    std::erase_if(q_, [rank](const Entry& e) { return e.src == rank; });
  }
  /// @brief Hosted::on_close: answers every parked call kReplyGone.
  void close(Hub& hub) {
    for (const auto& e : q_) hub.reply(e.src, e.call, kReplyGone);
    q_.clear();
  }
  std::deque<Entry>& entries() noexcept { return q_; }

 private:
  std::deque<Entry> q_;
};

/// @brief Encodes @p values into one buffer (the args or body of a call).
template <class... T>
std::vector<std::byte> pack(const T&... values) {
  wire::Writer w;
  (w.write(values), ...);
  return w.take();
}

}  // namespace troupe::detail
