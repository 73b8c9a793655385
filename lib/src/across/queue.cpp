#include "troupe/across/queue.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"

namespace troupe::detail {

namespace {

using Bytes = std::vector<std::byte>;
using Items = std::vector<Bytes>;

enum Op : std::uint32_t {
  kPut = 1,
  kGet = 2,
  kStats = 3,
  kClose = 4,
  kTaskDone = 5,
  kJoin = 6,
  kPutAsync = 7,  // notice, client -> host: items put without a reply
  kRevoke = 8,    // notice, host -> every other rank: the queue is closing, no more put_async
  kRetired = 9,   // notice, client -> host: no put_async will follow from this rank
};
enum Status : std::uint8_t { kFull = kFirstObjectStatus, kEmpty, kShutDown, kTooManyDone };

// The queue's state on its host rank: the items, the parked gets and puts (FIFO each), the
// unfinished count and its parked joins. Every handler is short and never blocks.
class QueueHost final : public Hosted {
 public:
  QueueHost(std::ptrdiff_t maxsize, Hub* hub, int host)
      : maxsize_(static_cast<std::size_t>(maxsize)), hub_(hub), host_(host), retired_(hub->size(), false) {}

  // ---- the client side of put_async (every rank but the host) ----
  // Sends @p items as a notice unless this rank learned that the queue is closing; the
  // notice goes out under cmu_, so it precedes this rank's kRetired in the per-destination
  // order (the host sees every put_async made before the revoke arrived).
  bool put_async(Items items) {
    std::lock_guard lock(cmu_);
    if (client_closed_ || id_ == 0) return false;
    hub_->notice(host_, id_, kPutAsync, pack(items));
    return true;
  }
  // The object's id, once registered; sends a retirement that arrived before it.
  void registered(std::uint64_t id) {
    std::lock_guard lock(cmu_);
    id_ = id;
    if (retire_pending_) send_retired();
  }

  void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader& args) override {
    if (op == kRevoke) {  // on a client rank: stop put_async, tell the host
      std::lock_guard lock(cmu_);
      client_closed_ = true;
      send_retired();
      return;
    }
    std::lock_guard lock(mu_);
    switch (op) {
      case kPutAsync: {
        Items items = args.read<Items>();
        // Admitted even while closing: it was put before its rank learned of the close.
        admit(items, 0);
        serve_getters();
        return;
      }
      case kRetired:
        retire(src);
        return;
      case kPut: {
        const bool block = args.read<bool>();
        Items items = args.read<Items>();
        if (closed_) {
          hub_->reply(src, call, kShutDown);
          return;
        }
        std::size_t n = 0;
        if (putters_.empty()) n = admit(items, 0);
        if (n > 0 || items.empty()) {
          hub_->reply(src, call, kReplyOk, pack(static_cast<std::uint64_t>(n)));
        } else if (!block) {
          hub_->reply(src, call, kFull);
        } else {
          putters_.push_back(PutWaiter{src, call, std::move(items)});
        }
        serve_getters();
        return;
      }
      case kGet: {
        const bool block = args.read<bool>();
        const auto max = args.read<std::uint64_t>();
        if (!items_.empty()) {
          hub_->reply(src, call, kReplyOk, take(max));
          serve_putters();
        } else if (shut_) {
          hub_->reply(src, call, kShutDown);
        } else if (!block) {
          hub_->reply(src, call, kEmpty);
        } else {
          getters_.push_back(GetWaiter{src, call, max});
        }
        return;
      }
      case kStats: {
        wire::Writer w;
        w.write(static_cast<std::uint64_t>(items_.size()));
        w.write(static_cast<std::uint64_t>(high_water_));
        w.write(puts_);
        w.write(gets_);
        w.write(unfinished_);
        w.write(closed_);
        w.write(static_cast<std::uint64_t>(getters_.size()));
        w.write(static_cast<std::uint64_t>(putters_.size()));
        hub_->reply(src, call, kReplyOk, w.take());
        return;
      }
      case kClose: {
        // Puts by call end now (parked ones were not admitted). Gets end once every other
        // rank has confirmed that no put_async of its is still on its way (kRetired after
        // kRevoke), so no item arrives after a get was told "closed and empty".
        if (!closed_) {
          closed_ = true;
          for (auto& p : putters_) hub_->reply(p.src, p.call, kShutDown);
          putters_.clear();
          for (int r = 0; r < static_cast<int>(retired_.size()); ++r) {
            if (r == hub_->rank() || retired_[static_cast<std::size_t>(r)]) continue;
            try {
              hub_->notice(r, id_of_host(), kRevoke, {});
            } catch (...) {  // the Runtime is closing: nothing more will come
              retired_[static_cast<std::size_t>(r)] = true;
            }
          }
        }
        closers_.push_back(Waiter{src, call});
        maybe_shut();
        return;
      }
      case kTaskDone: {
        if (unfinished_ == 0) {
          hub_->reply(src, call, kTooManyDone, pack(puts_));
          return;
        }
        if (--unfinished_ == 0) {
          for (auto& j : joiners_) hub_->reply(j.src, j.call, kReplyOk);
          joiners_.clear();
        }
        hub_->reply(src, call, kReplyOk);
        return;
      }
      case kJoin: {
        if (unfinished_ == 0) {
          hub_->reply(src, call, kReplyOk);
        } else {
          joiners_.push_back(Waiter{src, call});
        }
        return;
      }
      default:
        throw wire::DecodeError("Queue: unknown operation " + std::to_string(op));
    }
  }

