// troupe/coro: Task, spawn/run, co_await on tasks and futures, sleep, cancellation by token
// on every awaitable kind, gather / when_any / wait_for, AsyncEvent / Semaphore / Queue.
// Every wait is bounded; nothing is timed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "troupe/coro/coro.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::Task;

struct Boom : std::runtime_error {
  explicit Boom(int v) : std::runtime_error("boom " + std::to_string(v)), value(v) {}
  int value;
};

Task<int> leaf(int v) { co_return v; }
Task<int> add_one(int v) { co_return 1 + co_await leaf(v); }
Task<void> thrower(int v) {
  co_await troupe::sleep(0s);
  throw Boom(v);
}

// Lets the one worker of @p pool run everything queued before: a spawned task that is
// not waiting for anything else is then suspended (the FIFO of outside submissions).
void settle(troupe::ThreadPool& pool) {
  pool.submit([] {}).result(60s);
}

TEST(CoroTask, RunReturnsTheValueOfNestedTasks) {
  troupe::ThreadPool pool(2);
  EXPECT_EQ(troupe::run(pool, add_one(41), 60s), 42);
}

TEST(CoroTask, ExceptionsPropagateAsThemselves) {
  troupe::ThreadPool pool(2);
  auto outer = []() -> Task<int> {
    try {
      co_await thrower(7);
    } catch (const Boom& b) {
      co_return b.value;
    }
    co_return -1;
  };
  EXPECT_EQ(troupe::run(pool, outer(), 60s), 7);
  try {
    troupe::run(pool, thrower(3), 60s);
    FAIL() << "no exception";
  } catch (const Boom& b) {
    EXPECT_EQ(b.value, 3);
  }
}

TEST(CoroTask, LongChainsOfAwaitsDoNotGrowTheStack) {
  troupe::ThreadPool pool(1);
  auto chain = []() -> Task<long> {
    long sum = 0;
    for (int i = 0; i < 1'000'000; ++i) sum += co_await leaf(1);
    co_return sum;
  };
  EXPECT_EQ(troupe::run(pool, chain(), 120s), 1'000'000);
}

TEST(CoroTask, AwaitsLocalFuturesAndResumesOnItsPool) {
  troupe::ThreadPool pool(2);
  troupe::ThreadPool other(1);
  troupe::Promise<int> p;
  auto body = [](troupe::ThreadPool& mine, troupe::Future<int> f, troupe::ThreadPool& o) -> Task<int> {
    int a = co_await o.submit([] { return 20; });
    EXPECT_TRUE(mine.in_worker());
    int b = co_await f;  // completed by the test's thread
    EXPECT_TRUE(mine.in_worker());
    co_return a + b;
  };
  auto fut = troupe::spawn(pool, body(pool, p.get_future(), other));
  p.set_result(22);
  EXPECT_EQ(fut.result(60s), 42);
  auto failing = [](troupe::ThreadPool& o) -> Task<int> {
    co_return co_await o.submit([]() -> int { throw Boom(5); });
  };
  EXPECT_THROW(troupe::run(pool, failing(other), 60s), Boom);
}

TEST(CoroTask, BadInputIsRejectedNamingTheCall) {
  troupe::ThreadPool pool(1);
  Task<int> empty;
  EXPECT_THROW((void)troupe::spawn(pool, std::move(empty)), troupe::InvalidStateError);
  EXPECT_THROW((void)troupe::sleep(-1s), troupe::ValueError);
  EXPECT_THROW((void)troupe::wait_for(leaf(1), -1s), troupe::ValueError);
  EXPECT_THROW((void)troupe::when_any(std::vector<Task<int>>{}), troupe::ValueError);
  EXPECT_THROW((void)troupe::run(pool, leaf(1), -1s), troupe::ValueError);
}

