// The state machine is Python's threading.Barrier (filling -> draining -> filling, with
// resetting and broken), plus two changes:
//  - the action runs with the lock released (state kReleasing), so it may query or abort
//    the barrier without deadlocking;
//  - a generation counter tells a released party that its generation completed even if
//    abort() raced with its wake-up (Python would report that party as broken).
#include "troupe/sync/barrier.hpp"

#include <exception>
#include <string>

#include "troupe/core/detail/text.hpp"

namespace troupe {

namespace {
std::ptrdiff_t checked_parties(std::ptrdiff_t parties) {
  if (parties < 1) throw ValueError("Barrier: parties must be >= 1, got " + std::to_string(parties));
  return parties;
}

}  // namespace

Barrier::Barrier(std::ptrdiff_t parties, Action action)
    : parties_(checked_parties(parties)), action_(std::move(action)) {}

void Barrier::set_default_timeout(double seconds) {
  if (!(seconds >= 0.0)) {  // also rejects NaN
    throw ValueError("Barrier: timeout must be >= 0, got " + std::to_string(seconds) + "s");
  }
  default_timeout_ = std::chrono::duration<double>(seconds);
}

std::ptrdiff_t Barrier::wait() {
  return wait(default_timeout_ ? Deadline::after(*default_timeout_, "Barrier::wait") : Deadline{});
}

std::ptrdiff_t Barrier::wait(const Deadline& deadline, CancellationToken token) {
  if (across_) return across_wait(deadline, std::move(token));
  std::unique_lock lock(mutex_);

  // Enter: while the previous generation drains (or a reset clears), new arrivals wait.
  auto open = [this] {
    const State s = state_.load(std::memory_order_acquire);
    return s == State::kFilling || s == State::kBroken;
  };
  while (!open()) {
    lock.unlock();
    const auto entered = word_.wait_status(open, deadline, &token);
    lock.lock();
    if (entered == detail::WaitStatus::kReady || open()) continue;  // re-checked under the lock
    // Giving up here leaves the other parties one short, exactly as a timeout while waiting.
    if (entered == detail::WaitStatus::kCancelled) {
      break_locked("a party's wait was cancelled");
      throw CancelledError("Barrier::wait: cancelled; the barrier is now broken for all parties");
    }
    break_locked("a party timed out");
    throw BrokenBarrierError("Barrier::wait: timed out before joining the barrier; it is now broken for all parties");
  }
  if (state_ == State::kBroken) throw_broken_locked();

  const std::ptrdiff_t index = count_++;
  struct Leave {  // runs with the lock held on every exit path
    Barrier* self;
    ~Leave() { self->leave_locked(); }
  } leave{this};

  if (index + 1 == parties_) {
    // Last to arrive: run the action, then release the generation.
    if (action_) {
      state_ = State::kReleasing;
      lock.unlock();
      try {
        action_();
      } catch (...) {
        lock.lock();
        break_locked("the barrier action threw: " + detail::describe_current_exception());
        throw;  // the action's own exception, in the thread that ran it (as Python)
      }
      lock.lock();
      if (state_ != State::kReleasing) throw_broken_locked();  // abort() or reset() during the action
    }
    generation_.fetch_add(1, std::memory_order_release);
    state_ = State::kDraining;
    word_.notify_all();
    return index;
  }

  const std::uint64_t my_generation = generation_.load(std::memory_order_relaxed);
  auto released = [this, my_generation] {
    if (generation_.load(std::memory_order_acquire) != my_generation) return true;
    const State s = state_.load(std::memory_order_acquire);
    return s == State::kBroken || s == State::kResetting;
  };
  lock.unlock();
  const auto result = word_.wait_status(released, deadline, &token);
  lock.lock();
  if (result != detail::WaitStatus::kReady && !released()) {
    if (state_ == State::kReleasing) {
      // Everyone has arrived and the action is running: the generation is complete, a late
      // timeout or cancellation must not break it.
      lock.unlock();
      (void)word_.wait_status(released, Deadline{});
      lock.lock();
    } else if (result == detail::WaitStatus::kCancelled) {
      break_locked("a party's wait was cancelled");
      throw CancelledError("Barrier::wait: cancelled; the barrier is now broken for all parties");
    } else {
      const std::string arrived = std::to_string(count_) + " of " + std::to_string(parties_);
      break_locked("a party timed out with " + arrived + " parties arrived");
      throw BrokenBarrierError("Barrier::wait: timed out with " + arrived +
                               " parties arrived; the barrier is now broken for all parties");
    }
  }
  if (generation_.load(std::memory_order_relaxed) != my_generation) return index;
  throw_broken_locked();
}

void Barrier::abort() noexcept {
  if (across_) return across_abort();
  std::lock_guard lock(mutex_);
  break_locked("abort() was called");
}

void Barrier::reset() noexcept {
  if (across_) return across_reset();
  std::lock_guard lock(mutex_);
  if (count_ > 0) {
    // Parties still inside wait(): those of an unfinished generation leave with
    // BrokenBarrierError; the barrier fills again once the last of them has left. A
    // draining generation completed and just finishes draining.
    if (state_ == State::kFilling || state_ == State::kReleasing || state_ == State::kBroken) {
      state_ = State::kResetting;
    }
  } else {
    state_ = State::kFilling;
  }
  broken_reason_.clear();
  word_.notify_all();
}

bool Barrier::broken() const noexcept {
  if (across_) return across_broken();
  std::lock_guard lock(mutex_);
  return state_ == State::kBroken;
}

std::ptrdiff_t Barrier::n_waiting() const noexcept {
  if (across_) return across_n_waiting();
  std::lock_guard lock(mutex_);
  return (state_ == State::kFilling || state_ == State::kReleasing) ? count_ : 0;
}

void Barrier::break_locked(std::string reason) {
  if (state_ != State::kBroken) {
    state_ = State::kBroken;
    broken_reason_ = std::move(reason);
  }
  word_.notify_all();
}

void Barrier::leave_locked() noexcept {
  --count_;
  if (count_ == 0 && (state_ == State::kResetting || state_ == State::kDraining)) {
    state_ = State::kFilling;
    word_.notify_all();
  }
}

void Barrier::throw_broken_locked() const {
  if (state_ == State::kResetting) {
    throw BrokenBarrierError("Barrier::wait: the barrier was reset while this party waited");
  }
  throw BrokenBarrierError("Barrier::wait: the barrier is broken (" + broken_reason_ +
                           "); call reset() to use it again");
}

}  // namespace troupe
