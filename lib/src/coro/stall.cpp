// The debug check of troupe/coro (TROUPE_CORO_STALL_MS): a coroutine step that held a pool
// worker longer than the limit is counted and reported. detail::run_step measures the step
// when it ends; this file holds the limit's lookup, the count and the report.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "troupe/core/config.hpp"
#include "troupe/coro/task.hpp"

namespace troupe {
namespace {

constexpr std::uint64_t kMaxReports = 20;  // then only counted: a stalling loop must not flood stderr
std::atomic<std::uint64_t> g_stalls{0};

}  // namespace

namespace detail {

std::chrono::nanoseconds coro_stall_limit() noexcept {
  try {
    return settings().coro_stall;
  } catch (...) {  // a malformed knob: the Runtime reports it; the check stays off
    return std::chrono::nanoseconds(0);
  }
}

void report_coro_stall(std::chrono::nanoseconds took, const char* site) noexcept {
  const std::uint64_t n = g_stalls.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n > kMaxReports) return;
  long long limit_ms = 0;
  try {
    limit_ms = static_cast<long long>(settings().coro_stall.count());
  } catch (...) {
  }
  std::fprintf(stderr,
               "[troupe] a coroutine step held a pool worker for %.1f ms (TROUPE_CORO_STALL_MS=%lld) after "
               "resuming from %s: a blocking call inside a task? (docs/coroutines.md)%s\n",
               std::chrono::duration<double, std::milli>(took).count(), limit_ms, site != nullptr ? site : "?",
               n == kMaxReports ? " Further stalls are only counted (troupe::coro_stalls())." : "");
}

}  // namespace detail

std::uint64_t coro_stalls() noexcept { return g_stalls.load(std::memory_order_relaxed); }

}  // namespace troupe
