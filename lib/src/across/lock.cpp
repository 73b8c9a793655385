#include "troupe/across/lock.hpp"

#include <deque>
#include <mutex>
#include <string>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/error.hpp"

namespace troupe {

namespace {

using detail::kFirstObjectStatus;
using detail::kReplyCancelled;
using detail::kReplyOk;

enum Op : std::uint32_t { kAcquire = 1, kRelease = 2, kLocked = 3, kOwned = 4, kReleaseSave = 5, kAcquireRestore = 6 };
enum Status : std::uint8_t { kBusy = kFirstObjectStatus, kNotOwner };

struct Owner {
  int rank = -1;
  std::uint64_t thread = 0;
  bool operator==(const Owner&) const = default;
};

std::string describe(const Owner& o) {
  return "thread " + std::to_string(o.thread) + " of rank " + std::to_string(o.rank);
}

// The lock's state on its host rank: the owner, the recursion count, the FIFO of waiters.
class LockHost final : public detail::Hosted {
 public:
  LockHost(bool recursive) : recursive_(recursive) {}
  void attach(detail::Hub* hub) { hub_ = hub; }

  void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader& args) override {
    std::lock_guard lock(mu_);
    switch (op) {
      case kAcquire: {
        const Owner me{src, args.read<std::uint64_t>()};
        const bool blocking = args.read<bool>();
        if (count_ == 0) {
          owner_ = me;
          count_ = 1;
          hub_->reply(src, call, kReplyOk);
        } else if (recursive_ && owner_ == me) {
          ++count_;
          hub_->reply(src, call, kReplyOk);
        } else if (!blocking) {
          hub_->reply(src, call, kBusy);
        } else {
          waiters_.park(src, call, Grant{me.thread, 1});
        }
        return;
      }
      case kRelease: {
        const Owner me{src, args.read<std::uint64_t>()};
        if (count_ == 0 || !(owner_ == me)) {
          hub_->reply(
              src, call, kNotOwner,
              detail::pack(count_ == 0 ? std::string("the lock is not held") : "it is held by " + describe(owner_)));
          return;
        }
        if (--count_ == 0) hand_over();
        hub_->reply(src, call, kReplyOk);
        return;
      }
      case kLocked:
        hub_->reply(src, call, kReplyOk, detail::pack(count_ != 0));
        return;
      case kOwned: {
        const Owner me{src, args.read<std::uint64_t>()};
        hub_->reply(src, call, kReplyOk, detail::pack(count_ != 0 && owner_ == me));
        return;
      }
      case kReleaseSave: {  // Condition::wait: release whatever the recursion count
        const Owner me{src, args.read<std::uint64_t>()};
        if (count_ == 0 || !(owner_ == me)) {
          hub_->reply(
              src, call, kNotOwner,
              detail::pack(count_ == 0 ? std::string("the lock is not held") : "it is held by " + describe(owner_)));
          return;
        }
        const std::uint64_t saved = count_;
        count_ = 0;
        hand_over();
        hub_->reply(src, call, kReplyOk, detail::pack(saved));
        return;
      }
      case kAcquireRestore: {  // Condition::wait: take it back with the saved count
        const Owner me{src, args.read<std::uint64_t>()};
        const auto count = args.read<std::uint64_t>();
        if (count_ == 0) {
          owner_ = me;
          count_ = count;
          hub_->reply(src, call, kReplyOk);
        } else {
          waiters_.park(src, call, Grant{me.thread, count});
        }
        return;
      }
      default:
        throw wire::DecodeError("Lock: unknown operation " + std::to_string(op));
    }
  }

  void on_cancel(int src, std::uint64_t call) override {
    std::lock_guard lock(mu_);
    waiters_.cancel(*hub_, src, call);
  }

  void on_lost(int rank) override {
    std::lock_guard lock(mu_);
    waiters_.drop_rank(rank);
    if (count_ != 0 && owner_.rank == rank) {  // a lost owner's lock goes to the next waiter
      count_ = 0;
      hand_over();
    }
  }

