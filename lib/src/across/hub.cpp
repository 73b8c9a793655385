#include "troupe/across/detail/hub.hpp"

#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "troupe/core/config.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/messaging/messenger.hpp"
#include "troupe/runtime/detail/arrival.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"

namespace troupe::detail {

using messaging::Kind;

namespace {

struct Slot {
  WaitWord word;
  std::atomic<bool> done{false};
  Reply reply;
  int host = 0;
  std::function<void(Reply)> on_reply;  // call_async: takes the reply instead of a waiter
};

struct Held {
  int src;
  std::uint64_t call;
  std::uint32_t op;
  std::vector<std::byte> args;
};

std::mutex g_mu;             // guards the two below
std::shared_ptr<Hub> g_hub;  // the live Runtime's hub
const Runtime* g_hub_rt = nullptr;

}  // namespace

struct Hub::Impl {
  std::mutex mu;  // objects, next_id, held; held while early records are handed over
  std::unordered_map<std::uint64_t, std::shared_ptr<Hosted>> objects;
  std::unordered_map<std::uint64_t, std::vector<Held>> held;
  std::uint64_t next_id = 1;

  std::mutex pmu;  // slots
  std::unordered_map<std::uint64_t, std::shared_ptr<Slot>> slots;
  std::atomic<std::uint64_t> next_call{1};

  std::atomic<bool> closing{false};  // close() has begun
  std::atomic<bool> closed{false};   // no more calls or messages
  bool multiple = true;
  std::thread::id owner = std::this_thread::get_id();
};

Hub::Hub() : impl_(std::make_unique<Impl>()) {}

Hub::~Hub() { close(); }

std::shared_ptr<Hub> Hub::of(Scope scope, const Deadline& deadline, const char* api) {
  if (scope == Scope::Threads) {
    static const std::shared_ptr<Hub> local(new Hub());
    return local;
  }
  Runtime* rt = Runtime::current();
  if (rt == nullptr) {
    throw InvalidStateError(std::string(api) + "(" + to_string(scope) +
                            "): no troupe::Runtime is alive; build one first, or use Scope::Threads");
  }
  std::lock_guard lock(g_mu);
  if (g_hub && g_hub_rt == rt && !g_hub->impl_->closed.load()) return g_hub;
  std::shared_ptr<Hub> hub(new Hub());
  // A private communicator, made within the deadline (an object built on only some ranks
  // raises, naming the ranks that did not come, instead of hanging).
  hub->comm_ = collective_dup(rt->comm(), rt->comm(), deadline, api);
  try {
    messaging::MessengerOptions mo;
    // A progress thread makes MPI calls beside the program's threads: MPI_THREAD_MULTIPLE, or
    // SERIALIZED with one MPI token (MpiMode::Serialized). Otherwise the thread that built the
    // first object drives progress while it waits.
    mo.engine.progress_thread = rt->progress_threads();
    mo.failure_timeout = mo.engine.progress_thread ? settings().failure_timeout : std::chrono::milliseconds(0);
    hub->impl_->multiple = mo.engine.progress_thread;
    hub->msgr_ = std::make_unique<messaging::Messenger>(hub->comm_, mo);
    hub->rank_ = hub->msgr_->rank();
    hub->size_ = hub->msgr_->size();
    Hub* self = hub.get();
    hub->msgr_->on(Kind::kObject, [self](int src, wire::Reader& in) {
      const auto object = in.read<std::uint64_t>();
      const auto call = in.read<std::uint64_t>();
      const auto op = in.read<std::uint32_t>();
      auto args = in.read<std::vector<std::byte>>();
      self->deliver(src, object, call, op, std::move(args));
    });
    hub->msgr_->on(Kind::kReply, [self](int, wire::Reader& in) {
      const auto call = in.read<std::uint64_t>();
      const auto status = in.read<std::uint8_t>();
      auto body = in.read<std::vector<std::byte>>();
      self->complete(call, status, std::move(body));
    });
    // A lost rank, or one that sent a record its object could not read: its calls end (no
    // hang on a host that will not answer) and every object forgets what it held.
    auto drop_rank = [self](int r, const std::string&) {
      std::vector<std::uint64_t> ended;
      {
        std::lock_guard plock(self->impl_->pmu);
        for (auto& [id, slot] : self->impl_->slots)
          if (slot->host == r) ended.push_back(id);
      }
      for (auto id : ended) self->complete(id, kReplyLostHost, {});
      std::vector<std::shared_ptr<Hosted>> objs;
      {
        std::lock_guard olock(self->impl_->mu);
        for (auto& [id, o] : self->impl_->objects) objs.push_back(o);
      }
      for (auto& o : objs) o->on_lost(r);
    };
    hub->msgr_->on_lost(drop_rank);
    hub->msgr_->on_broken(drop_rank);
    hub->msgr_->start();
  } catch (...) {
    hub->msgr_.reset();
    TROUPE_MPI_UNCHECKED(MPI_Comm_free(&hub->comm_));
    throw;
  }
  g_hub = hub;
  g_hub_rt = rt;
  std::weak_ptr<Hub> weak = hub;
  rt->on_release([weak] {
    if (auto h = weak.lock()) h->close();
    std::lock_guard glock(g_mu);
    g_hub.reset();
    g_hub_rt = nullptr;
  });
  return hub;
}

bool Hub::may_call_mpi() const noexcept { return impl_->multiple || std::this_thread::get_id() == impl_->owner; }

std::uint64_t Hub::add(std::shared_ptr<Hosted> object) {
  std::lock_guard lock(impl_->mu);
  const std::uint64_t id = impl_->next_id++;
  impl_->objects.emplace(id, object);
  // Records that arrived before this rank built the object, handed over in arrival order
  // and before any later one (a concurrent delivery waits for the lock).
  if (auto it = impl_->held.find(id); it != impl_->held.end()) {
    auto early = std::move(it->second);
    impl_->held.erase(it);
    for (auto& h : early) {
      if (h.op == kCancelOp) {
        object->on_cancel(h.src, h.call);
      } else {
        wire::Reader r(h.args);
        object->on_call(h.src, h.call, h.op, r);
      }
    }
  }
  return id;
}

void Hub::remove(std::uint64_t id) noexcept {
  std::shared_ptr<Hosted> obj;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->objects.find(id);
    if (it == impl_->objects.end()) return;
    obj = std::move(it->second);
    impl_->objects.erase(it);
  }
  try {
    obj->on_close();
  } catch (...) {
  }
}

