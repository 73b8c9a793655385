#include "troupe/sync/timer.hpp"

#include <atomic>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "troupe/core/detail/wait.hpp"

namespace troupe {

// Lives on the heap so that the Timer object can move while its thread runs.
// Flags change under `mutex`; waits read `cancelled` and `finished` without it and sleep on
// `word` (troupe's one wait loop).
struct Timer::State {
  std::unique_ptr<detail::TimerFunction> fn;
  std::mutex mutex;
  detail::WaitWord word;
  bool started = false;                // start() was called
  bool running = false;                // fn has started: cancel() is too late
  std::atomic<bool> cancelled{false};  // cancel() won
  std::atomic<bool> finished{false};   // fn returned/threw, or cancelled
  bool error_reported = false;
  std::exception_ptr error;
  std::thread thread;

  void run(Deadline deadline) {
    // The timer's own thread has nothing to help with and nothing to poll: it sleeps until
    // the deadline or a cancel(), at no CPU cost.
    detail::WaitParams sleep_only;
    sleep_only.spin = std::chrono::nanoseconds(0);
    sleep_only.help = false;
    sleep_only.poll_while_asleep = false;
    (void)word.wait_status([this] { return cancelled.load(std::memory_order_acquire); }, deadline, nullptr, sleep_only);
    std::unique_lock lock(mutex);
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
    finished.store(true, std::memory_order_release);
    lock.unlock();
    word.notify_all();
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
    state_->cancelled.store(true, std::memory_order_release);
    state_->finished.store(true, std::memory_order_release);
  }
  state_->word.notify_all();
  return true;
}

bool Timer::finished() const noexcept { return state_->finished.load(std::memory_order_acquire); }

bool Timer::cancelled() const noexcept { return state_->cancelled.load(std::memory_order_acquire); }

void Timer::join() { (void)join(Deadline{}); }

bool Timer::join(const Deadline& deadline, CancellationToken token) {
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->started && !state_->finished) {
      throw InvalidStateError("Timer::join: the timer was not started (it would never finish)");
    }
  }
  State& st = *state_;
  switch (st.word.wait_status([&st] { return st.finished.load(std::memory_order_acquire); }, deadline, &token)) {
    case detail::WaitStatus::kReady:
      break;
    case detail::WaitStatus::kCancelled:
      throw CancelledError("Timer::join: cancelled before the timer finished");
    case detail::WaitStatus::kTimeout:
      return false;
  }
  std::lock_guard lock(st.mutex);
  if (st.error) {
    st.error_reported = true;
    std::rethrow_exception(st.error);
  }
  return true;
}

}  // namespace troupe
