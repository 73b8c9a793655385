// Coroutines across ranks: 1,000 tasks on a pool of ONE worker each await a remote future
// (Executor::submit_to the next rank) and then an MPI request of their own (an Irecv that
// the previous rank's send matches). While all of them are suspended the worker is idle
// (its idle sleeps count rises: no thread is blocked in a task), and every task completes
// once the sends come. Plus: cancellation by token reaches a task suspended on an MPI
// request; tasks await the cross-rank Queue's get_async with no thread blocked, and a
// stop request withdraws such a get at the host (no item lost); blocking cross-rank calls
// (Event::wait) are awaited through a pool of their own (asyncio.to_thread). Every wait is
// bounded.
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "troupe/across/queue.hpp"
#include "troupe/coro/across.hpp"
#include "troupe/coro/coro.hpp"
#include "troupe/coro/mpi.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/sync/event.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Executor;
using troupe::Task;
using troupe_test::quiet;

namespace {

std::uint64_t idle_sleeps(const troupe::ThreadPool& pool) {
  std::uint64_t n = 0;
  for (const auto& w : pool.stats().workers) n += w.sleeps;
  return n;
}

// Each rank put items 1000 * rank + i, i < per_rank; @p local is the sum of what this
// rank's getters got: over all ranks, every item got exactly once.
void expect_every_item_got_once(MPI_Comm comm, long local, int size, int per_rank) {
  const auto total = troupe_test::bounded_sum(comm, local, std::chrono::seconds(120));
  ASSERT_TRUE(total) << "the sum of the items got did not complete";
  long expect = 0;
  for (int r = 0; r < size; ++r) {
    for (int i = 0; i < per_rank; ++i) expect += 1000L * r + i;
  }
  EXPECT_EQ(*total, expect);
}

TEST(Coro, RemoteFuturesAndMpiRequestsCompleteWithNoThreadBlocked) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  MPI_Comm user;
  MPI_Comm_dup(MPI_COMM_WORLD, &user);
  const int right = (ex.rank() + 1) % ex.size(), left = (ex.rank() + ex.size() - 1) % ex.size();
  constexpr int kTasks = 1000;
  std::vector<int> in(kTasks, -1);
  std::vector<MPI_Request> req(kTasks);
  for (int i = 0; i < kTasks; ++i)
    MPI_Irecv(&in[static_cast<std::size_t>(i)], 1, MPI_INT, left, i, user, &req[static_cast<std::size_t>(i)]);

  troupe::ThreadPool pool(1);  // one worker: a task that blocked it would stop them all
  std::atomic<int> arrived{0};
  troupe::Promise<void> all_arrived;
  auto body = [&](int i) -> Task<long> {
    const int sq = co_await ex.submit_to(
        right, [](int x) { return x * x; }, i);
    if (arrived.fetch_add(1) + 1 == kTasks) all_arrived.set_result();
    const MPI_Status st = co_await troupe::mpi_request(ex, req[static_cast<std::size_t>(i)]);
    EXPECT_EQ(st.MPI_SOURCE, left);
    EXPECT_EQ(st.MPI_TAG, i);
    co_return static_cast<long>(sq) + in[static_cast<std::size_t>(i)];
  };
  std::vector<troupe::Future<long>> futures;
  for (int i = 0; i < kTasks; ++i) futures.push_back(troupe::spawn(pool, body(i)));
  all_arrived.get_future().result(120s);

  // Every task is suspended on its MPI request (no send has been made). The worker, poked
  // by one more task, goes back to its idle sleep: it is blocked in no task.
  const std::uint64_t before = idle_sleeps(pool);
  pool.submit([] {}).result(60s);
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (idle_sleeps(pool) == before && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  EXPECT_GT(idle_sleeps(pool), before) << "the pool's only worker never went idle";
  for (auto& f : futures) EXPECT_FALSE(f.done());

  // Every rank has checked before any send (bounded: a rank that failed above fails the
  // others here instead of hanging them).
  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s)) << "rank " << ex.rank() << ": not every rank reached the sends";
  for (int i = 0; i < kTasks; ++i) {
    const int v = 100'000 * ex.rank() + i;
    MPI_Send(&v, 1, MPI_INT, right, i, user);
  }
  for (int i = 0; i < kTasks; ++i) {
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].result(120s), static_cast<long>(i) * i + 100'000L * left + i);
  }
  MPI_Comm_free(&user);
  ex.shutdown();
}

