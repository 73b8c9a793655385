#include "troupe/future/detail/notifier.hpp"

#include <climits>
#include <functional>
#include <optional>
#include <string>

#include "troupe/core/detail/futex.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/detail/help.hpp"

namespace troupe::detail {

void Notifier::notify_all() noexcept {
  seq_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) != 0) futex_wake(seq_, INT_MAX);
}

bool Notifier::wait_impl(bool (*pred)(void*), void* ctx, const Deadline& deadline, const std::stop_token* token,
                         const char* api) {
  if (pred(ctx)) return true;
  auto check_stop = [&] {
    if (token && token->stop_requested()) throw CancelledError(std::string(api) + ": cancelled by token");
  };
  check_stop();
  std::optional<std::stop_callback<std::function<void()>>> on_stop;
  if (token && token->stop_possible()) {
    on_stop.emplace(*token, std::function<void()>([this] { notify_all(); }));
  }
  HelpHook* hook = current_help_hook();
  auto backoff = std::chrono::microseconds(1);
  int spins = 0;
  for (;;) {
    if (pred(ctx)) return true;
    check_stop();
    if ((hook && hook->help_one()) || run_progress_hook()) {
      backoff = std::chrono::microseconds(1);
      continue;
    }
    if (deadline.expired()) return pred(ctx);
    if (++spins < 64) {
      cpu_relax();
      continue;
    }
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t s = seq_.load(std::memory_order_seq_cst);
    if (!pred(ctx)) {
      if (hook || has_progress_hook()) {
        // A helping worker (or a thread that polls the engine) naps briefly so that it sees
        // new tasks and replies too.
        auto until = Clock::now() + backoff;
        if (!deadline.infinite() && deadline.time_point() < until) until = deadline.time_point();
        futex_wait(seq_, s, Deadline::at(until));
        backoff = std::min(backoff * 2, std::chrono::microseconds(500));
      } else {
        futex_wait(seq_, s, deadline);
      }
    }
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

}  // namespace troupe::detail
