#include "troupe/future/detail/shared_state.hpp"

#include <climits>
#include <cstdio>
#include <string>
#include <thread>
#include <typeinfo>

#include "troupe/core/detail/futex.hpp"
#include "troupe/core/detail/text.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/future.hpp"

namespace troupe::detail {

bool StateBase::lock_nonterminal() noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & kPhaseMask) >= kFinished) return false;
    if (s & kLocked) {
      cpu_relax();
      s = state_.load(std::memory_order_relaxed);
      continue;
    }
    if (state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  }
}

bool StateBase::try_start() noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & kPhaseMask) != kPending) return false;
    if (state_.compare_exchange_weak(s, s | kRunning, std::memory_order_acq_rel, std::memory_order_relaxed))
      return true;
  }
}

bool StateBase::finish(Phase terminal, bool from_pending_only) noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    const auto phase = s & kPhaseMask;
    if (phase >= kFinished || (from_pending_only && phase != kPending)) return false;
    if (s & kLocked) {
      cpu_relax();
      s = state_.load(std::memory_order_relaxed);
      continue;
    }
    // The new word drops kWaiters: whoever set it is woken below.
    if (state_.compare_exchange_weak(s, terminal, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
  }
  Callback* head = std::exchange(callbacks_, nullptr);
  callbacks_tail_ = nullptr;
  if (s & kWaiters) futex_wake(state_, INT_MAX);
  if (head) run_callbacks(head);
  return true;
}

bool StateBase::cancel() noexcept { return finish(kCancelled, /*from_pending_only=*/true); }

bool StateBase::set_error(std::exception_ptr e) noexcept {
  if (is_terminal()) return false;
  error_ = std::move(e);
  return finish(kFinished);
}

void StateBase::add_callback(std::function<void()> cb) {
  auto* node = new Callback{std::move(cb), nullptr};
  if (!lock_nonterminal()) {
    node->next = nullptr;
    run_callbacks(node);
    return;
  }
  if (callbacks_tail_) {
    callbacks_tail_->next = node;
  } else {
    callbacks_ = node;
  }
  callbacks_tail_ = node;
  unlock();
}

void StateBase::run_callbacks(Callback* head) noexcept {
  while (head) {
    Callback* next = head->next;
    try {
      head->fn();
    } catch (...) {
      report_callback_exception("Future callback");
    }
    delete head;
    head = next;
  }
}

StateBase::~StateBase() {
  while (callbacks_) delete std::exchange(callbacks_, callbacks_->next);
}

namespace {
// The future's own word is the futex word: arm() sets kWaiters so that finish() knows to
// wake; a stop request bumps the poke counter in the bits above the flags.
class StateTarget final : public WaitTarget {
 public:
  explicit StateTarget(std::atomic<std::uint32_t>& state) noexcept : state_(state) {}
  bool ready() noexcept override {
    return (state_.load(std::memory_order_acquire) & StateBase::kPhaseMask) >= StateBase::kFinished;
  }
  std::atomic<std::uint32_t>& word() noexcept override { return state_; }
  std::uint32_t arm() noexcept override {
    std::uint32_t s = state_.load(std::memory_order_acquire);
    while ((s & StateBase::kPhaseMask) < StateBase::kFinished && !(s & StateBase::kWaiters)) {
      if (state_.compare_exchange_weak(s, s | StateBase::kWaiters, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return s | StateBase::kWaiters;
      }
    }
    return s;
  }
  void poke() noexcept override {
    state_.fetch_add(StateBase::kPoke, std::memory_order_acq_rel);
    futex_wake(state_, INT_MAX);
  }

 private:
  std::atomic<std::uint32_t>& state_;
};
}  // namespace

bool StateBase::wait(const Deadline& deadline, const std::stop_token* token) const {
  if (is_terminal()) return true;
  StateTarget target(state_);
  auto on_cancel = [] { throw_cancelled("wait (cancellation token)"); };
  // A thread outside any pool, waiting without limit on a pool task, helps that pool
  // (docs/scheduling.md, "The caller helps"): only without deadline or token, because a
  // helped task cannot be interrupted; a worker keeps helping its own pool.
  if (deadline.infinite() && (token == nullptr || !token->stop_possible()) && current_help_hook() == nullptr) {
    if (const HelpTicket* ticket = help_ticket(); ticket != nullptr && ticket->gate != nullptr) {
      OutsideHelp outside(*ticket);
      WaitParams params;
      params.outside_help = &outside;
      return ready_or_timeout(wait_until(target, deadline, token, params), on_cancel);
    }
  }
  return ready_or_timeout(wait_until(target, deadline, token), on_cancel);
}

[[noreturn]] void throw_timeout(const char* api, const Deadline& d) {
  (void)d;
  throw TimeoutError(std::string(api) + ": timed out before the future was done");
}
[[noreturn]] void throw_cancelled(const char* api) { throw CancelledError(std::string(api) + ": cancelled"); }
[[noreturn]] void throw_no_state(const char* api) {
  throw InvalidStateError(std::string(api) + ": the future has no state (default-constructed or moved from)");
}
void report_callback_exception(const char* where) noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[troupe] exception escaped %s: %s: %s\n", where, demangle(typeid(e).name()).c_str(),
                 e.what());
  } catch (...) {
    std::fprintf(stderr, "[troupe] exception of unknown type escaped %s\n", where);
  }
}

}  // namespace troupe::detail
