#include "troupe/sync/timer.hpp"

#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "cv_wait.hpp"

namespace troupe {

// Lives on the heap so that the Timer object can move while its thread runs.
struct Timer::State {
  std::unique_ptr<detail::TimerFunction> fn;
  std::mutex mutex;
  std::condition_variable_any cv;
  bool started = false;    // start() was called
  bool running = false;    // fn has started: cancel() is too late
  bool cancelled = false;  // cancel() won
  bool finished = false;   // fn returned/threw, or cancelled
  bool error_reported = false;
  std::exception_ptr error;
  std::thread thread;

  void run(Deadline deadline) {
    std::unique_lock lock(mutex);
    (void)detail::cv_wait(cv, lock, deadline, std::stop_token{}, [this] { return cancelled; });
    if (cancelled) return;  // cancel() already marked the timer finished
    running = true;
    lock.unlock();
    std::exception_ptr caught;
    try {
      (*fn)();
    } catch (...) {
      caught = std::current_exception();
    }
    lock.lock();
    error = std::move(caught);
    finished = true;
    cv.notify_all();
  }
};

namespace {
std::chrono::duration<double> checked_interval(std::chrono::duration<double> interval) {
  if (!(interval.count() >= 0.0)) {  // also rejects NaN
    throw ValueError("Timer: interval must be >= 0, got " + std::to_string(interval.count()) + "s");
  }
  return interval;
}
}  // namespace

Timer::Timer(std::chrono::duration<double> interval, std::unique_ptr<detail::TimerFunction> fn)
    : interval_(checked_interval(interval)), state_(std::make_unique<State>()) {
  state_->fn = std::move(fn);
}

Timer::~Timer() { destroy(); }

Timer::Timer(Timer&& other) noexcept : interval_(other.interval_), state_(std::move(other.state_)) {}

Timer& Timer::operator=(Timer&& other) noexcept {
  if (this != &other) {
    destroy();
    interval_ = other.interval_;
    state_ = std::move(other.state_);
  }
  return *this;
}

void Timer::destroy() noexcept {
  if (!state_) return;
  cancel();
  if (state_->thread.joinable()) state_->thread.join();  // waits only for a running fn
  if (state_->error && !state_->error_reported) {
    // Never lose an exception silently: report it as Python's threading.excepthook would.
    try {
      std::rethrow_exception(state_->error);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "troupe::Timer: exception in timer function (never joined): %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "troupe::Timer: exception in timer function (never joined): unknown exception\n");
    }
  }
  state_.reset();
}

void Timer::start() {
  std::lock_guard lock(state_->mutex);
  if (state_->started) throw InvalidStateError("Timer::start: a timer can only be started once");
  // The countdown starts now, not when the thread gets scheduled.
  const Deadline deadline = Deadline::after(interval_, "Timer::start");
  state_->thread = std::thread([state = state_.get(), deadline] { state->run(deadline); });
  state_->started = true;
}

bool Timer::cancel() noexcept {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->running || state_->finished) return false;
    state_->cancelled = true;
    state_->finished = true;
  }
  state_->cv.notify_all();
  return true;
}

bool Timer::finished() const noexcept {
  std::lock_guard lock(state_->mutex);
  return state_->finished;
}

bool Timer::cancelled() const noexcept {
  std::lock_guard lock(state_->mutex);
  return state_->cancelled;
}

void Timer::join() { (void)join(Deadline{}); }

bool Timer::join(const Deadline& deadline, CancellationToken token) {
  std::unique_lock lock(state_->mutex);
  if (!state_->started && !state_->finished) {
    throw InvalidStateError("Timer::join: the timer was not started (it would never finish)");
  }
  switch (detail::cv_wait(state_->cv, lock, deadline, token, [this] { return state_->finished; })) {
    case detail::WaitResult::kReady:
      break;
    case detail::WaitResult::kCancelled:
      throw CancelledError("Timer::join: cancelled before the timer finished");
    case detail::WaitResult::kTimeout:
      return false;
  }
  if (state_->error) {
    state_->error_reported = true;
    std::rethrow_exception(state_->error);
  }
  return true;
}

}  // namespace troupe
