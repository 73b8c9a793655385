#include "troupe/sync/semaphore.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <stop_token>
#include <string>

#include "sync_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::test::run_threads;

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const troupe::ValueError& e) {
    return e.what();
  }
  return "(no ValueError)";
}

TEST(Semaphore, NegativeInitialValueThrows) {
  EXPECT_THROW(troupe::Semaphore(-1), troupe::ValueError);
  EXPECT_THROW(troupe::BoundedSemaphore(-3), troupe::ValueError);
  EXPECT_EQ(message_of([] { troupe::BoundedSemaphore s(-3); }), "BoundedSemaphore: initial value must be >= 0, got -3");
  EXPECT_EQ(message_of([] { troupe::Semaphore s(-1); }), "Semaphore: initial value must be >= 0, got -1");
}

TEST(Semaphore, DefaultsToOne) {
  troupe::Semaphore s;
  EXPECT_EQ(s.value(), 1);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  troupe::BoundedSemaphore b;
  EXPECT_EQ(b.initial_value(), 1);
}

TEST(Semaphore, ZeroValueAcquireTimesOut) {
  troupe::Semaphore s(0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(s.acquire(20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_FALSE(s.acquire(0s));
  EXPECT_EQ(s.value(), 0);
}

TEST(Semaphore, NegativeTimeoutThrows) {
  troupe::Semaphore s(1);
  EXPECT_THROW((void)s.acquire(-1ms), troupe::ValueError);
  EXPECT_EQ(s.value(), 1);  // nothing taken
  troupe::BoundedSemaphore b(1);
  EXPECT_NE(message_of([&] { (void)b.acquire(-1s); }).find("BoundedSemaphore::acquire"), std::string::npos);
}

TEST(Semaphore, UnboundedMayExceedInitial) {
  troupe::Semaphore s(1);
  s.release();
  s.release(3);
  EXPECT_EQ(s.value(), 5);
}

TEST(Semaphore, ReleaseNMustBePositive) {
  troupe::Semaphore s(1);
  EXPECT_EQ(message_of([&] { s.release(0); }), "Semaphore::release: n must be >= 1, got 0");
  troupe::BoundedSemaphore b(1);
  EXPECT_EQ(message_of([&] { b.release(-2); }), "BoundedSemaphore::release: n must be >= 1, got -2");
}

TEST(BoundedSemaphore, OverReleaseThrowsAndLeavesValue) {
  troupe::BoundedSemaphore s(3);
  EXPECT_EQ(message_of([&] { s.release(); }),
            "BoundedSemaphore::release: released too many times (value would be 4 > initial 3)");
  EXPECT_EQ(s.value(), 3);
  s.acquire();
  s.acquire();
  EXPECT_EQ(message_of([&] { s.release(3); }),
            "BoundedSemaphore::release: released too many times (value would be 4 > initial 3)");
  EXPECT_EQ(s.value(), 1);  // unchanged by the failed release
  s.release(2);
  EXPECT_EQ(s.value(), 3);
}

TEST(BoundedSemaphore, BoundHoldsThroughBaseReference) {
  troupe::BoundedSemaphore b(1);
  troupe::Semaphore& s = b;
  EXPECT_THROW(s.release(), troupe::ValueError);
}

TEST(Semaphore, ReleaseWakesBlockedAcquirer) {
  troupe::BoundedSemaphore s(1);
  ASSERT_TRUE(s.acquire(1s));
  std::latch ready(2);
  std::atomic<bool> got{false};
  std::jthread t([&] {
    ready.arrive_and_wait();
    got = s.acquire(30s);
  });
  ready.arrive_and_wait();
  s.release();
  t.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(s.value(), 0);
}

TEST(Semaphore, ReleaseNWakesNWaiters) {
  for (int n : troupe::test::kThreadCounts) {
    SCOPED_TRACE(n);
    troupe::Semaphore s(0);
    std::atomic<int> acquired{0};
    std::latch arrived(n + 1);
    std::jthread releaser([&] {
      arrived.arrive_and_wait();  // every acquirer is about to block (or already blocked)
      s.release(n);
    });
    run_threads(n, [&](int) {
      arrived.arrive_and_wait();
      if (s.acquire(30s)) acquired.fetch_add(1);
    });
    EXPECT_EQ(acquired.load(), n);
    EXPECT_EQ(s.value(), 0);
  }
}

TEST(BoundedSemaphore, LimitsConcurrencyExactly) {
  for (int threads : troupe::test::kThreadCounts) {
    for (int limit : {1, 2, 3}) {
      SCOPED_TRACE(testing::Message() << threads << " threads, limit " << limit);
      troupe::BoundedSemaphore s(limit);
      std::atomic<int> inside{0};
      std::atomic<int> max_inside{0};
      std::atomic<int> total{0};
      constexpr int kIterations = 2000;
      run_threads(threads, [&](int) {
        for (int i = 0; i < kIterations; ++i) {
          ASSERT_TRUE(s.acquire(30s));
          const int now = inside.fetch_add(1) + 1;
          int seen = max_inside.load();
          while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
          }
          total.fetch_add(1);
          inside.fetch_sub(1);
          s.release();
        }
      });
      EXPECT_LE(max_inside.load(), limit);
      EXPECT_EQ(total.load(), threads * kIterations);
      EXPECT_EQ(s.value(), limit);
    }
  }
}

TEST(Semaphore, TryAcquireNeverBlocks) {
  troupe::Semaphore s(2);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  s.release(2);
  EXPECT_EQ(s.value(), 2);
}

TEST(Semaphore, CancellationThrowsAndTakesNothing) {
  troupe::Semaphore s(0);
  std::stop_source source;
  std::latch started(2);
  std::jthread canceller([&] {
    started.arrive_and_wait();
    source.request_stop();
  });
  started.arrive_and_wait();
  EXPECT_THROW((void)s.acquire(troupe::Deadline::after(30s, "test"), source.get_token()), troupe::CancelledError);
  EXPECT_EQ(s.value(), 0);

  // An available unit wins over an already requested stop.
  s.release();
  EXPECT_TRUE(s.acquire(troupe::Deadline{}, source.get_token()));
}

}  // namespace
