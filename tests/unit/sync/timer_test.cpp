#include "troupe/sync/timer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "sync_test_util.hpp"
#include "troupe/sync/event.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::test::run_threads;

TEST(Timer, FiresOnceAfterInterval) {
  std::atomic<int> calls{0};
  troupe::Event fired;
  troupe::Timer t(20ms, [&] {
    calls.fetch_add(1);
    fired.set();
  });
  EXPECT_FALSE(t.finished());
  const auto start = std::chrono::steady_clock::now();
  t.start();
  ASSERT_TRUE(fired.wait(30s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  ASSERT_TRUE(t.join(30s));
  EXPECT_TRUE(t.finished());
  EXPECT_FALSE(t.cancelled());
  EXPECT_FALSE(t.cancel());  // after it ran: a no-op
  EXPECT_FALSE(t.cancelled());
  EXPECT_EQ(calls.load(), 1);
}

TEST(Timer, CancelBeforeFirePreventsIt) {
  std::atomic<int> calls{0};
  troupe::Timer t(1h, [&] { calls.fetch_add(1); });
  t.start();
  EXPECT_TRUE(t.cancel());
  EXPECT_FALSE(t.cancel());  // second cancel: no-op
  ASSERT_TRUE(t.join(30s));  // finishes at once, not after an hour
  EXPECT_TRUE(t.finished());
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(calls.load(), 0);
}

TEST(Timer, CancelBeforeStart) {
  std::atomic<int> calls{0};
  troupe::Timer t(0s, [&] { calls.fetch_add(1); });
  EXPECT_TRUE(t.cancel());
  EXPECT_TRUE(t.join(0s));  // cancelled counts as finished, even unstarted
  t.start();                // allowed (as Python); does nothing
  EXPECT_TRUE(t.join(30s));
  EXPECT_EQ(calls.load(), 0);
}

TEST(Timer, DestructorDoesNotWaitForInterval) {
  std::atomic<int> calls{0};
  const auto start = std::chrono::steady_clock::now();
  {
    troupe::Timer t(1h, [&] { calls.fetch_add(1); });
    t.start();
  }
  {
    troupe::Timer never_started(1h, [&] { calls.fetch_add(1); });
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(calls.load(), 0);
}

TEST(Timer, DestructorWaitsForRunningFunction) {
  troupe::Event entered;
  std::atomic<bool> done{false};
  {
    troupe::Timer t(0s, [&] {
      entered.set();
      std::this_thread::sleep_for(20ms);
      done = true;
    });
    t.start();
    ASSERT_TRUE(entered.wait(30s));
    EXPECT_FALSE(t.cancel());  // too late: it is running
  }
  EXPECT_TRUE(done.load());  // the destructor joined
}

TEST(Timer, PassesArguments) {
  std::atomic<int> sum{0};
  troupe::Timer t(
      0ms, [&](int a, const std::string& b) { sum = a + static_cast<int>(b.size()); }, 40, std::string("ab"));
  t.start();
  ASSERT_TRUE(t.join(30s));
  EXPECT_EQ(sum.load(), 42);
}

TEST(Timer, AcceptsMoveOnlyCallable) {
  auto value = std::make_unique<int>(7);
  std::atomic<int> seen{0};
  troupe::Timer t(0ms, [v = std::move(value), &seen] { seen = *v; });
  t.start();
  ASSERT_TRUE(t.join(30s));
  EXPECT_EQ(seen.load(), 7);
}

TEST(Timer, JoinRethrowsFunctionException) {
  troupe::Timer t(0ms, [] { throw std::runtime_error("timer failed"); });
  t.start();
  try {
    (void)t.join(30s);
    FAIL() << "join did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "timer failed");
  }
  EXPECT_TRUE(t.finished());
}

TEST(Timer, UnjoinedExceptionIsReportedNotLost) {
  testing::internal::CaptureStderr();
  {
    troupe::Timer t(0ms, [] { throw std::runtime_error("nobody joined"); });
    t.start();
    while (!t.finished()) std::this_thread::yield();
  }
  const auto err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("nobody joined"), std::string::npos) << err;
}

TEST(Timer, InvalidUse) {
  EXPECT_THROW(troupe::Timer(-1ms, [] {}), troupe::ValueError);
  troupe::Timer t(1h, [] {});
  EXPECT_THROW(t.join(), troupe::InvalidStateError);  // never started: would never finish
  t.start();
  EXPECT_THROW(t.start(), troupe::InvalidStateError);
  EXPECT_THROW((void)t.join(-1s), troupe::ValueError);
  EXPECT_FALSE(t.join(1ms));  // times out: an hour to go
  t.cancel();
}

TEST(Timer, JoinHonoursCancellationToken) {
  troupe::Timer t(1h, [] {});
  t.start();
  std::stop_source source;
  source.request_stop();
  EXPECT_THROW((void)t.join(troupe::Deadline{}, source.get_token()), troupe::CancelledError);
}

TEST(Timer, MovedTimerKeepsRunning) {
  std::atomic<int> calls{0};
  troupe::Timer a(0ms, [&] { calls.fetch_add(1); });
  a.start();
  troupe::Timer b = std::move(a);
  ASSERT_TRUE(b.join(30s));
  EXPECT_EQ(calls.load(), 1);
}

TEST(Timer, ManyTimersEachFireExactlyOnce) {
  for (int n : troupe::test::kThreadCounts) {
    SCOPED_TRACE(n);
    std::vector<std::atomic<int>> calls(static_cast<std::size_t>(n));
    std::vector<troupe::Timer> timers;
    for (int i = 0; i < n; ++i) {
      timers.emplace_back(std::chrono::milliseconds(i),
                          [&calls, i] { calls[static_cast<std::size_t>(i)].fetch_add(1); });
    }
    for (auto& t : timers) t.start();
    for (auto& t : timers) ASSERT_TRUE(t.join(30s));
    for (auto& c : calls) EXPECT_EQ(c.load(), 1);
  }
}

TEST(Timer, CancelRacesWithFiring) {
  // Whatever the interleaving, the function runs at most once and cancel() reports
  // truthfully whether it prevented it.
  for (int i = 0; i < 200; ++i) {
    std::atomic<int> calls{0};
    troupe::Timer t(0ms, [&] { calls.fetch_add(1); });
    t.start();
    const bool prevented = t.cancel();
    ASSERT_TRUE(t.join(30s));
    EXPECT_EQ(calls.load(), prevented ? 0 : 1);
    EXPECT_EQ(t.cancelled(), prevented);
  }
}

}  // namespace
