// troupe/coro: gevent's helpers (AsyncResult, TaskGroup) and the debug check that reports a
// coroutine step holding a pool worker too long (TROUPE_CORO_STALL_MS). Every wait is
// bounded; nothing is timed (the stall test blocks a task far beyond a small limit).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/config.hpp"
#include "troupe/coro/coro.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::Task;

struct Boom : std::runtime_error {
  explicit Boom(int v) : std::runtime_error("boom " + std::to_string(v)), value(v) {}
  int value;
};

// ---- AsyncResult ----------------------------------------------------------------------

TEST(CoroAsyncResult, SetFromAThreadResumesEveryAwaitingTaskAndWaitingThread) {
  troupe::ThreadPool pool(2);
  troupe::AsyncResult<int> r;
  EXPECT_FALSE(r.ready());
  auto twice = [](troupe::AsyncResult<int> res) -> Task<int> { co_return 2 * co_await res; };
  std::vector<troupe::Future<int>> futures;
  for (int i = 0; i < 100; ++i) futures.push_back(troupe::spawn(pool, twice(r)));
  std::thread setter([r]() mutable { r.set(21); });
  EXPECT_EQ(r.get(60s), 21);  // a thread's wait
  setter.join();
  for (auto& f : futures) EXPECT_EQ(f.result(60s), 42);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_THROW(r.set(1), troupe::InvalidStateError);
}

TEST(CoroAsyncResult, AnExceptionReachesAwaitersAsItself) {
  troupe::ThreadPool pool(2);
  troupe::AsyncResult<void> r;
  auto waiter = [](troupe::AsyncResult<void> res) -> Task<int> {
    try {
      co_await res;
    } catch (const Boom& b) {
      co_return b.value;
    }
    co_return -1;
  };
  auto f = troupe::spawn(pool, waiter(r));
  r.set_exception(std::make_exception_ptr(Boom(9)));
  EXPECT_EQ(f.result(60s), 9);
  EXPECT_TRUE(r.ready());
  EXPECT_FALSE(r.successful());
  EXPECT_THROW(r.get(60s), Boom);
}

TEST(CoroAsyncResult, AThreadsGetTimesOutAndATasksAwaitIsCancellable) {
  troupe::ThreadPool pool(1);
  troupe::AsyncResult<int> never;
  EXPECT_THROW(never.get(1ms), troupe::TimeoutError);
  troupe::CancellationSource source;
  auto waiter = [](troupe::AsyncResult<int> res) -> Task<int> { co_return co_await res; };
  auto f = troupe::spawn(pool, waiter(never), source.get_token());
  pool.submit([] {}).result(60s);  // the task is suspended on the result
  source.request_stop();
  try {
    f.result(60s);
    ADD_FAILURE() << "no exception";
  } catch (const troupe::CancelledError& e) {
    EXPECT_NE(std::string(e.what()).find("co_await AsyncResult"), std::string::npos) << e.what();
  }
}

// ---- TaskGroup ------------------------------------------------------------------------

TEST(CoroTaskGroup, AtMostLimitTasksRunAndEveryOneCompletesOnce) {
  troupe::ThreadPool pool(2);
  constexpr int kTasks = 500;
  constexpr std::size_t kLimit = 7;
  troupe::TaskGroup group(pool, kLimit);
  std::atomic<int> in_flight{0}, peak{0};
  std::vector<std::atomic<int>> runs(kTasks);
  auto work = [&](int i) -> Task<int> {
    const int now = in_flight.fetch_add(1) + 1;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    co_await troupe::sleep(0s);
    runs[static_cast<std::size_t>(i)].fetch_add(1);
    in_flight.fetch_sub(1);
    co_return i;
  };
  auto feeder = [&]() -> Task<long> {
    std::vector<troupe::Future<int>> futures;
    for (int i = 0; i < kTasks; ++i) futures.push_back(co_await group.spawn(work(i)));
    co_await group.join();
    long sum = 0;
    for (auto& f : futures) {
      EXPECT_TRUE(f.done());  // join returns once every future is done
      sum += f.result();
    }
    co_return sum;
  };
  EXPECT_EQ(troupe::run(pool, feeder(), 120s), static_cast<long>(kTasks) * (kTasks - 1) / 2);
  EXPECT_LE(peak.load(), static_cast<int>(kLimit));
  for (auto& r : runs) EXPECT_EQ(r.load(), 1);
  EXPECT_EQ(group.size(), 0U);
  EXPECT_EQ(group.spawned(), static_cast<std::size_t>(kTasks));
  EXPECT_TRUE(group.wait(60s));
}