// 10^5 tasks per rank suspended at once on an AsyncEvent, released only once every rank has
// all of its tasks suspended; each completes exactly once, and the total over the ranks is
// exactly 10^5 x P.
TEST(Coro, HundredThousandSuspendedTasksPerRankCompleteExactlyOnce) {
  troupe::Runtime rt(quiet());
  MPI_Comm user;
  MPI_Comm_dup(MPI_COMM_WORLD, &user);
  int size = 1;
  MPI_Comm_size(user, &size);
  constexpr int kTasks = 100'000;
  troupe::ThreadPool pool(2);
  troupe::AsyncEvent release;
  std::vector<std::atomic<int>> done(kTasks);
  std::atomic<int> arrived{0};
  troupe::Promise<void> all_arrived;
  auto body = [&](int i) -> Task<void> {
    if (arrived.fetch_add(1) + 1 == kTasks) all_arrived.set_result();
    co_await release.wait();
    done[static_cast<std::size_t>(i)].fetch_add(1);
  };
  std::vector<troupe::Future<void>> futures;
  futures.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) futures.push_back(troupe::spawn(pool, body(i)));
  all_arrived.get_future().result(120s);
  for (int i = 0; i < kTasks; ++i) ASSERT_EQ(done[static_cast<std::size_t>(i)].load(), 0);
  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s)) << "not every rank suspended its tasks";
  release.set();
  for (auto& f : futures) f.result(120s);
  long mine = 0;
  for (auto& d : done) {
    EXPECT_EQ(d.load(), 1);
    mine += d.load();
  }
  const auto total = troupe_test::bounded_sum(user, mine, 120s);
  ASSERT_TRUE(total) << "the count's allreduce did not complete";
  EXPECT_EQ(*total, static_cast<long>(kTasks) * size);
  MPI_Comm_free(&user);
}

int g_cancelled_buf = -1;  // outlives the request, which stays watched after the cancel

TEST(Coro, CancellationReachesATaskSuspendedOnAnMpiRequest) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  MPI_Comm user;
  MPI_Comm_dup(MPI_COMM_WORLD, &user);
  MPI_Request rq;
  MPI_Irecv(&g_cancelled_buf, 1, MPI_INT, ex.rank(), 77, user, &rq);
  troupe::ThreadPool pool(1);
  troupe::CancellationSource source;
  auto body = [&]() -> Task<void> { (void)co_await troupe::mpi_request(ex, rq); };
  auto f = troupe::spawn(pool, body(), source.get_token());
  pool.submit([] {}).result(60s);  // the task ran up to its suspension
  EXPECT_FALSE(f.done());
  source.request_stop();
  try {
    f.result(60s);
    ADD_FAILURE() << "no exception";
  } catch (const troupe::CancelledError& e) {
    EXPECT_NE(std::string(e.what()).find("troupe::mpi_request"), std::string::npos) << e.what();
  }
  // The request itself is still watched: complete it before the executor ends.
  const int v = 5;
  MPI_Send(&v, 1, MPI_INT, ex.rank(), 77, user);
  MPI_Comm_free(&user);
  ex.shutdown();
}

// The cross-rank Queue and Event only have blocking calls: a task awaits them through a
// pool of blocking threads (`co_await blocking.submit(...)`, asyncio.to_thread). The
// tasks' own pool has one worker, free all along (it answers a submit while every get is
// pending); every item put by every rank is got exactly once, by the tasks of some rank.
TEST(Coro, TasksAwaitTheCrossRankQueueAndEventThroughABlockingPool) {
  troupe::Runtime rt(quiet());
  troupe::Queue<int> q(troupe::Scope::Ranks);
  troupe::Event go(troupe::Scope::Ranks);
  MPI_Comm user;
  MPI_Comm_dup(MPI_COMM_WORLD, &user);
  int rank = 0, size = 1;
  MPI_Comm_rank(user, &rank);
  MPI_Comm_size(user, &size);

  troupe::ThreadPool pool(1);      // the tasks
  troupe::ThreadPool blocking(4);  // the blocking calls
  constexpr int kPerRank = 16;
  std::atomic<int> passed{0};
  auto getter = [&]() -> Task<long> {
    const int item = co_await blocking.submit([&q] { return q.get(120s); });
    const bool set = co_await blocking.submit([&go] { return go.wait(120s); });
    EXPECT_TRUE(set);
    passed.fetch_add(1);
    co_return item;
  };
  std::vector<troupe::Future<long>> futures;
  for (int i = 0; i < kPerRank; ++i) futures.push_back(troupe::spawn(pool, getter()));
  pool.submit([] {}).result(60s);  // the pool's only worker is not held by a waiting task
  EXPECT_EQ(passed.load(), 0);

  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s));  // every rank checked its pool before any item is put
  for (int i = 0; i < kPerRank; ++i) q.put(1000 * rank + i, 60s);
  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s));  // every item is in (or got) before the event is set
  if (rank == 0) go.set();
  long local = 0;
  for (auto& f : futures) local += f.result(120s);
  EXPECT_EQ(passed.load(), kPerRank);
  expect_every_item_got_once(user, local, size, kPerRank);  // every item got exactly once
  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s));    // no rank destroys the queue while another still calls it
  MPI_Comm_free(&user);
}