  void on_cancel(int src, std::uint64_t call) override {
    std::lock_guard lock(mu_);
    if (cancel_in(getters_, src, call) || cancel_in(putters_, src, call) || cancel_in(joiners_, src, call) ||
        cancel_in(closers_, src, call)) {
      hub_->reply(src, call, kReplyCancelled);
    }
  }

  void on_lost(int rank) override {
    std::lock_guard lock(mu_);
    auto of = [rank](const auto& w) { return w.src == rank; };
    std::erase_if(getters_, of);
    std::erase_if(putters_, of);
    std::erase_if(joiners_, of);
    std::erase_if(closers_, of);
    retire(rank);
    serve_putters();
  }

  void on_close() override {
    {
      // Destroyed on a client rank: no put_async will follow from here.
      std::lock_guard lock(cmu_);
      if (!client_closed_ && hub_->rank() != host_) {
        client_closed_ = true;
        try {
          send_retired();
        } catch (...) {
        }
      }
    }
    std::lock_guard lock(mu_);
    for (auto& w : closers_) hub_->reply(w.src, w.call, kReplyGone);
    closers_.clear();
    for (auto& w : getters_) hub_->reply(w.src, w.call, kReplyGone);
    for (auto& w : putters_) hub_->reply(w.src, w.call, kReplyGone);
    for (auto& w : joiners_) hub_->reply(w.src, w.call, kReplyGone);
    getters_.clear();
    putters_.clear();
    joiners_.clear();
  }

 private:
  struct Waiter {
    int src;
    std::uint64_t call;
  };
  struct GetWaiter {
    int src;
    std::uint64_t call;
    std::uint64_t max;
  };
  struct PutWaiter {
    int src;
    std::uint64_t call;
    Items items;
  };

  // Client side, under cmu_: tell the host no put_async follows (once the id is known).
  void send_retired() {
    if (retired_sent_) return;
    if (id_ == 0) {
      retire_pending_ = true;
      return;
    }
    retired_sent_ = true;
    hub_->notice(host_, id_, kRetired, {});
  }
  std::uint64_t id_of_host() {
    std::lock_guard lock(cmu_);
    return id_;
  }
  // Host side, under mu_.
  void retire(int rank) {
    if (rank >= 0 && rank < static_cast<int>(retired_.size())) retired_[static_cast<std::size_t>(rank)] = true;
    maybe_shut();
  }
  void maybe_shut() {
    if (!closed_) return;
    if (!shut_) {
      for (int r = 0; r < static_cast<int>(retired_.size()); ++r) {
        if (r != hub_->rank() && !retired_[static_cast<std::size_t>(r)]) return;
      }
      shut_ = true;
      // Parked gets exist only while the queue is empty.
      for (auto& g : getters_) hub_->reply(g.src, g.call, kShutDown);
      getters_.clear();
    }
    for (auto& c : closers_) hub_->reply(c.src, c.call, kReplyOk);
    closers_.clear();
  }

