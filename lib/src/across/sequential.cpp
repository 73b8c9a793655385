// troupe::Sequential: a turn token passed from rank i to rank i+1 by a hub notice; each
// rank waits for its token with a call to its own instance (no message).
#include "troupe/across/sequential.hpp"

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

enum Op : std::uint32_t { kToken = 1, kTake = 2 };
enum Status : std::uint8_t { kPredecessorLost = kFirstObjectStatus };

// Every rank's instance: the tokens received and the parked begin() of this rank.
class SequentialHost final : public detail::Hosted {
 public:
  void attach(detail::Hub* hub) { hub_ = hub; }

  void on_call(int src, std::uint64_t call, std::uint32_t op, wire::Reader&) override {
    std::lock_guard lock(mu_);
    switch (op) {
      case kToken:  // a notice from the previous rank
        if (parked_ != 0) {
          hub_->reply(hub_->rank(), parked_, kReplyOk);
          parked_ = 0;
        } else {
          ++tokens_;
        }
        return;
      case kTake:  // from this rank's begin()
        if (tokens_ > 0) {
          --tokens_;
          hub_->reply(src, call, kReplyOk);
        } else if (lost_ >= 0) {
          hub_->reply(src, call, kPredecessorLost, detail::pack(lost_));
        } else {
          parked_ = call;
        }
        return;
      default:
        throw wire::DecodeError("Sequential: unknown operation " + std::to_string(op));
    }
  }

  void on_cancel(int, std::uint64_t call) override {
    std::lock_guard lock(mu_);
    if (parked_ == call) {
      parked_ = 0;
      hub_->reply(hub_->rank(), call, kReplyCancelled);
    }
  }

  void on_lost(int rank) override {
    std::lock_guard lock(mu_);
    if (rank >= hub_->rank()) return;
    lost_ = rank;
    if (parked_ != 0 && tokens_ == 0) {
      hub_->reply(hub_->rank(), parked_, kPredecessorLost, detail::pack(lost_));
      parked_ = 0;
    }
  }

  void on_close() override {
    std::lock_guard lock(mu_);
    if (parked_ != 0) hub_->reply(hub_->rank(), parked_, detail::kReplyGone);
    parked_ = 0;
  }

 private:
  detail::Hub* hub_ = nullptr;
  std::mutex mu_;
  std::uint64_t tokens_ = 0;
  std::uint64_t parked_ = 0;
  int lost_ = -1;
};

}  // namespace

Sequential::Sequential(Scope scope) {
  if (scope != Scope::Ranks) {
    throw ValueError(std::string("Sequential: the parties are ranks: give Scope::Ranks, got ") + to_string(scope));
  }
  auto state = std::make_shared<SequentialHost>();
  // The host side knows its hub before it is registered: records that arrived early are
  // handed to it during registration.
  state->attach(detail::Hub::of(scope, Deadline::after(settings().startup_timeout, "Sequential"), "Sequential").get());
  handle_ = std::make_unique<detail::Handle>(scope, state, 0, "Sequential");
}

Sequential::~Sequential() = default;

void Sequential::begin(const Deadline& deadline, CancellationToken token) {
  static constexpr const char* api = "Sequential::begin";
  auto& hub = handle_->hub();
  const int me = hub.rank();
  if (active_.load())
    throw InvalidStateError(std::string(api) + ": rank " + std::to_string(me) +
                            " is already in its turn (call end() first)");
  if (me == 0) {
    active_.store(true);
    return;
  }
  // A call to this rank's own instance: no message; it is answered when the token comes.
  // The turn is a resource handed to this rank: no helping while waiting.
  auto r = hub.call(me, handle_->id(), kTake, {}, deadline, &token, api, /*help=*/false);
  switch (r.status) {
    case kReplyOk:
      active_.store(true);
      return;
    case kReplyCancelled:
      throw TimeoutError(std::string(api) + ": rank " + std::to_string(me) +
                         " did not get its turn within the timeout (rank " + std::to_string(me - 1) +
                         " has not called end())");
    case kPredecessorLost:
      throw BrokenExecutor(std::string(api) + ": rank " + std::to_string(wire::deserialize<int>(r.body)) +
                           ", before rank " + std::to_string(me) + " in the order, was lost");
    default:
      throw InvalidStateError(std::string(api) + ": the Runtime of this object is closing");
  }
}

void Sequential::end() {
  auto& hub = handle_->hub();
  const int me = hub.rank();
  if (!active_.exchange(false)) {
    throw InvalidStateError("Sequential::end: rank " + std::to_string(me) + " is not in its turn (call begin() first)");
  }
  if (me + 1 < hub.size()) handle_->notice(me + 1, kToken, {});
}

}  // namespace troupe
