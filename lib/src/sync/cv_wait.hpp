#pragma once
// Private to lib/src/sync: one timed, cancellable condition-variable wait shared by the
// primitives. Not installed.
#include <condition_variable>
#include <mutex>
#include <stop_token>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

enum class WaitResult { kReady, kTimeout, kCancelled };

// Blocks on `cv` (with `lock` held) until pred() holds, `deadline` passes, or `token` is
// stopped. pred() is checked first and wins over timeout and cancellation, so a wake-up
// that coincides with a timeout is never lost.
template <class Pred>
WaitResult cv_wait(std::condition_variable_any& cv, std::unique_lock<std::mutex>& lock, const Deadline& deadline,
                   const std::stop_token& token, Pred pred) {
  bool ok = false;
  if (deadline.infinite()) {
    ok = cv.wait(lock, token, pred);
  } else {
    ok = cv.wait_until(lock, token, deadline.time_point(), pred);
  }
  if (ok) return WaitResult::kReady;
  return token.stop_requested() ? WaitResult::kCancelled : WaitResult::kTimeout;
}

}  // namespace troupe::detail
