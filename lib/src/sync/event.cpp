#include "troupe/sync/event.hpp"

#include <string>

namespace troupe {

// The constructors, the destructor and the cross-rank paths are in lib/src/across/event.cpp
// (where detail::Handle is complete); here only the process-local paths.

void Event::set() {
  if (handle_) {
    set_across();
    return;
  }
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while (!(s & kSet)) {
    if (state_.compare_exchange_weak(s, (s + kGeneration) | kSet, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
      word_.notify_all();
      return;
    }
  }
}

void Event::clear() {
  if (handle_) {
    clear_across();
    return;
  }
  state_.fetch_and(~kSet, std::memory_order_acq_rel);
}

void Event::wait() const { (void)wait(Deadline{}); }

bool Event::wait(const Deadline& deadline, CancellationToken token) const {
  if (handle_) return wait_across(deadline, token);
  const std::uint32_t entry = state_.load(std::memory_order_acquire);
  if (entry & kSet) return true;
  // Set now, or raised (and maybe cleared again) since we arrived.
  auto raised = [&] {
    const std::uint32_t s = state_.load(std::memory_order_acquire);
    return (s & kSet) || (s >> 1) != (entry >> 1);
  };
  return detail::ready_or_timeout(word_.wait_status(raised, deadline, &token),
                                  [] { throw CancelledError("Event::wait: cancelled before the event was set"); });
}

}  // namespace troupe