// 10^5 tasks suspended in sleep at once (none can finish before all have arrived), each
// completing exactly once.
// 10^5 tasks asleep in the timer at once, each for far longer than the test: a stop request
// on their shared token, made once every task is asleep, ends every sleep, and each task
// completes exactly once. (No polling loop of short sleeps: under ThreadSanitizer 10^5 tasks
// waking every half second saturated the pool before the last ones had started.)
TEST(CoroSleep, HundredThousandSleepingTasksCompleteExactlyOnce) {
  constexpr int kTasks = 100'000;
  troupe::ThreadPool pool(2);
  troupe::CancellationSource stop;
  std::vector<std::atomic<int>> done(kTasks);
  std::atomic<int> arrived{0};
  std::atomic<int> cancelled{0};
  auto all_arrived = std::make_shared<troupe::Promise<void>>();
  auto body = [&](int i, std::shared_ptr<troupe::Promise<void>> all) -> Task<void> {
    if (arrived.fetch_add(1) + 1 == kTasks) all->set_result();
    try {
      co_await troupe::sleep(3600s);
    } catch (const troupe::CancelledError&) {
      cancelled.fetch_add(1);
    }
    done[static_cast<std::size_t>(i)].fetch_add(1);
  };
  std::vector<troupe::Future<void>> futures;
  futures.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) futures.push_back(troupe::spawn(pool, body(i, all_arrived), stop.get_token()));
  all_arrived->get_future().result(300s);
  settle(pool);  // the last task is asleep too
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(done[static_cast<std::size_t>(i)].load(), 0);
  stop.request_stop();
  for (auto& f : futures) f.result(300s);
  long total = 0;
  for (auto& d : done) {
    EXPECT_EQ(d.load(), 1);
    total += d.load();
  }
  EXPECT_EQ(total, kTasks);
  EXPECT_EQ(cancelled.load(), kTasks);
}

TEST(CoroSleep, ZeroSleepYieldsAndNegativeIsRejected) {
  troupe::ThreadPool pool(1);
  auto body = []() -> Task<int> {
    for (int i = 0; i < 1000; ++i) co_await troupe::sleep(0s);
    co_await troupe::sleep(1ms);
    co_return 1;
  };
  EXPECT_EQ(troupe::run(pool, body(), 60s), 1);
}

// --- cancellation by token reaches a task suspended on each awaitable kind --------------

