#pragma once
// Helpers shared by the sync tests: bounded polling for states that have no event to wait
// on (e.g. "two threads are now blocked in Barrier::wait"), and a runner that fails a test
// with a clear message, instead of hanging, if the threads it started never finish.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <thread>
#include <vector>

namespace troupe::test {

using namespace std::chrono_literals;

/// Thread counts at which the multi-threaded bodies run.
inline const std::vector<int> kThreadCounts{1, 2, 4, 8};

/// Polls pred() until it holds or `timeout` passes; returns its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return pred();
    std::this_thread::sleep_for(200us);
  }
  return true;
}

/// Runs body(i) on `n` threads and joins them. If they do not all finish within `timeout`
/// the process aborts with a message: a deadlocked thread cannot be joined or cancelled,
/// and a hung test is worse than a failed one.
inline void run_threads(int n, const std::function<void(int)>& body, std::chrono::seconds timeout = 60s,
                        const char* what = "threads") {
  std::vector<std::future<void>> done;
  done.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) done.push_back(std::async(std::launch::async, body, i));
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (auto& f : done) {
    if (f.wait_until(until) != std::future_status::ready) {
      std::fprintf(stderr, "FATAL: %s did not finish within %llds (deadlock?)\n", what,
                   static_cast<long long>(timeout.count()));
      std::fflush(stderr);
      std::abort();
    }
  }
  for (auto& f : done) f.get();  // rethrow the first failure
}

}  // namespace troupe::test
