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

namespace {

// One implementation for both flavours; @p op_wait / @p op_wake are the futex operations
// (FUTEX_*_PRIVATE for a word of this process, FUTEX_* for a word in shared memory).
bool wait_impl(std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline,
               [[maybe_unused]] int op_wait) noexcept {
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
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op_wait, expected, tsp, nullptr, 0);
#else
  // Portable fallback: short sleeps. Correct, slower to wake.
  if (word.load(std::memory_order_acquire) == expected) std::this_thread::sleep_for(std::chrono::microseconds(50));
#endif
  return !deadline.expired() || word.load(std::memory_order_acquire) != expected;
}

void wake_impl([[maybe_unused]] std::atomic<std::uint32_t>& word, [[maybe_unused]] int count,
               [[maybe_unused]] int op_wake) noexcept {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op_wake, count, nullptr, nullptr, 0);
#endif
}

#if defined(__linux__)
constexpr int kWaitPrivate = FUTEX_WAIT_PRIVATE;
constexpr int kWakePrivate = FUTEX_WAKE_PRIVATE;
constexpr int kWaitShared = FUTEX_WAIT;
constexpr int kWakeShared = FUTEX_WAKE;
#else
constexpr int kWaitPrivate = 0;
constexpr int kWakePrivate = 0;
constexpr int kWaitShared = 0;
constexpr int kWakeShared = 0;
#endif

}  // namespace

bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline) noexcept {
  return wait_impl(word, expected, deadline, kWaitPrivate);
}

void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept { wake_impl(word, count, kWakePrivate); }

bool futex_wait_shared(std::atomic<std::uint32_t>& word, std::uint32_t expected, const Deadline& deadline) noexcept {
  return wait_impl(word, expected, deadline, kWaitShared);
}

void futex_wake_shared(std::atomic<std::uint32_t>& word, int count) noexcept { wake_impl(word, count, kWakeShared); }

}  // namespace troupe::detail
