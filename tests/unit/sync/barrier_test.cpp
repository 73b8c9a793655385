#include "troupe/sync/barrier.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "sync_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::test::eventually;
using troupe::test::run_threads;

TEST(Barrier, ZeroOrNegativePartiesThrow) {
  try {
    troupe::Barrier b(0);
    FAIL() << "Barrier(0) did not throw";
  } catch (const troupe::ValueError& e) {
    EXPECT_STREQ(e.what(), "Barrier: parties must be >= 1, got 0");
  }
  EXPECT_THROW(troupe::Barrier(-2), troupe::ValueError);
}

TEST(Barrier, NegativeTimeoutsThrow) {
  EXPECT_THROW(troupe::Barrier(2, {}, -1ms), troupe::ValueError);
  troupe::Barrier b(2);
  EXPECT_THROW((void)b.wait(-1ms), troupe::ValueError);
  EXPECT_THROW((void)b.wait(std::chrono::duration<double>(-0.1)), troupe::ValueError);
  EXPECT_FALSE(b.broken());  // a rejected argument does not touch the barrier
  EXPECT_EQ(b.n_waiting(), 0);
}

TEST(Barrier, Accessors) {
  troupe::Barrier b(3);
  EXPECT_EQ(b.parties(), 3);
  EXPECT_EQ(b.n_waiting(), 0);
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, SinglePartyPassesAndRunsAction) {
  int actions = 0;
  troupe::Barrier b(1, [&] { ++actions; });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.wait(1s), 0);
  EXPECT_EQ(actions, 5);
}

// T threads x many generations: each generation hands out every index 0..T-1 exactly once,
// runs the action exactly once, after all T arrived and before any is released.
TEST(Barrier, ManyGenerationsUniqueIndicesActionOnce) {
  for (int n : troupe::test::kThreadCounts) {
    SCOPED_TRACE(n);
    constexpr int kGenerations = 500;
    std::atomic<int> arrivals{0};
    std::atomic<int> actions{0};
    std::atomic<int> action_errors{0};
    std::vector<std::atomic<int>> seen(static_cast<std::size_t>(kGenerations * n));
    troupe::Barrier b(n, [&] {
      const int gen = actions.load();
      if (arrivals.load() != n * (gen + 1)) action_errors.fetch_add(1);
      actions.fetch_add(1);
    });
    run_threads(n, [&](int) {
      for (int gen = 0; gen < kGenerations; ++gen) {
        arrivals.fetch_add(1);
        const auto index = b.wait(30s);
        ASSERT_GE(index, 0);
        ASSERT_LT(index, n);
        seen[static_cast<std::size_t>(gen * n + index)].fetch_add(1);
        EXPECT_GE(actions.load(), gen + 1);  // the action ran before this party was released
      }
    });
    EXPECT_EQ(actions.load(), kGenerations);
    EXPECT_EQ(action_errors.load(), 0);
    for (auto& s : seen) EXPECT_EQ(s.load(), 1);
    EXPECT_FALSE(b.broken());
  }
}

// More threads than parties: arrivals beyond a full generation wait for the next one.
// Threads draw arrival tickets from a shared pool of exactly generations x parties, so
// every generation fills whichever threads happen to be fast (a fixed number of waits per
// thread could strand the last thread alone).
TEST(Barrier, MoreThreadsThanParties) {
  for (int parties : {1, 2, 3}) {
    SCOPED_TRACE(parties);
    const int threads = 2 * parties + 1;
    constexpr int kGenerations = 500;
    std::atomic<int> tickets{kGenerations * parties};
    std::atomic<int> actions{0};
    std::vector<std::atomic<int>> index_count(static_cast<std::size_t>(parties));
    troupe::Barrier b(parties, [&] { actions.fetch_add(1); });
    run_threads(threads, [&](int) {
      while (tickets.fetch_sub(1) > 0) index_count[static_cast<std::size_t>(b.wait(30s))].fetch_add(1);
    });
    EXPECT_EQ(actions.load(), kGenerations);
    for (auto& c : index_count) EXPECT_EQ(c.load(), kGenerations);
  }
}

