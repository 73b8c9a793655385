// troupe::Event across ranks: the flag on rank 0, parked waits answered by set().
#include <mutex>
#include <string>
#include <vector>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/error.hpp"
#include "troupe/sync/event.hpp"

namespace troupe {

namespace {

using detail::kReplyCancelled;
using detail::kReplyOk;

enum Op : std::uint32_t { kSet = 1, kClear = 2, kIsSet = 3, kWait = 4 };

// The flag and the parked waits of every rank, on the host rank.
class EventHost final : public detail::Hosted {
 public:
  void attach(detail::Hub* hub) { hub_ = hub; }

  void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader&) override {
    std::lock_guard lock(mu_);
    switch (op) {
      case kSet:
        if (!set_) {
          set_ = true;
          // Every wait parked now returns true, even if a clear() follows at once (Python).
          while (!waiters_.empty()) {
            const auto w = waiters_.pop();
            hub_->reply(w.src, w.call, kReplyOk);
          }
        }
        hub_->reply(src, call, kReplyOk);
        return;
      case kClear:
        set_ = false;
        hub_->reply(src, call, kReplyOk);
        return;
      case kIsSet:
        hub_->reply(src, call, kReplyOk, detail::pack(set_));
        return;
      case kWait:
        if (set_) {
          hub_->reply(src, call, kReplyOk);
        } else {
          waiters_.park(src, call);
        }
        return;
      default:
        throw wire::DecodeError("Event: unknown operation " + std::to_string(op));
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
  bool set_ = false;
  detail::Parked<> waiters_;
};

}  // namespace

Event::Event() noexcept = default;

Event::Event(Scope scope) {
  if (scope == Scope::Threads) return;
  auto state = std::make_shared<EventHost>();
  // The host side knows its hub before it is registered: records that arrived early are
  // handed to it during registration.
  state->attach(detail::Hub::of(scope, Deadline::after(settings().startup_timeout, "Event"), "Event").get());
  handle_ = std::make_unique<detail::Handle>(scope, state, 0, "Event");
}

Event::~Event() = default;

Scope Event::scope() const noexcept { return handle_ ? handle_->scope() : Scope::Threads; }

void Event::set_across() const { (void)handle_->call(kSet, {}, Deadline{}, nullptr, "Event::set"); }

void Event::clear_across() const { (void)handle_->call(kClear, {}, Deadline{}, nullptr, "Event::clear"); }

bool Event::is_set_across() const {
  auto r = handle_->call(kIsSet, {}, Deadline{}, nullptr, "Event::is_set");
  return wire::deserialize<bool>(r.body);
}

bool Event::wait_across(const Deadline& deadline, CancellationToken& token) const {
  // Every party reaches an event: a waiting pool worker helps (runs other tasks).
  auto r = handle_->call(kWait, {}, deadline, &token, "Event::wait", /*help=*/true);
  return r.status == kReplyOk;
}

}  // namespace troupe
