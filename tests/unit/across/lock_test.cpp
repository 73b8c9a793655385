// Lock, RLock and Counter with Scope::Threads: the host state machine and the hub's
// call / cancel protocol in one process (what ThreadSanitizer checks): exclusion, FIFO
// hand-over, timeouts that never lose a grant, cancellation by token, ownership errors.
#include "troupe/across/lock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "troupe/across/counter.hpp"
#include "troupe/core/error.hpp"
#include "troupe/pool/thread_pool.hpp"

using namespace std::chrono_literals;

TEST(LockThreads, ExclusionIsExactUnderContentionWithTimedAcquires) {
  troupe::Lock lock;
  long counter = 0;
  std::atomic<int> inside{0};
  std::atomic<long> timeouts{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 3000;) {
        if (!lock.acquire(std::chrono::microseconds(50))) {  // many time out: each must leave the queue cleanly
          timeouts.fetch_add(1);
          continue;
        }
        EXPECT_EQ(inside.fetch_add(1), 0);
        ++counter;
        inside.fetch_sub(1);
        lock.release();
        ++i;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 6 * 3000);
  EXPECT_FALSE(lock.locked());  // no grant was lost to a timed-out waiter
}

TEST(LockThreads, StopRequestEndsAWaitWithCancelledErrorAndLeavesTheQueue) {
  troupe::Lock lock;
  ASSERT_TRUE(lock.acquire());
  std::stop_source stop;
  std::atomic<bool> started{false};
  std::thread waiter([&] {
    started = true;
    EXPECT_THROW((void)lock.acquire(troupe::Deadline{}, stop.get_token()), troupe::CancelledError);
  });
  while (!started) std::this_thread::yield();
  stop.request_stop();
  waiter.join();
  lock.release();
  EXPECT_FALSE(lock.locked());  // the cancelled waiter was not handed the lock
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

TEST(LockThreads, ReleaseFromAnotherThreadThrowsAndTheLockStaysHeld) {
  troupe::Lock lock;
  ASSERT_TRUE(lock.acquire());
  std::thread other([&] { EXPECT_THROW(lock.release(), troupe::InvalidStateError); });
  other.join();
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_THROW(lock.release(), troupe::InvalidStateError);
}

TEST(RLockThreads, CountsRecursionPerOwner) {
  troupe::RLock lock;
  ASSERT_TRUE(lock.acquire());
  ASSERT_TRUE(lock.acquire());
  std::thread other([&] { EXPECT_FALSE(lock.acquire(1ms)); });
  other.join();
  lock.release();
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(LockThreads, PoolTasksTakingTheLockFinish) {
  troupe::Lock lock;
  troupe::ThreadPool pool(troupe::PoolOptions{.threads = 2});
  long counter = 0;
  std::vector<troupe::Future<void>> fs;
  for (int i = 0; i < 200; ++i) {
    fs.push_back(pool.submit([&] {
      std::lock_guard g(lock);
      ++counter;
    }));
  }
  for (auto& f : fs) f.result(60s);
  EXPECT_EQ(counter, 200);
}

TEST(CounterThreads, EveryValueOnce) {
  troupe::Counter c(troupe::Scope::Threads, 5);
  std::vector<std::atomic<int>> seen(4 * 5000 + 5);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) seen[static_cast<std::size_t>(c.next())].fetch_add(1);
    });
  }
  for (auto& t : ts) t.join();
  for (std::size_t i = 5; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << i;
  EXPECT_EQ(c.value(), 5 + 4 * 5000);
}
