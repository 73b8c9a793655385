// Coroutines: asyncio.Queue producer / consumer, and asyncio.wait_for timing out a slow task.
//
//   q = asyncio.Queue(maxsize=8)
//   async def producer(n):  for i in range(n): await q.put(i)
//   async def consumer(n):  return sum([await q.get() for _ in range(n)])
//   await asyncio.gather(producer(1000), producer(1000), consumer(1000), consumer(1000))
//   try: await asyncio.wait_for(slow(), 0.05)
//   except TimeoutError: ...
//
// The producers suspend while the queue is full, the consumers while it is empty; no
// thread waits. docs/coroutines.md.
#include <troupe/coro/coro.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>

#include "example_check.hpp"

using namespace std::chrono_literals;

int main() {
  troupe::ThreadPool pool(2);

  // 1. Producer / consumer through a bounded queue.
  constexpr int kItems = 1000;
  troupe::AsyncQueue<int> q(8);
  auto producer = [&q](int base) -> troupe::Task<void> {
    for (int i = 0; i < kItems; ++i) co_await q.put(base + i);
  };
  auto consumer = [&q]() -> troupe::Task<long> {
    long sum = 0;
    for (int i = 0; i < kItems; ++i) sum += co_await q.get();
    co_return sum;
  };
  auto pipeline = [&]() -> troupe::Task<long> {
    auto [p1, p2, c1, c2] = co_await troupe::gather(producer(0), producer(kItems), consumer(), consumer());
    (void)p1;
    (void)p2;
    co_return c1 + c2;
  };
  const long total = troupe::run(pool, pipeline(), 60s);
  const long n = 2L * kItems;
  std::printf("2 producers, 2 consumers, queue of 8: %ld items summed to %ld\n", n, total);
  example::check(total == n * (n - 1) / 2, "every item consumed exactly once");

  // 2. wait_for: a slow task is cancelled at the timeout, and sees it.
  std::atomic<bool> slow_saw_cancel{false};
  auto slow = [&slow_saw_cancel]() -> troupe::Task<int> {
    try {
      co_await troupe::sleep(1h);
    } catch (const troupe::CancelledError& e) {
      slow_saw_cancel = true;
      std::printf("  the slow task: %s\n", e.what());
      throw;
    }
    co_return 1;
  };
  auto guarded = [&]() -> troupe::Task<bool> {
    try {
      (void)co_await troupe::wait_for(slow(), 50ms);
    } catch (const troupe::TimeoutError& e) {
      std::printf("wait_for: TimeoutError: %s\n", e.what());
      co_return true;
    }
    co_return false;
  };
  const bool timed_out = troupe::run(pool, guarded(), 60s);
  example::check(timed_out, "wait_for raised TimeoutError");
  example::check(slow_saw_cancel.load(), "the slow task was cancelled (and awaited) before wait_for raised");
  return example::failures == 0 ? 0 : 1;
}