template <class MakeTask>
void expect_cancelled(MakeTask make, const std::string& what) {
  troupe::ThreadPool pool(1);
  troupe::CancellationSource source;
  std::atomic<bool> saw{false};
  auto fut = troupe::spawn(pool, make(saw), source.get_token());
  settle(pool);
  EXPECT_FALSE(fut.done()) << what;
  source.request_stop();
  try {
    fut.result(60s);
    ADD_FAILURE() << what << ": no exception";
  } catch (const troupe::CancelledError& e) {
    EXPECT_NE(std::string(e.what()).find("cancelled by token"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(saw.load()) << what;
}

TEST(CoroCancel, ReachesATaskSuspendedOnAFuture) {
  troupe::Promise<int> never;
  expect_cancelled(
      [&](std::atomic<bool>& saw) -> Task<void> {
        try {
          co_await never.get_future();
        } catch (const troupe::CancelledError& e) {
          saw = std::string(e.what()).find("co_await Future") != std::string::npos;
          throw;
        }
      },
      "future");
}

TEST(CoroCancel, ReachesATaskSuspendedInSleep) {
  expect_cancelled(
      [](std::atomic<bool>& saw) -> Task<void> {
        try {
          co_await troupe::sleep(1h);
        } catch (const troupe::CancelledError& e) {
          saw = std::string(e.what()).find("troupe::sleep") != std::string::npos;
          throw;
        }
      },
      "sleep");
}

TEST(CoroCancel, ReachesATaskSuspendedOnATask) {
  expect_cancelled(
      [](std::atomic<bool>& saw) -> Task<void> {
        auto child = []() -> Task<int> {
          co_await troupe::sleep(1h);
          co_return 1;
        };
        try {
          (void)co_await child();
        } catch (const troupe::CancelledError&) {
          saw = true;
          throw;
        }
      },
      "task");
}

TEST(CoroCancel, ReachesATaskSuspendedOnThePrimitives) {
  troupe::AsyncEvent ev;
  expect_cancelled(
      [&](std::atomic<bool>& saw) -> Task<void> {
        try {
          co_await ev.wait();
        } catch (const troupe::CancelledError& e) {
          saw = std::string(e.what()).find("AsyncEvent::wait") != std::string::npos;
          throw;
        }
      },
      "event");
  troupe::AsyncSemaphore sem(0);
  expect_cancelled(
      [&](std::atomic<bool>& saw) -> Task<void> {
        try {
          co_await sem.acquire();
        } catch (const troupe::CancelledError& e) {
          saw = std::string(e.what()).find("AsyncSemaphore::acquire") != std::string::npos;
          throw;
        }
      },
      "semaphore");
  EXPECT_EQ(sem.value(), 0);
  troupe::AsyncQueue<int> q(1);
  expect_cancelled(
      [&](std::atomic<bool>& saw) -> Task<void> {
        try {
          (void)co_await q.get();
        } catch (const troupe::CancelledError& e) {
          saw = std::string(e.what()).find("AsyncQueue::get") != std::string::npos;
          throw;
        }
      },
      "queue get");
  ASSERT_TRUE(q.try_put(1));
  expect_cancelled(
      [&](std::atomic<bool>& saw) -> Task<void> {
        try {
          co_await q.put(2);
        } catch (const troupe::CancelledError& e) {
          saw = std::string(e.what()).find("AsyncQueue::put") != std::string::npos;
          throw;
        }
      },
      "queue put");
  EXPECT_EQ(q.size(), 1u);  // the cancelled put enqueued nothing
  EXPECT_EQ(q.try_get(), std::optional<int>(1));
  EXPECT_EQ(q.try_get(), std::nullopt);
}

TEST(CoroCancel, ReachesEveryChildOfAGatherAndAWhenAny) {
  std::atomic<int> children{0};
  auto sleeper = [&children]() -> Task<int> {
    try {
      co_await troupe::sleep(1h);
    } catch (const troupe::CancelledError&) {
      children.fetch_add(1);
      throw;
    }
    co_return 0;
  };
  expect_cancelled(
      [&](std::atomic<bool>& saw) -> Task<void> {
        std::vector<Task<int>> ts;
        for (int i = 0; i < 5; ++i) ts.push_back(sleeper());
        try {
          (void)co_await troupe::gather(std::move(ts));
        } catch (const troupe::CancelledError&) {
          saw = true;
          throw;
        }
      },
      "gather");
  EXPECT_EQ(children.load(), 5);  // every child was awaited before gather threw
  expect_cancelled(
      [&](std::atomic<bool>& saw) -> Task<void> {
        std::vector<Task<int>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(sleeper());
        try {
          (void)co_await troupe::when_any(std::move(ts));
        } catch (const troupe::CancelledError&) {
          saw = true;
          throw;
        }
      },
      "when_any");
  EXPECT_EQ(children.load(), 8);
}

TEST(CoroCancel, ThisTokenSeesTheStop) {
  troupe::ThreadPool pool(1);
  troupe::CancellationSource source;
  source.request_stop();
  auto body = []() -> Task<bool> { co_return (co_await troupe::this_token()).stop_requested(); };
  EXPECT_TRUE(troupe::spawn(pool, body(), source.get_token()).result(60s));
}

// --- combinators --------------------------------------------------------------------------

TEST(CoroGather, ResultsComeInOrder) {
  troupe::ThreadPool pool(2);
  auto item = [](int i) -> Task<int> {
    co_await troupe::sleep(std::chrono::milliseconds(20 - i));  // later ones finish first
    co_return i* i;
  };
  auto body = [&]() -> Task<std::vector<int>> {
    std::vector<Task<int>> ts;
    for (int i = 0; i < 20; ++i) ts.push_back(item(i));
    co_return co_await troupe::gather(std::move(ts));
  };
  auto v = troupe::run(pool, body(), 60s);
  ASSERT_EQ(v.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(v[static_cast<std::size_t>(i)], i * i);
  auto nothing = []() -> Task<void> { co_await troupe::sleep(1ms); };
  auto mixed = [&]() -> Task<int> {
    auto [a, b, c] = co_await troupe::gather(leaf(1), nothing(), add_one(2));
    (void)b;  // std::monostate
    co_return a + c;
  };
  EXPECT_EQ(troupe::run(pool, mixed(), 60s), 4);
}

TEST(CoroGather, TheFirstExceptionPropagatesAndTheRestAreCancelledAndAwaited) {
  troupe::ThreadPool pool(2);
  std::atomic<int> cancelled{0};
  auto slow = [&cancelled]() -> Task<int> {
    try {
      co_await troupe::sleep(1h);
    } catch (const troupe::CancelledError&) {
      cancelled.fetch_add(1);
      throw;
    }
    co_return 0;
  };
  auto failing = [](int v) -> Task<int> {
    co_await troupe::sleep(1ms);
    throw Boom(v);
  };
  auto body = [&]() -> Task<int> {
    std::vector<Task<int>> ts;
    for (int i = 0; i < 10; ++i) ts.push_back(i == 6 ? failing(6) : slow());
    try {
      (void)co_await troupe::gather(std::move(ts));
    } catch (const Boom& b) {
      co_return b.value;
    }
    co_return -1;
  };
  EXPECT_EQ(troupe::run(pool, body(), 60s), 6);
  EXPECT_EQ(cancelled.load(), 9);  // all awaited before gather threw
}

TEST(CoroWhenAny, TheFirstToFinishWinsAndTheOthersAreCancelled) {
  troupe::ThreadPool pool(2);
  std::atomic<int> cancelled{0};
  auto item = [&cancelled](int i) -> Task<int> {
    try {
      if (i != 3) co_await troupe::sleep(1h);
    } catch (const troupe::CancelledError&) {
      cancelled.fetch_add(1);
      throw;
    }
    co_return i * 10;
  };
  auto body = [&]() -> Task<troupe::AnyResult<int>> {
    std::vector<Task<int>> ts;
    for (int i = 0; i < 6; ++i) ts.push_back(item(i));
    co_return co_await troupe::when_any(std::move(ts));
  };
  auto r = troupe::run(pool, body(), 60s);
  EXPECT_EQ(r.index, 3u);
  EXPECT_EQ(r.value, 30);
  EXPECT_EQ(cancelled.load(), 5);
}

TEST(CoroWaitFor, TimeoutCancelsTheInnerTask) {
  troupe::ThreadPool pool(2);
  std::atomic<bool> inner_cancelled{false};
  auto inner = [&inner_cancelled]() -> Task<int> {
    try {
      co_await troupe::sleep(1h);
    } catch (const troupe::CancelledError&) {
      inner_cancelled = true;
      throw;
    }
    co_return 1;
  };
  auto body = [&]() -> Task<std::string> {
    try {
      (void)co_await troupe::wait_for(inner(), 20ms);
    } catch (const troupe::TimeoutError& e) {
      co_return std::string(e.what());
    }
    co_return "no timeout";
  };
  auto what = troupe::run(pool, body(), 60s);
  EXPECT_NE(what.find("troupe::wait_for"), std::string::npos) << what;
  EXPECT_TRUE(inner_cancelled.load());  // seen before wait_for threw: the inner task was awaited
  auto fast = [&]() -> Task<int> { co_return co_await troupe::wait_for(add_one(1), 1h); };
  EXPECT_EQ(troupe::run(pool, fast(), 60s), 2);
}

TEST(CoroRun, TimeoutCancelsTheTask) {
  troupe::ThreadPool pool(1);
  troupe::Promise<void> saw;
  // The task holds its own handle on the promise: the test's may be gone while it sets it.
  auto body = [](troupe::Promise<void> p) -> Task<void> {
    try {
      co_await troupe::sleep(1h);
    } catch (const troupe::CancelledError&) {
      p.set_result();
      throw;
    }
  };
  EXPECT_THROW(troupe::run(pool, body(saw), 10ms), troupe::TimeoutError);
  saw.get_future().result(60s);  // the task saw the cancellation
}

// --- primitives ------------------------------------------------------------------------------

TEST(CoroPrimitives, EventWakesEveryWaiter) {
  troupe::ThreadPool pool(2);
  troupe::AsyncEvent ev;
  std::vector<troupe::Future<int>> fs;
  for (int i = 0; i < 100; ++i) {
    fs.push_back(troupe::spawn(pool, [](troupe::AsyncEvent& e, int v) -> Task<int> {
      co_await e.wait();
      co_return v;
    }(ev, i)));
  }
  EXPECT_FALSE(ev.is_set());
  ev.set();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(60s), i);
}

TEST(CoroPrimitives, SemaphoreBoundsConcurrency) {
  troupe::ThreadPool pool(2);
  troupe::AsyncSemaphore sem(3);
  std::atomic<int> inside{0}, peak{0};
  auto job = [&]() -> Task<void> {
    co_await sem.acquire();
    int now = inside.fetch_add(1) + 1;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    co_await troupe::sleep(1ms);
    inside.fetch_sub(1);
    sem.release();
  };
  auto body = [&]() -> Task<void> {
    std::vector<Task<void>> ts;
    for (int i = 0; i < 50; ++i) ts.push_back(job());
    (void)co_await troupe::gather(std::move(ts));
  };
  troupe::run(pool, body(), 60s);
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 1);
  EXPECT_EQ(sem.value(), 3);
}

TEST(CoroPrimitives, QueueProducerConsumerLosesNothing) {
  troupe::ThreadPool pool(2);
  troupe::AsyncQueue<int> q(4);
  constexpr int kItems = 10'000;
  auto producer = [&q](int base) -> Task<void> {
    for (int i = 0; i < kItems; ++i) co_await q.put(base + i);
  };
  auto consumer = [&q]() -> Task<long> {
    long sum = 0;
    for (int i = 0; i < kItems; ++i) sum += co_await q.get();
    co_return sum;
  };
  auto body = [&]() -> Task<long> {
    auto [a, b, c, d] = co_await troupe::gather(producer(0), producer(kItems), consumer(), consumer());
    (void)a;
    (void)b;
    co_return c + d;
  };
  const long n = 2L * kItems;
  EXPECT_EQ(troupe::run(pool, body(), 120s), n * (n - 1) / 2);
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