void Hub::deliver(int src, std::uint64_t object, std::uint64_t call, std::uint32_t op, std::vector<std::byte> args) {
  std::shared_ptr<Hosted> obj;
  {
    std::lock_guard lock(impl_->mu);
    if (auto it = impl_->objects.find(object); it != impl_->objects.end()) {
      obj = it->second;
    } else if (object >= impl_->next_id) {
      impl_->held[object].push_back(Held{src, call, op, std::move(args)});
      return;
    }
  }
  if (!obj) {  // destroyed here: the caller must not wait for an answer that never comes
    if (call != 0 && op != kCancelOp) reply(src, call, kReplyGone);
    return;
  }
  if (op == kCancelOp) {
    obj->on_cancel(src, call);
    return;
  }
  wire::Reader r(args);
  try {
    obj->on_call(src, call, op, r);
  } catch (...) {
    // The record made no sense to its object: end the call (no hang), then let the
    // messaging layer's error policy report it.
    if (call != 0) reply(src, call, kReplyGone);
    throw;
  }
}

void Hub::complete(std::uint64_t call, std::uint8_t status, std::vector<std::byte> body) {
  std::shared_ptr<Slot> slot;
  {
    std::lock_guard lock(impl_->pmu);
    auto it = impl_->slots.find(call);
    if (it == impl_->slots.end()) return;  // the caller gave up on a host that never answered
    slot = std::move(it->second);
    impl_->slots.erase(it);
  }
  if (slot->on_reply) {  // call_async: nobody waits on the slot
    Reply r;
    r.status = status;
    r.body = std::move(body);
    slot->on_reply(std::move(r));
    return;
  }
  slot->reply.status = status;
  slot->reply.body = std::move(body);
  slot->done.store(true, std::memory_order_release);
  slot->word.notify_all();
}

void Hub::reply(int dest, std::uint64_t call, std::uint8_t status, std::vector<std::byte> body) {
  if (dest == rank_ || msgr_ == nullptr) {
    complete(call, status, std::move(body));
    return;
  }
  if (impl_->closed.load(std::memory_order_acquire)) return;
  try {
    msgr_->send(dest, Kind::kReply, [&](wire::Writer& w) {
      w.write(call);
      w.write(status);
      w.write(body);
    });
  } catch (...) {  // the hub is closing: the caller ends with kReplyGone
  }
}

void Hub::notice(int dest, std::uint64_t object, std::uint32_t op, std::vector<std::byte> args) {
  if (impl_->closed.load(std::memory_order_acquire)) {
    throw InvalidStateError("troupe: the Runtime of this object was destroyed");
  }
  if (dest == rank_ || msgr_ == nullptr) {
    deliver(rank_, object, 0, op, std::move(args));
    return;
  }
  msgr_->send(dest, Kind::kObject, [&](wire::Writer& w) {
    w.write(object);
    w.write(std::uint64_t{0});
    w.write(op);
    w.write(args);
  });
}