TEST(CoroTaskGroup, TrySpawnRefusesWhenFullAndAThreadWaits) {
  troupe::ThreadPool pool(1);
  troupe::TaskGroup group(pool, 3);
  troupe::AsyncEvent gate;
  auto held = [&gate]() -> Task<void> { co_await gate.wait(); };
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(group.try_spawn(held()).has_value());
  EXPECT_FALSE(group.try_spawn(held()).has_value());  // full: not started
  EXPECT_EQ(group.size(), 3U);
  EXPECT_FALSE(group.wait(1ms));  // the tasks wait for the gate
  gate.set();
  EXPECT_TRUE(group.wait(60s));
  EXPECT_EQ(group.size(), 0U);
  EXPECT_TRUE(group.try_spawn(held()).has_value());  // room again
  EXPECT_TRUE(group.wait(60s));
  EXPECT_THROW(troupe::TaskGroup(pool, 0), troupe::ValueError);
}

TEST(CoroTaskGroup, JoinRethrowsTheFirstErrorAndTheOthersRunToTheirEnd) {
  troupe::ThreadPool pool(2);
  troupe::TaskGroup group(pool, 4);
  std::atomic<int> finished{0};
  auto work = [&finished](int i) -> Task<int> {
    co_await troupe::sleep(0s);
    if (i == 5) throw Boom(i);
    finished.fetch_add(1);
    co_return i;
  };
  auto feeder = [&]() -> Task<int> {
    for (int i = 0; i < 20; ++i) (void)co_await group.spawn(work(i));
    try {
      co_await group.join();
    } catch (const Boom& b) {
      co_return b.value;
    }
    co_return -1;
  };
  EXPECT_EQ(troupe::run(pool, feeder(), 120s), 5);
  EXPECT_EQ(finished.load(), 19);  // an error does not stop the others (gevent's rule)
  EXPECT_THROW(group.wait(60s), Boom);
  ASSERT_TRUE(group.first_error());
}

TEST(CoroTaskGroup, CancelReachesEverySuspendedTaskAndJoinHasATimeoutThroughWaitFor) {
  troupe::ThreadPool pool(2);
  troupe::TaskGroup group(pool, 10);
  std::atomic<int> saw_cancel{0};
  auto sleeper = [&saw_cancel]() -> Task<void> {
    try {
      co_await troupe::sleep(1h);
    } catch (const troupe::CancelledError&) {
      saw_cancel.fetch_add(1);
      throw;
    }
  };
  auto feeder = [&]() -> Task<bool> {
    for (int i = 0; i < 10; ++i) (void)co_await group.spawn(sleeper());
    try {
      co_await troupe::wait_for(group.join(), 20ms);
    } catch (const troupe::TimeoutError&) {
      co_return true;  // the tasks still sleep
    }
    co_return false;
  };
  EXPECT_TRUE(troupe::run(pool, feeder(), 120s));
  EXPECT_EQ(group.size(), 10U);
  group.cancel();
  EXPECT_THROW(group.wait(60s), troupe::CancelledError);
  EXPECT_EQ(saw_cancel.load(), 10);
}

// ---- the debug check: a worker blocked too long inside a task --------------------------

struct StallLimit {
  explicit StallLimit(const char* ms) {
    ::setenv("TROUPE_CORO_STALL_MS", ms, 1);
    troupe::detail::reload_settings();
  }
  ~StallLimit() {
    ::unsetenv("TROUPE_CORO_STALL_MS");
    troupe::detail::reload_settings();
  }
};

TEST(CoroStallCheck, ATaskThatBlocksItsWorkerIsReportedNamingWhereItResumed) {
  troupe::ThreadPool pool(1);
  auto blocking = []() -> Task<int> {
    co_await troupe::sleep(0s);
    std::this_thread::sleep_for(300ms);  // the mistake: a blocking call inside a task
    co_return 1;
  };
  std::uint64_t before = 0;
  std::string err;
  {
    StallLimit limit("20");  // far below the 300 ms block
    before = troupe::coro_stalls();
    testing::internal::CaptureStderr();
    EXPECT_EQ(troupe::run(pool, blocking(), 120s), 1);
    // The report follows the step's end, which may come just after the future's.
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (troupe::coro_stalls() == before && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    pool.submit([] {}).result(60s);  // the worker is past its report
    err = testing::internal::GetCapturedStderr();
  }
  EXPECT_GT(troupe::coro_stalls(), before);
  EXPECT_NE(err.find("a coroutine step held a pool worker"), std::string::npos) << err;
  EXPECT_NE(err.find("TROUPE_CORO_STALL_MS=20"), std::string::npos) << err;
  EXPECT_NE(err.find("troupe::sleep(0)"), std::string::npos) << err;
}

TEST(CoroStallCheck, OffByDefault) {
  EXPECT_EQ(troupe::settings().coro_stall.count(), 0);
  troupe::ThreadPool pool(1);
  auto blocking = []() -> Task<int> {
    std::this_thread::sleep_for(50ms);
    co_return 1;
  };
  const std::uint64_t before = troupe::coro_stalls();
  EXPECT_EQ(troupe::run(pool, blocking(), 120s), 1);
  pool.submit([] {}).result(60s);
  EXPECT_EQ(troupe::coro_stalls(), before);
}

}  // namespace