std::string broken_message(troupe::Barrier& b, troupe::Deadline deadline) {
  try {
    (void)b.wait(deadline);
  } catch (const troupe::BrokenBarrierError& e) {
    return e.what();
  }
  return "(no BrokenBarrierError)";
}

// One party times out: it and every other party, current or later, get BrokenBarrierError
// (Python's semantics), until reset() makes the barrier usable again.
TEST(Barrier, TimeoutBreaksForAllPartiesUntilReset) {
  for (int others : {1, 2, 3, 7}) {
    SCOPED_TRACE(others);
    const int parties = others + 2;  // never fills: `others` long waiters + one short waiter
    troupe::Barrier b(parties);
    std::atomic<int> broken_errors{0};
    run_threads(others + 1, [&](int i) {
      if (i == 0) {
        // Time out only once the others are all blocked in wait().
        ASSERT_TRUE(eventually([&] { return b.n_waiting() == others; }));
        const auto msg = broken_message(b, troupe::Deadline::after(10ms, "test"));
        EXPECT_NE(msg.find("timed out"), std::string::npos) << msg;
        EXPECT_NE(msg.find("broken for all parties"), std::string::npos) << msg;
      } else {
        const auto msg = broken_message(b, troupe::Deadline::after(30s, "test"));
        EXPECT_NE(msg.find("broken (a party timed out"), std::string::npos) << msg;
        broken_errors.fetch_add(1);
      }
    });
    EXPECT_EQ(broken_errors.load(), others);
    EXPECT_TRUE(b.broken());
    EXPECT_EQ(b.n_waiting(), 0);

    // Later waits fail at once (not after their timeout) while broken.
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW((void)b.wait(30s), troupe::BrokenBarrierError);
    EXPECT_THROW((void)b.wait(), troupe::BrokenBarrierError);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);

    b.reset();
    EXPECT_FALSE(b.broken());
    std::atomic<int> passed{0};
    run_threads(parties, [&](int) {
      (void)b.wait(30s);
      passed.fetch_add(1);
    });
    EXPECT_EQ(passed.load(), parties);
  }
}

TEST(Barrier, DefaultTimeoutFromConstructorBreaks) {
  troupe::Barrier b(2, {}, 10ms);
  EXPECT_THROW((void)b.wait(), troupe::BrokenBarrierError);
  EXPECT_TRUE(b.broken());
  b.reset();
  // An explicit timeout overrides the default.
  std::atomic<int> passed{0};
  run_threads(2, [&](int i) {
    if (i == 1) {
      ASSERT_TRUE(eventually([&] { return b.n_waiting() == 1; }));
    }
    (void)b.wait(30s);
    passed.fetch_add(1);
  });
  EXPECT_EQ(passed.load(), 2);
}

TEST(Barrier, ZeroTimeoutBreaksUnlessLast) {
  troupe::Barrier one(1);
  EXPECT_EQ(one.wait(0s), 0);  // the last (only) party never waits
  troupe::Barrier two(2);
  EXPECT_THROW((void)two.wait(0s), troupe::BrokenBarrierError);
  EXPECT_TRUE(two.broken());
}

TEST(Barrier, AbortReleasesWaitersWithBrokenBarrierError) {
  for (int waiters : {1, 2, 4}) {
    SCOPED_TRACE(waiters);
    troupe::Barrier b(waiters + 1);
    std::atomic<int> broken_errors{0};
    run_threads(waiters + 1, [&](int i) {
      if (i == 0) {
        ASSERT_TRUE(eventually([&] { return b.n_waiting() == waiters; }));
        b.abort();
      } else {
        const auto msg = broken_message(b, troupe::Deadline::after(30s, "test"));
        EXPECT_NE(msg.find("abort()"), std::string::npos) << msg;
        broken_errors.fetch_add(1);
      }
    });
    EXPECT_EQ(broken_errors.load(), waiters);
    EXPECT_TRUE(b.broken());
    EXPECT_THROW((void)b.wait(1s), troupe::BrokenBarrierError);
    b.reset();
    EXPECT_FALSE(b.broken());
  }
}

