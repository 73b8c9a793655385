// troupe::Semaphore / BoundedSemaphore across ranks: the counter on rank 0 with a FIFO of
// parked acquires.
#include <deque>
#include <limits>
#include <mutex>
#include <string>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/error.hpp"
#include "troupe/sync/semaphore.hpp"

namespace troupe {

namespace {

using detail::kFirstObjectStatus;
using detail::kReplyCancelled;
using detail::kReplyOk;

enum Op : std::uint32_t { kAcquire = 1, kRelease = 2, kValue = 3 };
enum Status : std::uint8_t { kBusy = kFirstObjectStatus, kTooMany, kOverflow };

// The counter, its bound and the queued acquires of every rank, on the host rank.
class SemaphoreHost final : public detail::Hosted {
 public:
  SemaphoreHost(std::ptrdiff_t value, bool bounded) : value_(value), initial_(value), bounded_(bounded) {}
  void attach(detail::Hub* hub) { hub_ = hub; }

  void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader& args) override {
    std::lock_guard lock(mu_);
    switch (op) {
      case kAcquire: {
        const bool blocking = args.read<bool>();
        if (value_ > 0 && waiters_.empty()) {  // FIFO: a free unit with requests queued is theirs
          --value_;
          hub_->reply(src, call, kReplyOk);
        } else if (!blocking) {
          hub_->reply(src, call, kBusy);
        } else {
          waiters_.park(src, call);
        }
        return;
      }
      case kRelease: {
        const auto n = static_cast<std::ptrdiff_t>(args.read<std::int64_t>());
        const bool overflow = value_ > std::numeric_limits<std::ptrdiff_t>::max() - n;
        if (bounded_ && (overflow || value_ + n > initial_)) {
          hub_->reply(src, call, kTooMany, detail::pack(std::int64_t{value_}, std::int64_t{initial_}, overflow));
          return;
        }
        if (overflow) {
          hub_->reply(src, call, kOverflow, detail::pack(std::int64_t{value_}));
          return;
        }
        value_ += n;
        while (value_ > 0 && !waiters_.empty()) {
          const auto w = waiters_.pop();
          --value_;
          hub_->reply(w.src, w.call, kReplyOk);
        }
        hub_->reply(src, call, kReplyOk);
        return;
      }
      case kValue:
        hub_->reply(src, call, kReplyOk, detail::pack(std::int64_t{value_}));
        return;
      default:
        throw wire::DecodeError("Semaphore: unknown operation " + std::to_string(op));
    }
  }

  void on_cancel(int src, std::uint64_t call) override {
    std::lock_guard lock(mu_);
    waiters_.cancel(*hub_, src, call);
  }

  void on_lost(int rank) override {
    std::lock_guard lock(mu_);
    waiters_.drop_rank(rank);
  }

  void on_close() override {
    std::lock_guard lock(mu_);
    waiters_.close(*hub_);
  }

 private:
  detail::Hub* hub_ = nullptr;
  std::mutex mu_;
  std::ptrdiff_t value_;
  const std::ptrdiff_t initial_;
  const bool bounded_;
  detail::Parked<> waiters_;
};

std::ptrdiff_t checked_initial(std::ptrdiff_t value, bool bounded) {
  if (value < 0) {
    throw ValueError(std::string(bounded ? "BoundedSemaphore" : "Semaphore") + ": initial value must be >= 0, got " +
                     std::to_string(value));
  }
  return value;
}

}  // namespace

// The process-local constructors are here too: the unique_ptr<detail::Handle> member needs
// the complete type wherever a constructor is defined.
Semaphore::Semaphore(std::ptrdiff_t value) : Semaphore(value, false) {}

Semaphore::Semaphore(std::ptrdiff_t value, bool bounded)
    : value_(checked_initial(value, bounded)), initial_(value), bounded_(bounded) {}

Semaphore::Semaphore(Scope scope, std::ptrdiff_t value) : Semaphore(scope, value, false) {}

Semaphore::Semaphore(Scope scope, std::ptrdiff_t value, bool bounded) : Semaphore(value, bounded) {
  if (scope == Scope::Threads) return;
  auto state = std::make_shared<SemaphoreHost>(value, bounded);
  // The host side knows its hub before it is registered: records that arrived early are
  // handed to it during registration.
  state->attach(detail::Hub::of(scope,
                                Deadline::after(settings().startup_timeout, bounded ? "BoundedSemaphore" : "Semaphore"),
                                bounded ? "BoundedSemaphore" : "Semaphore")
                    .get());
  handle_ = std::make_unique<detail::Handle>(scope, state, 0, bounded ? "BoundedSemaphore" : "Semaphore");
}

Semaphore::~Semaphore() = default;

Scope Semaphore::scope() const noexcept { return handle_ ? handle_->scope() : Scope::Threads; }

bool Semaphore::acquire_across(bool blocking, const Deadline& deadline, CancellationToken* token) {
  // A unit is a resource: no helping while waiting (see the class note).
  auto r =
      handle_->call(kAcquire, detail::pack(blocking), deadline, token,
                    blocking ? api_acquire() : (bounded_ ? "BoundedSemaphore::try_acquire" : "Semaphore::try_acquire"),
                    /*help=*/false);
  return r.status == kReplyOk;
}

void Semaphore::release_across(std::ptrdiff_t n) {
  const std::string api = std::string(bounded_ ? "BoundedSemaphore" : "Semaphore") + "::release";
  auto r = handle_->call(kRelease, detail::pack(std::int64_t{n}), Deadline{}, nullptr, api.c_str());
  if (r.status == kTooMany) {
    wire::Reader in(r.body);
    const auto v = in.read<std::int64_t>();
    const auto initial = in.read<std::int64_t>();
    const bool overflow = in.read<bool>();
    const std::string would_be = overflow ? std::to_string(v) + " + " + std::to_string(n) : std::to_string(v + n);
    throw ValueError(api + ": released too many times (value would be " + would_be + " > initial " +
                     std::to_string(initial) + ")");
  }
  if (r.status == kOverflow) {
    const auto v = wire::deserialize<std::int64_t>(r.body);
    throw ValueError(api + ": value would overflow (" + std::to_string(v) + " + " + std::to_string(n) + ")");
  }
}

std::ptrdiff_t Semaphore::value_across() const {
  auto r = handle_->call(kValue, {}, Deadline{}, nullptr, bounded_ ? "BoundedSemaphore::value" : "Semaphore::value");
  return static_cast<std::ptrdiff_t>(wire::deserialize<std::int64_t>(r.body));
}

}  // namespace troupe
