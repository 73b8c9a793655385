#pragma once
/// @file
/// @brief `co_await` on a call to a cross-rank object that no thread waits for
/// (troupe::AsyncCall: `T item = co_await queue.get_async();`).

#include <coroutine>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <utility>

#include "troupe/across/async_call.hpp"
#include "troupe/coro/task.hpp"

namespace troupe {

namespace detail {

/// Awaits an AsyncCall. A stop request on the task's token does not end the await by
/// itself: it gives the call up at the host (AsyncCall::cancel), and the one answer that
/// comes decides: CancelledError when the host withdrew the call, the value when it was
/// already on its way (an item is never lost).
template <class T>
class AsyncCallAwaiter {
 public:
  explicit AsyncCallAwaiter(AsyncCall<T> call) : call_(std::move(call)) {}
  bool await_ready() const { return call_.future.done(); }
  template <TroupePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    auto& pr = h.promise();
    waker_ = std::make_shared<Waker>(h, pr.pool, "co_await AsyncCall (a cross-rank object's call)");
    call_.future.add_done_callback([w = waker_]() noexcept { w->fire(Waker::kDone); });
    // Registered after the callback: a token already stopped cancels at once (the answer
    // to the cancel then resumes the task).
    if (pr.token.stop_possible() && call_.cancel) stop_.emplace(pr.token, CancelAtHost{call_.cancel});
    return waker_->arm();
  }
  T await_resume() {
    stop_.reset();
    return std::move(call_.future).result();
  }

 private:
  struct CancelAtHost {
    std::function<void()> cancel;
    void operator()() const noexcept {
      try {
        cancel();
      } catch (...) {  // cancel() does not throw; a failure leaves the call to its answer
      }
    }
  };
  AsyncCall<T> call_;
  std::shared_ptr<Waker> waker_;
  std::optional<std::stop_callback<CancelAtHost>> stop_;
};

}  // namespace detail

/// @brief `co_await queue.get_async()` (any troupe::AsyncCall): suspends the task, no thread
/// waits, until the object's host answers; returns the value or rethrows the call's error.
/// A stop request on the task's token withdraws the call at the host: the await then ends
/// with CancelledError naming the call, unless the answer was already on its way (then it
/// returns it: a cancelled get never loses an item).
template <class T>
detail::AsyncCallAwaiter<T> operator co_await(AsyncCall<T> call) {
  return detail::AsyncCallAwaiter<T>(std::move(call));
}

}  // namespace troupe