TEST(Barrier, ResetWhileWaitingReleasesThemAndStaysUsable) {
  troupe::Barrier b(3);
  run_threads(3, [&](int i) {
    if (i == 0) {
      ASSERT_TRUE(eventually([&] { return b.n_waiting() == 2; }));
      b.reset();
    } else {
      const auto msg = broken_message(b, troupe::Deadline::after(30s, "test"));
      EXPECT_NE(msg.find("reset"), std::string::npos) << msg;
    }
  });
  EXPECT_FALSE(b.broken());
  std::atomic<int> sum{0};
  run_threads(3, [&](int) { sum.fetch_add(static_cast<int>(b.wait(30s))); });
  EXPECT_EQ(sum.load(), 0 + 1 + 2);
}

TEST(Barrier, ActionThrowsBreaksBarrier) {
  troupe::Barrier b(3, [] { throw std::runtime_error("action failed"); });
  std::atomic<int> action_errors{0};
  std::atomic<int> broken_errors{0};
  run_threads(3, [&](int) {
    try {
      (void)b.wait(30s);
    } catch (const troupe::BrokenBarrierError& e) {
      EXPECT_NE(std::string(e.what()).find("action threw: action failed"), std::string::npos) << e.what();
      broken_errors.fetch_add(1);
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "action failed");  // the action's own exception, in its thread
      action_errors.fetch_add(1);
    }
  });
  EXPECT_EQ(action_errors.load(), 1);
  EXPECT_EQ(broken_errors.load(), 2);
  EXPECT_TRUE(b.broken());
}

TEST(Barrier, ActionMayQueryTheBarrier) {
  std::ptrdiff_t waiting_in_action = -1;
  bool broken_in_action = true;
  troupe::Barrier* self = nullptr;
  troupe::Barrier b(2, [&] {
    waiting_in_action = self->n_waiting();
    broken_in_action = self->broken();
  });
  self = &b;
  run_threads(2, [&](int) { (void)b.wait(30s); });
  EXPECT_EQ(waiting_in_action, 2);
  EXPECT_FALSE(broken_in_action);
}

TEST(Barrier, AbortFromActionBreaksGeneration) {
  troupe::Barrier* self = nullptr;
  troupe::Barrier b(2, [&] { self->abort(); });
  self = &b;
  std::atomic<int> broken_errors{0};
  run_threads(2, [&](int) {
    try {
      (void)b.wait(30s);
    } catch (const troupe::BrokenBarrierError&) {
      broken_errors.fetch_add(1);
    }
  });
  EXPECT_EQ(broken_errors.load(), 2);
  EXPECT_TRUE(b.broken());
}

// A slow action must not let a party's timeout break a generation that has completed.
TEST(Barrier, TimeoutDuringActionDoesNotBreak) {
  // Generous enough for party 1 to arrive first even on a loaded machine.
  const auto short_deadline = troupe::Deadline::after(500ms, "test");
  troupe::Barrier b(2, [&] {
    // Keep the action running until party 0's deadline has passed (and a little longer,
    // so that it wakes up and sees the generation being released).
    (void)eventually([&] { return short_deadline.expired(); }, 30s);
    std::this_thread::sleep_for(20ms);
  });
  std::atomic<int> passed{0};
  run_threads(2, [&](int i) {
    if (i == 0) {
      EXPECT_EQ(b.wait(short_deadline), 0);
      passed.fetch_add(1);
    } else {
      ASSERT_TRUE(eventually([&] { return b.n_waiting() == 1; }));
      EXPECT_EQ(b.wait(30s), 1);
      passed.fetch_add(1);
    }
  });
  EXPECT_EQ(passed.load(), 2);
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, CancellationBreaksAndThrowsCancelledError) {
  troupe::Barrier b(2);
  std::stop_source source;
  run_threads(2, [&](int i) {
    if (i == 0) {
      ASSERT_TRUE(eventually([&] { return b.n_waiting() == 1; }));
      source.request_stop();
    } else {
      EXPECT_THROW((void)b.wait(troupe::Deadline::after(30s, "test"), source.get_token()), troupe::CancelledError);
    }
  });
  EXPECT_TRUE(b.broken());
}

}  // namespace
