#include "troupe/future/detail/shared_state.hpp"

#include <climits>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <typeinfo>

#include <cxxabi.h>
#include <cstdlib>
#include <memory>

#include "troupe/core/detail/futex.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/detail/help.hpp"
#include "troupe/future/future.hpp"

namespace troupe::detail {

namespace {
thread_local HelpHook* tls_help_hook = nullptr;

// How long an outside thread spins on a pending future before it sleeps in the kernel.
// A few microseconds catch the common "worker is about to finish" case without
// costing a core when it is not.
constexpr auto kExternalSpin = std::chrono::microseconds(8);
// Longest sleep of a helping worker between looks for new tasks.
constexpr auto kHelpBackoffMax = std::chrono::microseconds(500);
}  // namespace

HelpHook* current_help_hook() noexcept { return tls_help_hook; }

namespace {
struct ProgressHook {
  std::atomic<ProgressFn> fn{nullptr};
  std::atomic<void*> ctx{nullptr};
  std::atomic<int> users{0};
};
ProgressHook g_progress;
}  // namespace

void set_progress_hook(ProgressFn fn, void* ctx) noexcept {
  if (fn == nullptr) {
    g_progress.fn.store(nullptr, std::memory_order_seq_cst);
    // Whoever is inside the old hook finishes before its context may go away.
    while (g_progress.users.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    g_progress.ctx.store(nullptr, std::memory_order_seq_cst);
    return;
  }
  g_progress.ctx.store(ctx, std::memory_order_seq_cst);
  g_progress.fn.store(fn, std::memory_order_seq_cst);
}

bool has_progress_hook() noexcept { return g_progress.fn.load(std::memory_order_relaxed) != nullptr; }

bool run_progress_hook() noexcept {
  if (g_progress.fn.load(std::memory_order_relaxed) == nullptr) return false;
  g_progress.users.fetch_add(1, std::memory_order_seq_cst);
  bool did = false;
  if (ProgressFn fn = g_progress.fn.load(std::memory_order_seq_cst)) {
    try {
      did = fn(g_progress.ctx.load(std::memory_order_seq_cst));
    } catch (...) {
      did = false;  // the owner (the engine) reports its own failures
    }
  }
  g_progress.users.fetch_sub(1, std::memory_order_seq_cst);
  return did;
}
HelpHook* set_help_hook(HelpHook* hook) noexcept { return std::exchange(tls_help_hook, hook); }

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
    if (state_.compare_exchange_weak(s, s | kRunning, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
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

bool StateBase::wait(const Deadline& deadline, const std::stop_token* token) const {
  if (is_terminal()) return true;
  auto stopped = [&] { return token && token->stop_requested(); };
  // A stop request must end a kernel sleep: the callback pokes the futex.
  std::optional<std::stop_callback<std::function<void()>>> on_stop;
  if (token && token->stop_possible()) {
    on_stop.emplace(*token, std::function<void()>([this] { futex_wake(state_, INT_MAX); }));
  }
  if (stopped()) throw_cancelled("wait (cancellation token)");

  if (HelpHook* hook = current_help_hook()) {
    // A pool worker: run other tasks while the awaited one is pending (this is what
    // makes nested submit + result deadlock free), back off when there are none.
    auto backoff = std::chrono::microseconds(1);
    int idle_rounds = 0;
    while (!is_terminal()) {
      if (stopped()) throw_cancelled("wait (cancellation token)");
      if (hook->help_one() || run_progress_hook()) {
        backoff = std::chrono::microseconds(1);
        idle_rounds = 0;
        continue;
      }
      if (deadline.expired()) return is_terminal();
      if (++idle_rounds < 64) {
        cpu_relax();
        continue;
      }
      std::uint32_t s = state_.load(std::memory_order_acquire);
      if ((s & kPhaseMask) >= kFinished) break;
      if (!(s & kWaiters)) {
        if (!state_.compare_exchange_strong(s, s | kWaiters, std::memory_order_acq_rel)) continue;
        s |= kWaiters;
      }
      auto nap = Deadline::at(std::min(Clock::now() + backoff, deadline.infinite() ? Clock::time_point::max()
                                                                                   : deadline.time_point()));
      futex_wait(state_, s, nap);
      backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::microseconds>(kHelpBackoffMax));
    }
    return true;
  }

  const auto spin_until = Clock::now() + kExternalSpin;
  while (Clock::now() < spin_until) {
    if (run_progress_hook()) continue;
    for (int i = 0; i < 32; ++i) {
      if (is_terminal()) return true;
      cpu_relax();
    }
  }
  // With a progress hook (an executor's engine), keep polling between short naps: the
  // reply is taken off the wire by this thread, no wake-up of another one on the way.
  auto nap = std::chrono::microseconds(2);
  while (has_progress_hook()) {
    std::uint32_t s = state_.load(std::memory_order_acquire);
    if ((s & kPhaseMask) >= kFinished) return true;
    if (stopped()) throw_cancelled("wait (cancellation token)");
    if (run_progress_hook()) {
      nap = std::chrono::microseconds(2);
      continue;
    }
    if (deadline.expired()) return is_terminal();
    if (!(s & kWaiters)) {
      if (!state_.compare_exchange_strong(s, s | kWaiters, std::memory_order_acq_rel)) continue;
      s |= kWaiters;
    }
    auto until = Clock::now() + nap;
    if (!deadline.infinite() && deadline.time_point() < until) until = deadline.time_point();
    futex_wait(state_, s, Deadline::at(until));
    nap = std::min(nap * 2, std::chrono::microseconds(500));
  }
  for (;;) {
    std::uint32_t s = state_.load(std::memory_order_acquire);
    if ((s & kPhaseMask) >= kFinished) return true;
    if (stopped()) throw_cancelled("wait (cancellation token)");
    if (!(s & kWaiters)) {
      if (!state_.compare_exchange_strong(s, s | kWaiters, std::memory_order_acq_rel)) continue;
      s |= kWaiters;
    }
    if (!futex_wait(state_, s, deadline)) return is_terminal();
  }
}

[[noreturn]] void throw_timeout(const char* api, const Deadline& d) {
  (void)d;
  throw TimeoutError(std::string(api) + ": timed out before the future was done");
}
[[noreturn]] void throw_cancelled(const char* api) {
  throw CancelledError(std::string(api) + ": cancelled");
}
[[noreturn]] void throw_no_state(const char* api) {
  throw InvalidStateError(std::string(api) + ": the future has no state (default-constructed or moved from)");
}
void report_callback_exception(const char* where) noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status),
                                                std::free);
    std::fprintf(stderr, "[troupe] exception escaped %s: %s: %s\n", where,
                 status == 0 && name ? name.get() : typeid(e).name(), e.what());
  } catch (...) {
    std::fprintf(stderr, "[troupe] exception of unknown type escaped %s\n", where);
  }
}

}  // namespace troupe::detail
