// futures_as_completed: handle results in the order they finish, not the order submitted.
//
// Python equivalent:
//
//   with ThreadPoolExecutor(max_workers=4) as ex:
//       futures = {ex.submit(fetch, url): url for url in URLS}
//       for f in as_completed(futures, timeout=5):
//           url = futures[f]
//           if f.exception(): print(url, "failed:", f.exception())
//           else:             print(url, len(f.result()))
//
// troupe::as_completed takes a std::vector<Future<T>> and yields each future once, as soon
// as it is done (finished or cancelled). Futures already done come first. When the
// timeout passes with futures still pending, the iteration throws troupe::TimeoutError.
#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <troupe/troupe.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;

// A stand-in for a slow I/O call: sleeps, then returns the "page size" or throws.
std::size_t fetch(const std::string& url, int millis) {
  std::this_thread::sleep_for(std::chrono::milliseconds(millis));
  if (url.find("broken") != std::string::npos) throw std::runtime_error("404 for " + url);
  return url.size() * 100;
}
}  // namespace

int main() {
  troupe::ThreadPool pool(4);

  // 1. Submit everything, then consume in completion order. -------------------------
  std::printf("1. as_completed over pool tasks\n");
  struct Job {
    std::string url;
    int millis;
  };
  const std::vector<Job> jobs = {{"https://a.example/slow", 120},
                                 {"https://b.example/fast", 5},
                                 {"https://c.example/broken", 30},
                                 {"https://d.example/medium", 60},
                                 {"https://e.example/quick", 15}};
  std::vector<troupe::Future<std::size_t>> futures;
  // Python keys a dict by the future; here Future::id() names the shared state.
  std::unordered_map<const void*, std::string> url_of;
  for (const auto& job : jobs) {
    auto f = pool.submit(fetch, job.url, job.millis);
    url_of[f.id()] = job.url;
    futures.push_back(f);
  }

  int ok = 0;
  int failed = 0;
  for (auto& f : troupe::as_completed(futures, 5s)) {
    check(f.done(), "as_completed yields only done futures");
    const std::string& url = url_of[f.id()];
    // exception() does not throw the task's error: it returns it (nullptr on success).
    if (std::exception_ptr e = f.exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& err) {
        std::printf("   %-26s failed: %s\n", url.c_str(), err.what());
      }
      ++failed;
    } else {
      std::printf("   %-26s %zu bytes\n", url.c_str(), f.result());
      check(f.result() == url.size() * 100, "result matches its input");
      ++ok;
    }
  }
  check(ok == 4 && failed == 1, "four successes and one failure");

  // 2. The order is the order of completion. -----------------------------------------
  // Promises completed one after the other by a single thread finish in a known order,
  // so as_completed must yield exactly that order.
  std::printf("2. completion order with promises\n");
  std::vector<troupe::Promise<int>> promises(4);
  std::vector<troupe::Future<int>> pending;
  for (auto& p : promises) pending.push_back(p.get_future());
  const int finish_order[] = {2, 0, 3, 1};
  auto producer = pool.submit([&] {
    for (int i : finish_order) {
      std::this_thread::sleep_for(2ms);
      promises[static_cast<std::size_t>(i)].set_result(i * 10);
    }
  });
  std::vector<int> seen;
  for (auto& f : troupe::as_completed(pending, 5s)) seen.push_back(f.result());
  producer.result();
  std::printf("   yielded:");
  for (int v : seen) std::printf(" %d", v);
  std::printf("\n");
  check(seen == std::vector<int>{20, 0, 30, 10}, "as_completed yields in completion order");

  // 3. A timeout ends the iteration with TimeoutError. -------------------------------
  std::printf("3. timeout\n");
  troupe::Promise<int> never;  // nobody sets it within the timeout
  std::vector<troupe::Future<int>> mixed = {troupe::make_ready_future(7), never.get_future()};
  int yielded = 0;
  bool timed_out = false;
  try {
    for (auto& f : troupe::as_completed(mixed, 50ms)) {
      std::printf("   got %d before the timeout\n", f.result());
      ++yielded;
    }
  } catch (const troupe::TimeoutError& e) {
    std::printf("   TimeoutError: %s\n", e.what());
    timed_out = true;
  }
  check(yielded == 1 && timed_out, "the done future is yielded, then TimeoutError");
  never.set_result(0);  // not needed for cleanup; a pending promise is fine to drop

  std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  return failures == 0 ? 0 : 1;
}
