// Coroutines: the asyncio crawler shape — 1,000 simulated slow requests, at most 10 in
// flight (asyncio.Semaphore(10) + asyncio.gather; gevent.pool.Pool(10).map).
//
//   async def fetch(i):
//       async with sem:                # at most 10 in flight
//           await asyncio.sleep(0.005) # the "request"
//           return i * 2
//   results = await asyncio.gather(*(fetch(i) for i in range(1000)))
//
// Each request is a troupe::Task suspended in troupe::sleep (no thread waits); the pool
// has two workers however many requests wait. docs/coroutines.md.
#include <troupe/coro/coro.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <vector>

#include "example_check.hpp"

using namespace std::chrono_literals;

int main() {
  constexpr int kRequests = 1000;
  constexpr int kInFlight = 10;
  troupe::ThreadPool pool(2);
  troupe::AsyncSemaphore sem(kInFlight);
  std::atomic<int> in_flight{0};
  std::atomic<int> peak{0};

  auto fetch = [&](int i) -> troupe::Task<int> {
    co_await sem.acquire();
    const int now = in_flight.fetch_add(1) + 1;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    co_await troupe::sleep(5ms);  // the slow "request"
    in_flight.fetch_sub(1);
    sem.release();
    co_return 2 * i;
  };
  auto crawl = [&]() -> troupe::Task<std::vector<int>> {
    std::vector<troupe::Task<int>> requests;
    for (int i = 0; i < kRequests; ++i) requests.push_back(fetch(i));
    co_return co_await troupe::gather(std::move(requests));  // results in request order
  };

  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int> pages = troupe::run(pool, crawl(), 120s);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  long sum = std::accumulate(pages.begin(), pages.end(), 0L);
  std::printf("%d requests, at most %d in flight (seen: %d), %.2f s, %.0f requests/s (ideal %.0f)\n", kRequests,
              kInFlight, peak.load(), seconds, kRequests / seconds, kInFlight / 0.005);
  example::check(pages.size() == static_cast<std::size_t>(kRequests), "every request answered");
  example::check(sum == 2L * kRequests * (kRequests - 1) / 2, "the answers, in order");
  example::check(peak.load() <= kInFlight && peak.load() >= 1, "at most 10 requests in flight");
  bool ordered = true;
  for (int i = 0; i < kRequests; ++i) ordered = ordered && pages[static_cast<std::size_t>(i)] == 2 * i;
  example::check(ordered, "gather keeps the request order");
  return example::failures == 0 ? 0 : 1;
}
