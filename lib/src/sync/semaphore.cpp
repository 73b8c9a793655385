#include "troupe/sync/semaphore.hpp"

#include <limits>
#include <string>

#include "cv_wait.hpp"

namespace troupe {

namespace {
const char* type_name(bool bounded) { return bounded ? "BoundedSemaphore" : "Semaphore"; }

std::ptrdiff_t checked_initial(std::ptrdiff_t value, bool bounded) {
  if (value < 0) {
    throw ValueError(std::string(type_name(bounded)) + ": initial value must be >= 0, got " + std::to_string(value));
  }
  return value;
}
}  // namespace

Semaphore::Semaphore(std::ptrdiff_t value) : Semaphore(value, false) {}

Semaphore::Semaphore(std::ptrdiff_t value, bool bounded)
    : value_(checked_initial(value, bounded)), initial_(value), bounded_(bounded) {}

void Semaphore::acquire() { (void)acquire(Deadline{}); }

bool Semaphore::acquire(const Deadline& deadline, CancellationToken token) {
  std::unique_lock lock(mutex_);
  switch (detail::cv_wait(cv_, lock, deadline, token, [this] { return value_ > 0; })) {
    case detail::WaitResult::kReady:
      --value_;
      return true;
    case detail::WaitResult::kCancelled:
      throw CancelledError(std::string(api_acquire()) + ": cancelled while waiting for a unit");
    case detail::WaitResult::kTimeout:
      break;
  }
  return false;
}

bool Semaphore::try_acquire() noexcept {
  std::lock_guard lock(mutex_);
  if (value_ == 0) return false;
  --value_;
  return true;
}

void Semaphore::release(std::ptrdiff_t n) {
  // Messages are built only on error: release() is on the hot path.
  auto api = [this] { return std::string(type_name(bounded_)) + "::release"; };
  if (n < 1) throw ValueError(api() + ": n must be >= 1, got " + std::to_string(n));
  {
    std::lock_guard lock(mutex_);
    const bool overflow = value_ > std::numeric_limits<std::ptrdiff_t>::max() - n;
    if (bounded_ && (overflow || value_ + n > initial_)) {
      const std::string would_be = overflow ? std::to_string(value_) + " + " + std::to_string(n)
                                            : std::to_string(value_ + n);
      throw ValueError(api() + ": released too many times (value would be " + would_be + " > initial " +
                       std::to_string(initial_) + ")");
    }
    if (overflow) {
      throw ValueError(api() + ": value would overflow (" + std::to_string(value_) + " + " + std::to_string(n) + ")");
    }
    value_ += n;
  }
  // Each woken waiter takes one unit under the lock; an extra wake-up only re-checks.
  if (n == 1) {
    cv_.notify_one();
  } else {
    cv_.notify_all();
  }
}

std::ptrdiff_t Semaphore::value() const noexcept {
  std::lock_guard lock(mutex_);
  return value_;
}

}  // namespace troupe
