// The caller helps: a thread outside the pool that waits (no deadline) on a pool future
// runs the pool's tasks meanwhile. Exact counts and thread identities; no timing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <semaphore>
#include <stdexcept>
#include <thread>
#include <vector>

#include "troupe/pool/thread_pool.hpp"

using namespace std::chrono_literals;
using troupe::Future;
using troupe::ThreadPool;

namespace {

// Occupies every worker of @p pool until release() (or 60 s: a broken helper fails the
// test instead of hanging it).
class Blocker {
 public:
  explicit Blocker(ThreadPool& pool) {
    for (std::size_t i = 0; i < pool.size(); ++i) {
      done_.push_back(pool.submit([this] {
        started_.release();
        (void)gate_.try_acquire_for(60s);
      }));
    }
    for (std::size_t i = 0; i < pool.size(); ++i) EXPECT_TRUE(started_.try_acquire_for(60s));
  }
  void release() {
    if (released_) return;
    released_ = true;
    gate_.release(static_cast<std::ptrdiff_t>(done_.size()));
    for (auto& f : done_) f.wait_for(60s);
  }
  ~Blocker() { release(); }

 private:
  std::counting_semaphore<> started_{0};
  std::counting_semaphore<> gate_{0};
  std::vector<Future<void>> done_;
  bool released_ = false;
};

int tree(ThreadPool& pool, int depth, std::atomic<int>& by_caller, std::thread::id caller) {
  if (std::this_thread::get_id() == caller) by_caller.fetch_add(1);
  if (depth == 0) return 1;
  auto child = pool.submit([&pool, depth, &by_caller, caller] { return tree(pool, depth - 1, by_caller, caller); });
  const int mine = tree(pool, depth - 1, by_caller, caller);
  return mine + child.result();
}

}  // namespace

TEST(CallerHelps, QueuedTaskRunsInTheWaitingCaller) {
  ThreadPool pool(1);
  Blocker blocker(pool);
  auto f = pool.submit([] { return std::this_thread::get_id(); });
  EXPECT_EQ(f.result(), std::this_thread::get_id());  // the only worker is blocked: we ran it
}

TEST(CallerHelps, ForkJoinFromOutsideRunsEveryTaskOnceInTheCaller) {
  ThreadPool pool(1);
  Blocker blocker(pool);
  std::atomic<int> by_caller{0};
  const auto me = std::this_thread::get_id();
  constexpr int kDepth = 10;  // 2^11 - 1 calls of tree(), 2^10 leaves
  auto root = pool.submit([&] { return tree(pool, kDepth, by_caller, me); });
  EXPECT_EQ(root.result(), 1 << kDepth);
  EXPECT_EQ(by_caller.load(), (1 << (kDepth + 1)) - 1);
}

TEST(CallerHelps, ForkJoinWithRunningWorkersCountsExactly) {
  for (std::size_t workers : {1u, 2u, 4u}) {
    ThreadPool pool(workers);
    std::atomic<int> by_caller{0};
    for (int round = 0; round < 20; ++round) {
      auto root = pool.submit([&] { return tree(pool, 12, by_caller, std::this_thread::get_id()); });
      EXPECT_EQ(root.result(), 1 << 12) << workers;
    }
  }
}

TEST(CallerHelps, HelpedTaskSeesItselfInThePoolButNotAsAWorker) {
  ThreadPool pool(1);
  Blocker blocker(pool);
  auto f = pool.submit([&] { return std::pair{pool.in_worker(), pool.worker_index()}; });
  const auto [inside, index] = f.result();
  EXPECT_TRUE(inside);
  EXPECT_EQ(index, -1);
  EXPECT_FALSE(pool.in_worker());
}

TEST(CallerHelps, ExceptionOfAHelpedTaskReachesTheWaiterOnce) {
  ThreadPool pool(1);
  Blocker blocker(pool);
  std::atomic<int> runs{0};
  auto f = pool.submit([&]() -> int {
    runs.fetch_add(1);
    throw std::out_of_range("element");
  });
  EXPECT_THROW((void)f.result(), std::out_of_range);
  EXPECT_THROW((void)f.result(), std::out_of_range);
  blocker.release();
  pool.shutdown();
  EXPECT_EQ(runs.load(), 1);
}

