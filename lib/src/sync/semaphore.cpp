#include "troupe/sync/semaphore.hpp"

#include <limits>
#include <string>

namespace troupe {

namespace {
const char* type_name(bool bounded) { return bounded ? "BoundedSemaphore" : "Semaphore"; }
}  // namespace

// Every constructor, the destructor and the cross-rank paths are in
// lib/src/across/semaphore.cpp (where detail::Handle, held by a unique_ptr, is complete).

void Semaphore::acquire() { (void)acquire(Deadline{}); }

bool Semaphore::acquire(bool blocking) {
  if (blocking) return acquire(Deadline{});
  return try_acquire();
}

bool Semaphore::acquire(const Deadline& deadline, CancellationToken token) {
  if (handle_) return acquire_across(true, deadline, &token);
  if (try_acquire()) return true;
  // The condition takes the unit it waits for: every true ends the wait with the unit.
  return detail::ready_or_timeout(word_.wait_status([this] { return try_acquire(); }, deadline, &token), [this] {
    throw CancelledError(std::string(api_acquire()) + ": cancelled while waiting for a unit");
  });
}

bool Semaphore::try_acquire() {
  if (handle_) return acquire_across(false, Deadline{}, nullptr);
  std::ptrdiff_t v = value_.load(std::memory_order_relaxed);
  while (v > 0) {
    if (value_.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  }
  return false;
}

void Semaphore::release(std::ptrdiff_t n) {
  // Messages are built only on error: release() is on the hot path.
  auto api = [this] { return std::string(type_name(bounded_)) + "::release"; };
  if (n < 1) throw ValueError(api() + ": n must be >= 1, got " + std::to_string(n));
  if (handle_) {
    release_across(n);
    return;
  }
  std::ptrdiff_t v = value_.load(std::memory_order_relaxed);
  for (;;) {
    const bool overflow = v > std::numeric_limits<std::ptrdiff_t>::max() - n;
    if (bounded_ && (overflow || v + n > initial_)) {
      const std::string would_be = overflow ? std::to_string(v) + " + " + std::to_string(n) : std::to_string(v + n);
      throw ValueError(api() + ": released too many times (value would be " + would_be + " > initial " +
                       std::to_string(initial_) + ")");
    }
    if (overflow) {
      throw ValueError(api() + ": value would overflow (" + std::to_string(v) + " + " + std::to_string(n) + ")");
    }
    if (value_.compare_exchange_weak(v, v + n, std::memory_order_release, std::memory_order_relaxed)) break;
  }
  // A woken waiter takes a unit or, beaten to it, sleeps again: one wake per unit suffices.
  if (n == 1) {
    word_.notify_one();
  } else {
    word_.notify_all();
  }
}

std::ptrdiff_t Semaphore::value() const {
  if (handle_) return value_across();
  return value_.load(std::memory_order_acquire);
}

}  // namespace troupe
