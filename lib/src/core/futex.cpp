#include "troupe/core/detail/futex.hpp"

#include <climits>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>
#endif

namespace troupe::detail {

bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  if (deadline.expired()) return false;
#if defined(__linux__)
  timespec ts{};
  timespec* tsp = nullptr;
  if (!deadline.infinite()) {
    // FUTEX_WAIT takes a relative timeout on CLOCK_MONOTONIC, the clock behind steady_clock.
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.remaining()).count();
    ts.tv_sec = static_cast<time_t>(left / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(left % 1'000'000'000);
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
#else
  // Portable fallback: short sleeps. Correct, slower to wake.
  if (word.load(std::memory_order_acquire) == expected) std::this_thread::sleep_for(std::chrono::microseconds(50));
#endif
  return !deadline.expired() || word.load(std::memory_order_acquire) != expected;
}

void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
#else
  (void)word;
  (void)count;
#endif
}

}  // namespace troupe::detail
