// troupe::BoundedSemaphore — Python's threading.BoundedSemaphore.
//
// Eight threads share a "connection pool" of three slots: at most three are ever inside.
// Then the classic bug a *bounded* semaphore exists to catch: releasing once too often
// throws troupe::ValueError with the numbers, instead of silently growing the pool.
#include <troupe/sync/semaphore.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  constexpr int kSlots = 3;
  constexpr int kThreads = 8;
  troupe::BoundedSemaphore pool(kSlots);
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<int> timeouts{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        // acquire(timeout) returns false instead of blocking forever (Python: acquire(timeout=5)).
        if (!pool.acquire(5s)) {
          timeouts.fetch_add(1);
          continue;
        }
        const int now = inside.fetch_add(1) + 1;
        int seen = max_inside.load();
        while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(50us);  // "use the connection"
        inside.fetch_sub(1);
        pool.release();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::printf("%d threads, %d slots: at most %d were inside at once, %d timeouts\n", kThreads, kSlots,
              max_inside.load(), timeouts.load());

  // try_acquire never blocks (Python: acquire(blocking=False)).
  troupe::BoundedSemaphore one(1);
  const bool first = one.try_acquire();
  const bool second = one.try_acquire();
  std::printf("try_acquire on a 1-slot semaphore: %s then %s\n", first ? "true" : "false", second ? "true" : "false");
  one.release();

  // Over-release: a bug, reported with the numbers.
  bool caught = false;
  try {
    pool.release();  // every slot is already free: value would be 4 > initial 3
  } catch (const troupe::ValueError& e) {
    std::printf("over-release: ValueError: %s\n", e.what());
    caught = true;
  }

  const bool ok = max_inside <= kSlots && timeouts == 0 && first && !second && caught && pool.value() == kSlots;
  std::puts(ok ? "bounded_semaphore: OK" : "bounded_semaphore: FAILED");
  return ok ? 0 : 1;
}