  template <class Q>
  static bool cancel_in(Q& q, int src, std::uint64_t call) {
    for (auto it = q.begin(); it != q.end(); ++it) {
      if (it->src == src && it->call == call) {
        q.erase(it);
        return true;
      }
    }
    return false;
  }

  std::size_t room() const {
    if (maxsize_ == 0) return SIZE_MAX;
    return maxsize_ > items_.size() ? maxsize_ - items_.size() : 0;
  }
  // Admits as many of items[from..] as there is room for; returns how many.
  std::size_t admit(Items& items, std::size_t from) {
    const std::size_t n = std::min(room(), items.size() - from);
    for (std::size_t i = 0; i < n; ++i) items_.push_back(std::move(items[from + i]));
    puts_ += n;
    unfinished_ += n;
    high_water_ = std::max(high_water_, items_.size());
    return n;
  }
  // The body of a get's reply: up to max of the oldest items.
  Bytes take(std::uint64_t max) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(max, items_.size()));
    wire::Writer w;
    w.write_length(n);
    for (std::size_t i = 0; i < n; ++i) {
      w.write(items_.front());
      items_.pop_front();
    }
    gets_ += n;
    return w.take();
  }
  void serve_getters() {
    while (!items_.empty() && !getters_.empty()) {
      const GetWaiter g = getters_.front();
      getters_.pop_front();
      hub_->reply(g.src, g.call, kReplyOk, take(g.max));
    }
  }
  // Room was made: admit the oldest parked puts (each reply says how many of its items went
  // in; the caller sends the rest again, behind the puts parked meanwhile).
  void serve_putters() {
    while (!putters_.empty() && room() > 0) {
      PutWaiter p = std::move(putters_.front());
      putters_.pop_front();
      const std::size_t n = admit(p.items, 0);
      hub_->reply(p.src, p.call, kReplyOk, pack(static_cast<std::uint64_t>(n)));
    }
    serve_getters();
  }

  const std::size_t maxsize_;
  Hub* const hub_;
  const int host_;
  // Client side (put_async), guarded by cmu_ (never held while taking mu_).
  std::mutex cmu_;
  std::uint64_t id_ = 0;
  bool client_closed_ = false;
  bool retire_pending_ = false;
  bool retired_sent_ = false;
  // Host side, guarded by mu_.
  std::mutex mu_;
  std::vector<bool> retired_;  // per rank: no put_async of it can still arrive
  std::deque<Waiter> closers_;
  bool shut_ = false;  // closed and every other rank retired: gets on empty raise ShutDown
  std::deque<Bytes> items_;
  std::deque<GetWaiter> getters_;
  std::deque<PutWaiter> putters_;
  std::deque<Waiter> joiners_;
  std::size_t high_water_ = 0;
  std::uint64_t puts_ = 0;
  std::uint64_t gets_ = 0;
  std::uint64_t unfinished_ = 0;
  bool closed_ = false;
};

const char* kind_name(QueueKind k) {
  switch (k) {
    case QueueKind::kJoinable:
      return "JoinableQueue";
    case QueueKind::kSimple:
      return "SimpleQueue";
    default:
      return "Queue";
  }
}

}  // namespace

