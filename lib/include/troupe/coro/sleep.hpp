#pragma once
/// @file
/// @brief `co_await troupe::sleep(d)` (asyncio.sleep, gevent.sleep) and the process's one
/// timer service behind it.

#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <string>

#include "troupe/core/deadline.hpp"
#include "troupe/coro/task.hpp"

namespace troupe {

namespace detail {

/// Hands @p entry to the process's timer service: its on_timer() runs on the timer thread
/// once @p when has passed (as soon as possible if it already has). The service is one
/// thread for the whole process, started at the first call, holding a min-heap of
/// deadlines and sleeping through the one wait loop (core/detail/wait.hpp) until the
/// earliest one. An entry that is no longer wanted stays in the heap until its time (the
/// entry decides what firing means: a Waker that already fired does nothing).
/// Thread safe; never blocks beyond a short lock. @throws std::bad_alloc.
void schedule_timer(Clock::time_point when, std::shared_ptr<TimerEntry> entry);

/// Entries in the timer service's heap now (tests, diagnostics).
std::size_t pending_timers() noexcept;

/// The awaiter of troupe::sleep.
class SleepAwaiter {
 public:
  explicit SleepAwaiter(Clock::duration d) noexcept : duration_(d) {}
  bool await_ready() const noexcept { return false; }
  template <TroupePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    auto& pr = h.promise();
    if (pr.token.stop_requested()) {
      cancelled_ = true;
      return false;
    }
    if (duration_ <= Clock::duration::zero()) {  // sleep(0): yield, resume through the pool
      resume_on(pr.pool, h, "troupe::sleep(0)");
      return true;
    }
    waker_ = std::make_shared<Waker>(h, pr.pool, "troupe::sleep");
    if (pr.token.stop_possible()) stop_.emplace(pr.token, CancelWaker{waker_});
    schedule_timer(Clock::now() + duration_, waker_);
    return waker_->arm();
  }
  void await_resume() {
    stop_.reset();
    if (cancelled_ || (waker_ && waker_->reason() == Waker::kCancelled)) throw_coro_cancelled("troupe::sleep");
  }

 private:
  Clock::duration duration_;
  bool cancelled_ = false;
  std::shared_ptr<Waker> waker_;
  std::optional<WakerStopCallback> stop_;
};

}  // namespace detail

/// @brief `co_await troupe::sleep(d)`: suspends the running task for @p d (asyncio.sleep).
///
/// No thread sleeps: the process's one timer thread resumes the task on its pool once the
/// time has passed. `sleep(0s)` yields: the task goes to the back of its pool's queue. A
/// stop request on the task's token ends the sleep at once with CancelledError
/// ("troupe::sleep: cancelled by token").
/// @throws ValueError for a negative duration.
template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> d) {
  if (d < std::chrono::duration<Rep, Period>::zero()) {
    throw ValueError(std::string("troupe::sleep: duration must be >= 0, got ")
                         .append(std::to_string(std::chrono::duration<double>(d).count()))
                         .append("s"));
  }
  return detail::SleepAwaiter(std::chrono::duration_cast<Clock::duration>(d));
}

}  // namespace troupe
