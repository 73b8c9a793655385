// Waits on the sync primitives from inside pool tasks help the pool (troupe's one wait
// loop runs other queued tasks), so N+1 tasks that wait for each other complete on a pool
// of N workers. With blocking waits the first N would hold every worker and the last task
// would never start. Every wait is bounded: a regression shows as a BrokenBarrierError or
// a false wait, not as a hung test.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <vector>

#include "troupe/pool/thread_pool.hpp"
#include "troupe/sync/barrier.hpp"
#include "troupe/sync/event.hpp"
#include "troupe/sync/semaphore.hpp"

namespace {

using namespace std::chrono_literals;

class InPool : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Workers, InPool, ::testing::Values(1, 2, 4));

TEST_P(InPool, BarrierOfNPlusOnePartiesCompletes) {
  const std::size_t n = GetParam();
  const auto parties = static_cast<std::ptrdiff_t>(n + 1);
  std::atomic<int> actions{0};
  troupe::Barrier barrier(parties, [&] { actions.fetch_add(1); });
  troupe::ThreadPool pool(n);
  std::vector<troupe::Future<std::ptrdiff_t>> tasks;
  for (std::ptrdiff_t i = 0; i < parties; ++i) tasks.push_back(pool.submit([&] { return barrier.wait(30s); }));
  std::vector<int> seen(static_cast<std::size_t>(parties), 0);
  for (auto& t : tasks) ++seen.at(static_cast<std::size_t>(t.result(60s)));
  for (int count : seen) EXPECT_EQ(count, 1) << "every arrival index exactly once";
  EXPECT_EQ(actions.load(), 1);
  EXPECT_FALSE(barrier.broken());
}

// N+1 tasks on a pool of N workers: the last to arrive calls release(), the others wait()
// (bounded); every task must end with true.
template <class Release, class Wait>
void last_of_n_plus_one_releases(std::size_t n, Release release, Wait wait) {
  std::atomic<std::size_t> arrived{0};
  troupe::ThreadPool pool(n);
  std::vector<troupe::Future<bool>> tasks;
  for (std::size_t i = 0; i <= n; ++i) {
    tasks.push_back(pool.submit([&, n] {
      if (arrived.fetch_add(1) + 1 == n + 1) {
        release();
        return true;
      }
      return wait();
    }));
  }
  for (auto& t : tasks) EXPECT_TRUE(t.result(60s));
}

TEST_P(InPool, EventSetByTheLastOfNPlusOneTasks) {
  troupe::Event event;
  last_of_n_plus_one_releases(
      GetParam(), [&] { event.set(); }, [&] { return event.wait(30s); });
}

TEST_P(InPool, SemaphoreReleasedByTheLastOfNPlusOneTasks) {
  const std::size_t n = GetParam();
  troupe::Semaphore units(0);
  last_of_n_plus_one_releases(
      n, [&] { units.release(static_cast<std::ptrdiff_t>(n)); }, [&] { return units.acquire(30s); });
  EXPECT_EQ(units.value(), 0);
}

}  // namespace