  void on_close() override {
    std::lock_guard lock(mu_);
    waiters_.close(*hub_);
  }

 private:
  // What a parked acquire is granted: its thread, and the recursion count it will hold (1, or
  // a Condition's saved one).
  struct Grant {
    std::uint64_t thread = 0;
    std::uint64_t count = 0;
  };
  void hand_over() {
    if (waiters_.empty()) return;
    const auto next = waiters_.pop();
    owner_ = Owner{next.src, next.extra.thread};
    count_ = next.extra.count;
    hub_->reply(next.src, next.call, kReplyOk);
  }

  const bool recursive_;
  detail::Hub* hub_ = nullptr;
  std::mutex mu_;
  Owner owner_;
  std::uint64_t count_ = 0;
  detail::Parked<Grant> waiters_;
};

}  // namespace

Lock::Lock(Scope scope, int host) : Lock(scope, host, false) {}

Lock::Lock(Scope scope, int host, bool recursive) : recursive_(recursive) {
  auto state = std::make_shared<LockHost>(recursive);
  const char* api = recursive ? "RLock" : "Lock";
  // The host side knows its hub before it is registered: records that arrived early are
  // handed to it during registration.
  state->attach(detail::Hub::of(scope, Deadline::after(settings().startup_timeout, api), api).get());
  handle_ = std::make_unique<detail::Handle>(scope, state, scope == Scope::Threads ? 0 : host, api);
}

Lock::~Lock() = default;

Scope Lock::scope() const noexcept { return handle_->scope(); }

void Lock::check_blocking(bool blocking) {
  if (!blocking) throw ValueError("Lock::acquire: cannot give a timeout for a non-blocking acquire");
}

bool Lock::acquire(bool blocking) {
  auto r = handle_->call(kAcquire, detail::pack(detail::thread_tag(), blocking), Deadline{}, nullptr, api_acquire(),
                         /*help=*/false);
  return r.status == kReplyOk;
}

bool Lock::acquire(const Deadline& deadline, CancellationToken token) {
  auto r = handle_->call(kAcquire, detail::pack(detail::thread_tag(), true), deadline, &token, api_acquire(),
                         /*help=*/false);
  return r.status == kReplyOk;
}

void Lock::release() {
  auto r = handle_->call(kRelease, detail::pack(detail::thread_tag()), Deadline{}, nullptr, api_release());
  if (r.status == kNotOwner) {
    throw InvalidStateError(std::string(api_release()) + ": not held by this thread (thread " +
                            std::to_string(detail::thread_tag()) + " of rank " + std::to_string(handle_->hub().rank()) +
                            "): " + wire::deserialize<std::string>(r.body));
  }
}

bool Lock::held_by_this_thread() const {
  auto r = handle_->call(kOwned, detail::pack(detail::thread_tag()), Deadline{}, nullptr,
                         recursive_ ? "RLock::held_by_this_thread" : "Lock::held_by_this_thread");
  return wire::deserialize<bool>(r.body);
}

std::uint64_t Lock::release_save(const char* api) {
  auto r = handle_->call(kReleaseSave, detail::pack(detail::thread_tag()), Deadline{}, nullptr, api);
  if (r.status == kNotOwner) {
    throw InvalidStateError(std::string(api) + ": the lock is not held by this thread (thread " +
                            std::to_string(detail::thread_tag()) + " of rank " + std::to_string(handle_->hub().rank()) +
                            "): " + wire::deserialize<std::string>(r.body));
  }
  return wire::deserialize<std::uint64_t>(r.body);
}

void Lock::acquire_restore(std::uint64_t count, const char* api) {
  (void)handle_->call(kAcquireRestore, detail::pack(detail::thread_tag(), count), Deadline{}, nullptr, api,
                      /*help=*/false);
}

bool Lock::locked() const {
  auto r = handle_->call(kLocked, {}, Deadline{}, nullptr, "Lock::locked");
  return wire::deserialize<bool>(r.body);
}

}  // namespace troupe
