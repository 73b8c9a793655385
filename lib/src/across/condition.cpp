// troupe::Condition: the waiter queue on rank 0; register, release the lock, wait, re-acquire.
#include "troupe/across/condition.hpp"

#include <limits>
#include <list>
#include <mutex>
#include <string>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/error.hpp"

namespace troupe {

namespace {

using detail::kReplyCancelled;
using detail::kReplyOk;

enum Op : std::uint32_t { kEnqueue = 1, kWait = 2, kNotify = 3, kForget = 4 };

// The waiters of every rank in arrival order, on the host rank. A waiter is registered
// (kEnqueue) while its thread still holds the lock, then waits (kWait) for a wake-up.
class ConditionHost final : public detail::Hosted {
 public:
  void attach(detail::Hub* hub) { hub_ = hub; }

  void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader& args) override {
    std::lock_guard lock(mu_);
    switch (op) {
      case kEnqueue: {
        const std::uint64_t ticket = next_ticket_++;
        waiters_.push_back(Waiter{src, ticket, false, 0});
        hub_->reply(src, call, kReplyOk, detail::pack(ticket));
        return;
      }
      case kWait: {
        const auto ticket = args.read<std::uint64_t>();
        auto it = find(src, ticket);
        if (it == waiters_.end()) throw wire::DecodeError("Condition: wait for an unknown ticket");
        if (it->notified) {
          waiters_.erase(it);
          hub_->reply(src, call, kReplyOk);
        } else {
          it->call = call;
        }
        return;
      }
      case kNotify: {
        const auto n = args.read<std::uint64_t>();
        hub_->reply(src, call, kReplyOk, detail::pack(wake(n)));
        return;
      }
      case kForget: {  // a waiter that could not release the lock: drop it, pass on its wake-up
        const auto ticket = args.read<std::uint64_t>();
        if (auto it = find(src, ticket); it != waiters_.end()) {
          const bool notified = it->notified;
          waiters_.erase(it);
          if (notified) (void)wake(1);
        }
        hub_->reply(src, call, kReplyOk);
        return;
      }
      default:
        throw wire::DecodeError("Condition: unknown operation " + std::to_string(op));
    }
  }

  void on_cancel(int src, std::uint64_t call) override {
    std::lock_guard lock(mu_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->src == src && it->call == call) {  // still parked: not notified
        waiters_.erase(it);
        hub_->reply(src, call, kReplyCancelled);
        return;
      }
    }
  }

  void on_lost(int rank) override {
    std::lock_guard lock(mu_);
    std::erase_if(waiters_, [rank](const Waiter& w) { return w.src == rank; });
  }

  void on_close() override {
    std::lock_guard lock(mu_);
    for (const auto& w : waiters_) {
      if (w.call != 0) hub_->reply(w.src, w.call, detail::kReplyGone);
    }
    waiters_.clear();
  }

 private:
  struct Waiter {
    int src;
    std::uint64_t ticket;
    bool notified;
    std::uint64_t call;  // the parked kWait, 0 until it arrives
  };
  std::list<Waiter>::iterator find(int src, std::uint64_t ticket) {
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->src == src && it->ticket == ticket) return it;
    }
    return waiters_.end();
  }
  // Marks the n oldest unwoken waiters; a parked one is answered at once, the others when
  // their kWait arrives.
  std::uint64_t wake(std::uint64_t n) {
    std::uint64_t woken = 0;
    for (auto it = waiters_.begin(); it != waiters_.end() && woken < n;) {
      if (it->notified) {
        ++it;
        continue;
      }
      ++woken;
      if (it->call != 0) {
        hub_->reply(it->src, it->call, kReplyOk);
        it = waiters_.erase(it);
      } else {
        it->notified = true;
        ++it;
      }
    }
    return woken;
  }

  detail::Hub* hub_ = nullptr;
  std::mutex mu_;
  std::uint64_t next_ticket_ = 1;
  std::list<Waiter> waiters_;
};

bool cross_rank(Scope s) { return s != Scope::Threads; }

}  // namespace

Condition::Condition(Scope scope, Lock* lock) : scope_(scope), lock_(lock) {
  if (lock_ == nullptr) {
    own_ = std::make_unique<RLock>(scope);
    lock_ = own_.get();
  } else if (cross_rank(lock_->scope()) != cross_rank(scope)) {
    throw ValueError(std::string("Condition: the lock's scope (") + to_string(lock_->scope()) +
                     ") does not match the condition's (" + to_string(scope) +
                     "): both must be Scope::Threads, or both cross-rank");
  }
  auto state = std::make_shared<ConditionHost>();
  // The host side knows its hub before it is registered: records that arrived early are
  // handed to it during registration.
  state->attach(detail::Hub::of(scope, Deadline::after(settings().startup_timeout, "Condition"), "Condition").get());
  handle_ = std::make_unique<detail::Handle>(scope, state, 0, "Condition");
}

Condition::~Condition() = default;

bool Condition::wait(const Deadline& deadline, CancellationToken token) {
  static constexpr const char* api = "Condition::wait";
  // Registered first, while this thread still holds the lock: a notify() made after the
  // release below (it needs the lock) finds this waiter.
  auto t = handle_->call(kEnqueue, {}, Deadline{}, nullptr, api);
  const auto ticket = wire::deserialize<std::uint64_t>(t.body);
  std::uint64_t saved = 0;
  try {
    saved = lock_->release_save(api);
  } catch (...) {
    try {
      (void)handle_->call(kForget, detail::pack(ticket), Deadline{}, nullptr, api);
    } catch (...) {
    }
    throw;
  }
  detail::Reply r;
  try {
    // A wake-up is given to one waiter (like a unit): no helping.
    r = handle_->call(kWait, detail::pack(ticket), deadline, &token, api, /*help=*/false);
  } catch (...) {
    lock_->acquire_restore(saved, api);
    throw;
  }
  lock_->acquire_restore(saved, api);
  return r.status == kReplyOk;
}

void Condition::notify_impl(std::size_t n, const char* api) {
  if (!lock_->held_by_this_thread()) {
    throw InvalidStateError(std::string(api) +
                            ": the lock is not held by this thread (acquire it first, as Python's "
                            "RuntimeError 'cannot notify on un-acquired lock' says)");
  }
  if (n == 0) return;
  (void)handle_->call(kNotify, detail::pack(static_cast<std::uint64_t>(n)), Deadline{}, nullptr, api);
}

void Condition::notify(std::size_t n) { notify_impl(n, "Condition::notify"); }

void Condition::notify_all() { notify_impl(std::numeric_limits<std::size_t>::max(), "Condition::notify_all"); }

}  // namespace troupe