QueueCore::QueueCore(Scope scope, std::ptrdiff_t maxsize, int host, QueueKind kind) : maxsize_(maxsize) {
  const std::string name = kind_name(kind);
  if (maxsize < 0) throw ValueError(name + ": maxsize must be >= 0 (0: unbounded), got " + std::to_string(maxsize));
  api_[kApiPut] = name + "::put";
  api_[kApiGet] = name + "::get";
  api_[kApiPutMany] = name + "::put_many";
  api_[kApiGetMany] = name + "::get_many";
  api_[kApiJoin] = name + "::join";
  api_[kApiClose] = name + "::close";
  api_[kApiTaskDone] = name + "::task_done";
  api_[kApiStats] = name + "::stats";
  api_[kApiPutAsync] = name + "::put_async";
  const int host_rank = scope == Scope::Threads ? 0 : host;
  auto hub = Hub::of(scope, Deadline::after(settings().startup_timeout, kind_name(kind)), kind_name(kind));
  if (host_rank < 0 || host_rank >= hub->size()) {
    throw ValueError(name + ": host must be a rank in [0, " + std::to_string(hub->size()) + "), got " +
                     std::to_string(host_rank));
  }
  auto state = std::make_shared<QueueHost>(maxsize, hub.get(), host_rank);
  state_ = state;
  handle_ = std::make_unique<Handle>(scope, state, host_rank, kind_name(kind));
  state->registered(handle_->id());
}

void QueueCore::put_async(std::vector<std::byte> item) {
  if (maxsize_ != 0 || handle_->hub().rank() == handle_->host() || handle_->hub().local()) {
    put(std::move(item), true, Deadline{}, nullptr);  // bounded, or on the host: a call (no message)
    return;
  }
  Items one;
  one.push_back(std::move(item));
  if (!std::static_pointer_cast<QueueHost>(state_)->put_async(std::move(one))) {
    throw ShutDown(std::string(api(kApiPutAsync)) + ": the queue is closed");
  }
}

QueueCore::~QueueCore() = default;

Scope QueueCore::scope() const noexcept { return handle_->scope(); }

void QueueCore::put(std::vector<std::byte> item, bool block, const Deadline& deadline, const std::stop_token* token) {
  Items one;
  one.push_back(std::move(item));
  const char* api = this->api(kApiPut);
  auto r = handle_->call(kPut, pack(block, one), deadline, token, api, /*help=*/false);
  switch (r.status) {
    case kReplyOk:
      return;
    case kShutDown:
      throw ShutDown(std::string(api) + ": the queue is closed");
    case kFull:
      throw Full(std::string(api) + ": the queue is full (maxsize " + std::to_string(maxsize_) + ")");
    case kReplyCancelled:
      throw Full(std::string(api) + ": the timeout passed while the queue was full (maxsize " +
                 std::to_string(maxsize_) + ")");
    default:
      throw InvalidStateError(std::string(api) + ": unexpected reply " + std::to_string(r.status));
  }
}

void QueueCore::put_many(std::vector<std::vector<std::byte>> items, const Deadline& deadline,
                         const std::stop_token* token) {
  const char* api = this->api(kApiPutMany);
  const std::size_t total = items.size();
  std::size_t done = 0;
  while (done < total) {
    // Send what is left (a parked put_many is admitted as room allows; the rest comes back).
    Items rest(std::make_move_iterator(items.begin() + static_cast<std::ptrdiff_t>(done)),
               std::make_move_iterator(items.end()));
    wire::Writer w;
    w.write(true);
    w.write(rest);
    auto r = handle_->call(kPut, w.take(), deadline, token, api, /*help=*/false);
    const std::string so_far = " (" + std::to_string(done) + " of " + std::to_string(total) + " items were put)";
    switch (r.status) {
      case kReplyOk: {
        const auto n = wire::deserialize<std::uint64_t>(r.body);
        // Put the unsent items back in place for the next round.
        for (std::size_t i = static_cast<std::size_t>(n); i < rest.size(); ++i) items[done + i] = std::move(rest[i]);
        done += static_cast<std::size_t>(n);
        break;
      }
      case kShutDown:
        throw ShutDown(std::string(api) + ": the queue is closed" + so_far);
      case kReplyCancelled:
        throw Full(std::string(api) + ": the timeout passed while the queue was full (maxsize " +
                   std::to_string(maxsize_) + ")" + so_far);
      default:
        throw InvalidStateError(std::string(api) + ": unexpected reply " + std::to_string(r.status));
    }
  }
}

