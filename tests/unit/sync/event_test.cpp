#include "troupe/sync/event.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <stop_token>

#include "sync_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::test::run_threads;

TEST(Event, StartsCleared) {
  troupe::Event e;
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.wait(0s));
}

TEST(Event, SetClearIsSet) {
  troupe::Event e;
  e.set();
  EXPECT_TRUE(e.is_set());
  e.set();  // idempotent
  EXPECT_TRUE(e.is_set());
  EXPECT_TRUE(e.wait(0s));
  e.wait();  // returns at once
  e.clear();
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.wait(0s));
}

TEST(Event, WaitTimesOutWithFalse) {
  troupe::Event e;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(e.wait(20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_FALSE(e.is_set());
}

TEST(Event, AcceptsAnyDuration) {
  troupe::Event e;
  e.set();
  EXPECT_TRUE(e.wait(std::chrono::duration<double>(0.5)));
  EXPECT_TRUE(e.wait(1min));
  EXPECT_TRUE(e.wait(std::chrono::hours(1'000'000)));  // saturates, no overflow
}

TEST(Event, NegativeTimeoutThrowsValueError) {
  troupe::Event e;
  EXPECT_THROW((void)e.wait(-1ms), troupe::ValueError);
  e.set();  // even when set: a negative timeout is a bug
  EXPECT_THROW((void)e.wait(std::chrono::duration<double>(-0.5)), troupe::ValueError);
  try {
    (void)e.wait(-1s);
  } catch (const troupe::ValueError& err) {
    EXPECT_NE(std::string(err.what()).find("Event::wait"), std::string::npos) << err.what();
  }
}

TEST(Event, SetWakesAllWaiters) {
  for (int n : troupe::test::kThreadCounts) {
    SCOPED_TRACE(n);
    troupe::Event e;
    std::latch waiting(n + 1);
    std::atomic<int> woken{0};
    std::jthread setter([&] {
      waiting.arrive_and_wait();
      e.set();
    });
    run_threads(n, [&](int) {
      waiting.arrive_and_wait();
      if (e.wait(30s)) woken.fetch_add(1);
    });
    EXPECT_EQ(woken.load(), n);
  }
}

TEST(Event, ClearedEventBlocksAgain) {
  troupe::Event e;
  e.set();
  e.clear();
  std::atomic<bool> result{true};
  std::jthread t([&] { result = e.wait(10ms); });
  t.join();
  EXPECT_FALSE(result.load());
}

TEST(Event, PingPongAcrossThreads) {
  troupe::Event ping, pong;
  constexpr int kRounds = 1000;
  std::jthread other([&] {
    for (int i = 0; i < kRounds; ++i) {
      ASSERT_TRUE(ping.wait(30s));
      ping.clear();
      pong.set();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    ping.set();
    ASSERT_TRUE(pong.wait(30s));
    pong.clear();
  }
}

TEST(Event, CancellationThrowsCancelledError) {
  troupe::Event e;
  std::stop_source source;
  source.request_stop();
  EXPECT_THROW((void)e.wait(troupe::Deadline{}, source.get_token()), troupe::CancelledError);

  std::stop_source later;
  std::latch started(2);
  std::jthread canceller([&] {
    started.arrive_and_wait();
    later.request_stop();
  });
  started.arrive_and_wait();
  EXPECT_THROW((void)e.wait(troupe::Deadline::after(30s, "test"), later.get_token()), troupe::CancelledError);
}

TEST(Event, SetWinsOverCancellation) {
  troupe::Event e;
  e.set();
  std::stop_source source;
  source.request_stop();
  EXPECT_TRUE(e.wait(troupe::Deadline{}, source.get_token()));
}

}  // namespace
