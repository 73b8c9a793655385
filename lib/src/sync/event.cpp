#include "troupe/sync/event.hpp"

#include <string>

#include "cv_wait.hpp"

namespace troupe {

void Event::set() noexcept {
  {
    std::lock_guard lock(mutex_);
    flag_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

void Event::clear() noexcept {
  std::lock_guard lock(mutex_);
  flag_.store(false, std::memory_order_release);
}

void Event::wait() const { (void)wait(Deadline{}); }

bool Event::wait(const Deadline& deadline, CancellationToken token) const {
  if (is_set()) return true;  // fast path: no lock
  std::unique_lock lock(mutex_);
  switch (detail::cv_wait(cv_, lock, deadline, token, [this] { return flag_.load(std::memory_order_relaxed); })) {
    case detail::WaitResult::kReady:
      return true;
    case detail::WaitResult::kCancelled:
      throw CancelledError("Event::wait: cancelled before the event was set");
    case detail::WaitResult::kTimeout:
      break;
  }
  return false;
}

}  // namespace troupe