Reply Hub::call(int host, std::uint64_t object, std::uint32_t op, std::vector<std::byte> args, const Deadline& deadline,
                const std::stop_token* token, const char* api, bool help) {
  auto& im = *impl_;
  if (im.closed.load(std::memory_order_acquire)) {
    throw InvalidStateError(std::string(api) + ": the troupe::Runtime of this object was destroyed");
  }
  auto slot = std::make_shared<Slot>();
  slot->host = host;
  const std::uint64_t id = im.next_call.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(im.pmu);
    im.slots.emplace(id, slot);
  }
  const bool remote = host != rank_ && msgr_ != nullptr;
  auto send = [&](std::uint32_t what, const std::vector<std::byte>& bytes) {
    msgr_->send(host, Kind::kObject, [&](wire::Writer& w) {
      w.write(object);
      w.write(id);
      w.write(what);
      w.write(bytes);
    });
  };
  // While a reply is awaited the failure detector watches the host, and the engine keeps its
  // idle naps short (the reply is taken off the wire without a wake-up delay).
  struct Unwatch {
    messaging::Messenger* m;
    int host;
    ~Unwatch() {
      if (m) {
        m->watch(host, -1);
        m->engine().expect(-1);
      }
    }
  };
  try {
    if (remote) {
      msgr_->watch(host, +1);
      msgr_->engine().expect(1);
      send(op, args);
    } else {
      deliver(rank_, object, id, op, std::move(args));
    }
  } catch (...) {
    if (remote) {
      msgr_->watch(host, -1);
      msgr_->engine().expect(-1);
    }
    std::lock_guard lock(im.pmu);
    im.slots.erase(id);
    throw;
  }
  Unwatch unwatch{remote ? msgr_.get() : nullptr, host};
  auto ready = [&slot] { return slot->done.load(std::memory_order_acquire); };
  WaitParams params;
  params.help = help;
  const WaitStatus st = slot->word.wait_status(ready, deadline, token, params);
  if (st != WaitStatus::kReady) {
    // Give up at the host: exactly one reply still comes (the real one, if it was on its
    // way, or kReplyCancelled).
    if (remote) {
      send(kCancelOp, {});
    } else {
      deliver(rank_, object, id, kCancelOp, {});
    }
    const auto grace = settings().startup_timeout;
    if (!slot->word.wait(ready, Deadline::after(grace, api), nullptr, api, params)) {
      {
        std::lock_guard lock(im.pmu);
        im.slots.erase(id);
      }
      throw TimeoutError(std::string(api) + ": rank " + std::to_string(host) + " did not answer a cancel within " +
                         std::to_string(grace.count()) + " ms (TROUPE_STARTUP_TIMEOUT_MS); is it making progress?");
    }
    if (st == WaitStatus::kCancelled && slot->reply.status == kReplyCancelled) throw_wait_cancelled(api);
  }
  return std::move(slot->reply);
}

AsyncCall<Reply> Hub::call_async(int host, std::uint64_t object, std::uint32_t op, std::vector<std::byte> args,
                                 const char* api) {
  auto& im = *impl_;
  if (im.closed.load(std::memory_order_acquire)) {
    throw InvalidStateError(std::string(api) + ": the troupe::Runtime of this object was destroyed");
  }
  const bool remote = host != rank_ && msgr_ != nullptr;
  messaging::Messenger* m = remote ? msgr_.get() : nullptr;
  Promise<Reply> promise;
  AsyncCall<Reply> out;
  out.future = promise.get_future();
  auto slot = std::make_shared<Slot>();
  slot->host = host;
  // Runs once, on the thread that completes the call (the messenger's, or this rank's host
  // code): as call()'s Unwatch, then the future.
  slot->on_reply = [promise, m, host](Reply r) mutable {
    if (m != nullptr) {
      m->watch(host, -1);
      m->engine().expect(-1);
    }
    try {
      promise.set_result(std::move(r));
    } catch (...) {  // cannot happen: one reply per call
    }
  };
  const std::uint64_t id = im.next_call.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(im.pmu);
    im.slots.emplace(id, slot);
  }
  try {
    if (remote) {
      m->watch(host, +1);
      m->engine().expect(1);
      m->send(host, Kind::kObject, [&](wire::Writer& w) {
        w.write(object);
        w.write(id);
        w.write(op);
        w.write(args);
      });
    } else {
      deliver(rank_, object, id, op, std::move(args));
    }
  } catch (...) {
    bool pending = false;
    {
      std::lock_guard lock(im.pmu);
      pending = im.slots.erase(id) > 0;
    }
    if (m != nullptr && pending) {
      m->watch(host, -1);
      m->engine().expect(-1);
    }
    throw;
  }
  std::weak_ptr<Hub> weak = weak_from_this();
  auto once = std::make_shared<std::atomic<bool>>(false);
  out.cancel = [weak, once, host, object, id]() {
    if (once->exchange(true)) return;
    auto hub = weak.lock();
    if (!hub) return;
    {
      std::lock_guard lock(hub->impl_->pmu);
      if (hub->impl_->slots.count(id) == 0) return;  // answered already
    }
    if (hub->impl_->closed.load(std::memory_order_acquire)) return;  // close() answers it
    try {
      if (host != hub->rank_ && hub->msgr_ != nullptr) {
        hub->msgr_->send(host, Kind::kObject, [&](wire::Writer& w) {
          w.write(object);
          w.write(id);
          w.write(kCancelOp);
          w.write(std::vector<std::byte>{});
        });
      } else {
        hub->deliver(hub->rank_, object, id, kCancelOp, {});
      }
    } catch (...) {  // the hub is closing: close() ends the call with kReplyGone
    }
  };
  return out;
}