// 200 tasks per rank on a pool of ONE worker each await a get of the cross-rank Queue
// (hosted on rank 0): while all are suspended the worker goes idle (no thread waits for the
// host's answer); then every rank puts 200 items and every item is got exactly once.
TEST(Coro, TasksAwaitACrossRankQueueGetWithNoThreadBlocked) {
  troupe::Runtime rt(quiet());
  troupe::Queue<int> q(troupe::Scope::Ranks);
  MPI_Comm user;
  MPI_Comm_dup(MPI_COMM_WORLD, &user);
  int rank = 0, size = 1;
  MPI_Comm_rank(user, &rank);
  MPI_Comm_size(user, &size);
  troupe::ThreadPool pool(1);
  constexpr int kPerRank = 200;
  auto getter = [&q]() -> Task<long> { co_return co_await q.get_async(); };
  std::vector<troupe::Future<long>> futures;
  for (int i = 0; i < kPerRank; ++i) futures.push_back(troupe::spawn(pool, getter()));

  const std::uint64_t before = idle_sleeps(pool);
  pool.submit([] {}).result(60s);  // the worker ran every task up to its await
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (idle_sleeps(pool) == before && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  EXPECT_GT(idle_sleeps(pool), before) << "the pool's only worker never went idle";

  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s));  // every rank checked before any item is put
  for (int i = 0; i < kPerRank; ++i) q.put(1000 * rank + i, 60s);
  long local = 0;
  for (auto& f : futures) local += f.result(120s);
  expect_every_item_got_once(user, local, size, kPerRank);  // every item got exactly once
  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s));
  MPI_Comm_free(&user);
}

// A stop request reaches a task suspended in a cross-rank get: the get is withdrawn at the
// host (CancelledError naming it) and takes no item: the items put afterwards (one per
// rank) are each got by a blocking get of some rank, none swallowed by a cancelled get.
TEST(Coro, CancellationWithdrawsACrossRankGetAtTheHost) {
  troupe::Runtime rt(quiet());
  troupe::Queue<int> q(troupe::Scope::Ranks);
  MPI_Comm user;
  MPI_Comm_dup(MPI_COMM_WORLD, &user);
  int rank = 0, size = 1;
  MPI_Comm_rank(user, &rank);
  MPI_Comm_size(user, &size);
  troupe::ThreadPool pool(1);
  troupe::CancellationSource source;
  auto getter = [&q]() -> Task<int> { co_return co_await q.get_async(); };
  auto f = troupe::spawn(pool, getter(), source.get_token());
  pool.submit([] {}).result(60s);  // the task is suspended in its get
  EXPECT_FALSE(f.done());
  source.request_stop();
  try {
    f.result(60s);
    ADD_FAILURE() << "no exception";
  } catch (const troupe::CancelledError& e) {
    EXPECT_NE(std::string(e.what()).find("Queue::get"), std::string::npos) << e.what();
  }
  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s));  // every rank's get is withdrawn before any item is put
  q.put(rank, 60s);
  const int got = q.get(60s);  // Empty (a test failure) if a withdrawn get had taken an item
  const auto sum = troupe_test::bounded_sum(user, got, 120s);
  ASSERT_TRUE(sum) << "the sum of the items got did not complete";
  EXPECT_EQ(*sum, static_cast<long>(size) * (size - 1) / 2);
  ASSERT_TRUE(troupe_test::bounded_barrier(user, 120s));
  MPI_Comm_free(&user);
}

}  // namespace