std::vector<std::byte> QueueCore::get(bool block, const Deadline& deadline, const std::stop_token* token) {
  const char* api = this->api(kApiGet);
  auto r = handle_->call(kGet, pack(block, std::uint64_t{1}), deadline, token, api, /*help=*/false);
  switch (r.status) {
    case kReplyOk: {
      auto items = wire::deserialize<Items>(r.body);
      if (items.size() != 1) throw InvalidStateError(std::string(api) + ": the host answered no item");
      return std::move(items[0]);
    }
    case kShutDown:
      throw ShutDown(std::string(api) + ": the queue is closed and empty");
    case kEmpty:
      throw Empty(std::string(api) + ": the queue is empty");
    case kReplyCancelled:
      throw Empty(std::string(api) + ": the timeout passed while the queue was empty");
    default:
      throw InvalidStateError(std::string(api) + ": unexpected reply " + std::to_string(r.status));
  }
}

AsyncCall<std::vector<std::byte>> QueueCore::get_async() {
  std::string api = this->api(kApiGet);
  auto call = handle_->call_async(kGet, pack(true, std::uint64_t{1}), api.c_str());
  auto item = call.future.then([api](const Reply& r) -> Bytes {
    switch (r.status) {
      case kReplyOk: {
        auto items = wire::deserialize<Items>(r.body);
        if (items.size() != 1) throw InvalidStateError(api + ": the host answered no item");
        return std::move(items[0]);
      }
      case kShutDown:
        throw ShutDown(api + ": the queue is closed and empty");
      case kReplyCancelled:
        throw CancelledError(api + ": cancelled by token");
      default:
        throw InvalidStateError(api + ": unexpected reply " + std::to_string(r.status));
    }
  });
  return AsyncCall<Bytes>{std::move(item), std::move(call.cancel)};
}

std::vector<std::vector<std::byte>> QueueCore::get_many(std::size_t max, const Deadline& deadline,
                                                        const std::stop_token* token) {
  const char* api = this->api(kApiGetMany);
  if (max == 0) throw ValueError(std::string(api) + ": max must be >= 1, got 0");
  auto r = handle_->call(kGet, pack(true, static_cast<std::uint64_t>(max)), deadline, token, api, /*help=*/false);
  switch (r.status) {
    case kReplyOk:
      return wire::deserialize<Items>(r.body);
    case kShutDown:
      throw ShutDown(std::string(api) + ": the queue is closed and empty");
    case kReplyCancelled:
      throw Empty(std::string(api) + ": the timeout passed while the queue was empty");
    default:
      throw InvalidStateError(std::string(api) + ": unexpected reply " + std::to_string(r.status));
  }
}

void QueueCore::close() { handle_->call(kClose, {}, Deadline{}, nullptr, api(kApiClose)); }

void QueueCore::task_done() {
  auto r = handle_->call(kTaskDone, {}, Deadline{}, nullptr, api(kApiTaskDone));
  if (r.status == kTooManyDone) {
    throw ValueError("JoinableQueue::task_done: called more times than items were put (" +
                     std::to_string(wire::deserialize<std::uint64_t>(r.body)) +
                     " put so far, every one already marked done)");
  }
}

bool QueueCore::join(const Deadline& deadline, const std::stop_token* token) {
  auto r = handle_->call(kJoin, {}, deadline, token, api(kApiJoin), /*help=*/true);
  return r.status == kReplyOk;
}

QueueStats QueueCore::stats() const {
  auto r = handle_->call(kStats, {}, Deadline{}, nullptr, api(kApiStats));
  wire::Reader in(r.body);
  QueueStats s;
  s.qsize = static_cast<std::size_t>(in.read<std::uint64_t>());
  s.high_water = static_cast<std::size_t>(in.read<std::uint64_t>());
  s.puts = in.read<std::uint64_t>();
  s.gets = in.read<std::uint64_t>();
  s.unfinished = in.read<std::uint64_t>();
  s.closed = in.read<bool>();
  s.parked_gets = static_cast<std::size_t>(in.read<std::uint64_t>());
  s.parked_puts = static_cast<std::size_t>(in.read<std::uint64_t>());
  s.maxsize = maxsize_;
  return s;
}

}  // namespace troupe::detail