void Hub::close() noexcept {
  auto& im = *impl_;
  if (im.closing.exchange(true)) return;
  if (msgr_) {
    // Let what was sent before arrive (an Event set just before exit), within a bound.
    try {
      msgr_->quiesce(Deadline::after(std::chrono::milliseconds(5'000), "Runtime (closing troupe's objects)"));
    } catch (...) {
    }
  }
  im.closed.store(true, std::memory_order_release);
  std::vector<std::shared_ptr<Hosted>> objs;
  {
    std::lock_guard lock(im.mu);
    for (auto& [id, o] : im.objects) objs.push_back(o);
    im.objects.clear();
    im.held.clear();
  }
  for (auto& o : objs) {
    try {
      o->on_close();
    } catch (...) {
    }
  }
  std::vector<std::uint64_t> ids;
  {
    std::lock_guard lock(im.pmu);
    for (auto& [id, s] : im.slots) ids.push_back(id);
  }
  for (auto id : ids) complete(id, kReplyGone, {});
  msgr_.reset();
  if (comm_ != MPI_COMM_NULL) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) TROUPE_MPI_UNCHECKED(MPI_Comm_free(&comm_));
    comm_ = MPI_COMM_NULL;
  }
}

std::uint64_t thread_tag() noexcept {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t tag = next.fetch_add(1, std::memory_order_relaxed);
  return tag;
}

Handle::Handle(Scope scope, std::shared_ptr<Hosted> state, int host, const char* api)
    : hub_(Hub::of(scope, Deadline::after(settings().startup_timeout, api), api)), scope_(scope), host_(host) {
  if (host < 0 || host >= hub_->size()) {
    throw ValueError(std::string(api) + ": host must be a rank in [0, " + std::to_string(hub_->size()) + "), got " +
                     std::to_string(host));
  }
  id_ = hub_->add(std::move(state));
}

Handle::~Handle() { hub_->remove(id_); }

Reply Handle::call(std::uint32_t op, std::vector<std::byte> args, const Deadline& deadline,
                   const std::stop_token* token, const char* api, bool help) const {
  Reply r = hub_->call(host_, id_, op, std::move(args), deadline, token, api, help);
  if (r.status == kReplyLostHost) {
    throw BrokenExecutor(std::string(api) + ": rank " + std::to_string(host_) +
                         ", which holds this object's state, was lost");
  }
  if (r.status == kReplyGone) {
    throw InvalidStateError(std::string(api) + ": the object was destroyed on rank " + std::to_string(host_) +
                            " (or its Runtime is closing)");
  }
  return r;
}

AsyncCall<Reply> Handle::call_async(std::uint32_t op, std::vector<std::byte> args, const char* api) const {
  AsyncCall<Reply> c = hub_->call_async(host_, id_, op, std::move(args), api);
  c.future = c.future.then([name = std::string(api), holder = host_](const Reply& r) -> Reply {
    if (r.status == kReplyLostHost) {
      throw BrokenExecutor(name + ": rank " + std::to_string(holder) + ", which holds this object's state, was lost");
    }
    if (r.status == kReplyGone) {
      throw InvalidStateError(name + ": the object was destroyed on rank " + std::to_string(holder) +
                              " (or its Runtime is closing)");
    }
    return r;
  });
  return c;
}

}  // namespace troupe::detail