TEST(CallerHelps, WaitWithADeadlineDoesNotHelp) {
  ThreadPool pool(1);
  Blocker blocker(pool);
  auto f = pool.submit([] { return std::this_thread::get_id(); });
  EXPECT_THROW((void)f.result(20ms), troupe::TimeoutError);  // the task stays queued
  EXPECT_FALSE(f.done());
  blocker.release();
  EXPECT_NE(f.result(60s), std::this_thread::get_id());
}

TEST(CallerHelps, OptOutAndInitializerKeepTasksOnTheWorkers) {
  for (int variant = 0; variant < 2; ++variant) {
    troupe::PoolOptions opts;
    opts.threads = 1;
    if (variant == 0) {
      opts.caller_helps = false;
    } else {
      opts.initializer = [] {};  // a pool with an initializer does not let outside threads help
    }
    ThreadPool pool(opts);
    auto blocker = std::make_unique<Blocker>(pool);
    auto f = pool.submit([] { return std::this_thread::get_id(); });
    std::thread releaser([&] { blocker->release(); });
    EXPECT_NE(f.result(), std::this_thread::get_id()) << variant;
    releaser.join();
  }
}

TEST(CallerHelps, MapChunksRunInTheCallerExactlyOnce) {
  ThreadPool pool(1);
  Blocker blocker(pool);
  const auto me = std::this_thread::get_id();
  std::vector<int> in(1000);
  for (int i = 0; i < 1000; ++i) in[static_cast<std::size_t>(i)] = i;
  std::atomic<int> calls{0}, by_caller{0};
  auto out = pool.map(
                     [&](int x) {
                       calls.fetch_add(1);
                       if (std::this_thread::get_id() == me) by_caller.fetch_add(1);
                       return 3 * x;
                     },
                     in, {.chunksize = 64})
                 .to_vector();
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], 3 * static_cast<int>(i));
  EXPECT_EQ(calls.load(), 1000);
  EXPECT_EQ(by_caller.load(), 1000);
}

TEST(CallerHelps, MapElementExceptionStillSurfacesInPlace) {
  ThreadPool pool(1);
  Blocker blocker(pool);
  std::vector<int> in(300);
  for (int i = 0; i < 300; ++i) in[static_cast<std::size_t>(i)] = i;
  auto m = pool.map(
      [&](int x) {
        if (x == 150) throw std::out_of_range("150");
        return x;
      },
      in, {.chunksize = 100});
  int seen = 0;
  try {
    for (int v : m) {
      EXPECT_EQ(v, seen);
      ++seen;
    }
    FAIL() << "no exception";
  } catch (const std::out_of_range&) {
  }
  EXPECT_EQ(seen, 150);
}

TEST(CallerHelps, MoreWaitersThanSeatsAllFinish) {
  ThreadPool pool(1);
  auto blocker = std::make_unique<Blocker>(pool);
  constexpr int kWaiters = static_cast<int>(troupe::detail::kOutsideSeats) + 2;
  std::atomic<int> runs{0}, finished{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&] {
      auto f = pool.submit([&] { runs.fetch_add(1); });
      f.result();
      finished.fetch_add(1);
    });
  }
  // Waiters without a seat may need the worker: free it once the seated ones could be done.
  blocker->release();
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), kWaiters);
  EXPECT_EQ(finished.load(), kWaiters);
}

TEST(CallerHelps, PoolDestroyedWhileOutsideThreadsWait) {
  for (int round = 0; round < 50; ++round) {
    auto pool = std::make_unique<ThreadPool>(1);
    std::atomic<int> runs{0};
    std::vector<Future<int>> fs;
    for (int i = 0; i < 8; ++i)
      fs.push_back(pool->submit([&runs, i] {
        runs.fetch_add(1);
        return i;
      }));
    std::vector<std::thread> waiters;
    std::atomic<int> sum{0};
    for (int w = 0; w < 3; ++w) {
      waiters.emplace_back([&, w] {
        for (int i = w; i < 8; i += 3) sum.fetch_add(fs[static_cast<std::size_t>(i)].result());
      });
    }
    pool.reset();  // joins the worker, closes the gate while waiters may be helping
    for (auto& t : waiters) t.join();
    EXPECT_EQ(runs.load(), 8);
    EXPECT_EQ(sum.load(), 28);
  }
}
