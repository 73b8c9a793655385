// troupe::Lock and troupe::RLock across ranks and threads: mutual exclusion of a
// read-modify-write on rank 0's memory from every rank and thread (exact count), timeouts,
// fairness of the hand-over, ownership errors, reentrancy, and waits inside pool tasks.
#include "troupe/across/lock.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/error.hpp"
#include "troupe/pool/thread_pool.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Scope;
using troupe_test::Comm;
using troupe_test::quiet;

namespace {

// One int64 on rank 0, read and written with plain (non-atomic) MPI_Get / MPI_Put: updates
// from two holders at once would be lost.
struct RemoteCell {
  Comm c;
  MPI_Win win = MPI_WIN_NULL;
  std::int64_t* base = nullptr;
  RemoteCell() {
    MPI_Win_allocate(c.rank() == 0 ? sizeof(std::int64_t) : 0, sizeof(std::int64_t), MPI_INFO_NULL, c.comm, &base,
                     &win);
    if (c.rank() == 0) *base = 0;
    MPI_Barrier(c.comm);
    MPI_Win_lock_all(0, win);
  }
  ~RemoteCell() {
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
  }
  std::int64_t get() {
    std::int64_t v = 0;
    MPI_Get(&v, 1, MPI_INT64_T, 0, 0, 1, MPI_INT64_T, win);
    MPI_Win_flush(0, win);
    return v;
  }
  void put(std::int64_t v) {
    MPI_Put(&v, 1, MPI_INT64_T, 0, 0, 1, MPI_INT64_T, win);
    MPI_Win_flush(0, win);
  }
};

TEST(Lock, MutualExclusionOverRanksAndThreadsIsExact) {
  troupe::Runtime rt(quiet());
  troupe::Lock lock(Scope::RanksAndThreads);
  RemoteCell cell;
  constexpr int kThreads = 3;
  constexpr int kRounds = 150;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(lock.acquire(60s));
        const auto v = cell.get();
        cell.put(v + 1);
        lock.release();
      }
    });
  }
  for (auto& t : ts) t.join();
  MPI_Barrier(cell.c.comm);
  EXPECT_EQ(cell.get(), std::int64_t{kThreads} * kRounds * rt.size());
  MPI_Barrier(cell.c.comm);
}

TEST(Lock, TimedAcquireFailsWhileHeldElsewhereThenSucceeds) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Lock lock(Scope::Ranks, rt.size() - 1);  // hosted on the last rank
  if (rt.rank() == 0) {
    ASSERT_TRUE(lock.acquire());
  }
  MPI_Barrier(c.comm);
  if (rt.rank() != 0) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(lock.acquire(50ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
    EXPECT_FALSE(lock.acquire(false));
    EXPECT_FALSE(lock.try_lock());
  } else {
    EXPECT_TRUE(lock.locked());
  }
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) lock.release();
  MPI_Barrier(c.comm);
  EXPECT_FALSE(lock.locked());
  MPI_Barrier(c.comm);
  // Everyone takes it in turn.
  ASSERT_TRUE(lock.acquire(60s));
  EXPECT_TRUE(lock.locked());
  lock.release();
  MPI_Barrier(c.comm);
}

TEST(Lock, ReleaseByANonOwnerOrOfAFreeLockThrowsAndLeavesTheLock) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Lock lock(Scope::Ranks);
  try {
    lock.release();
    ADD_FAILURE() << "release of a free lock did not throw";
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_NE(std::string(e.what()).find("Lock::release: not held by this thread"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not held"), std::string::npos) << e.what();
  }
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    ASSERT_TRUE(lock.acquire());
  }
  MPI_Barrier(c.comm);
  if (rt.rank() != 0) {
    try {
      lock.release();
      ADD_FAILURE() << "release by another rank did not throw";
    } catch (const troupe::InvalidStateError& e) {
      EXPECT_NE(std::string(e.what()).find("held by thread"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("of rank 0"), std::string::npos) << e.what();
    }
  } else {
    // Another thread of the owner rank is not the owner either.
    std::thread other([&] { EXPECT_THROW(lock.release(), troupe::InvalidStateError); });
    other.join();
  }
  MPI_Barrier(c.comm);
  EXPECT_TRUE(lock.locked());
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) lock.release();
  MPI_Barrier(c.comm);
}

TEST(Lock, HandOverIsFirstComeFirstServed) {
  troupe::Runtime rt(quiet());
  troupe::Lock lock(Scope::Ranks);
  RemoteCell cell;  // the order in which the waiters got the lock
  if (rt.rank() == 0) {
    ASSERT_TRUE(lock.acquire());
  }
  MPI_Barrier(cell.c.comm);
  std::int64_t ticket = -1;
  std::thread waiter;
  for (int r = 1; r < rt.size(); ++r) {
    if (rt.rank() == r) {
      waiter = std::thread([&] {
        ASSERT_TRUE(lock.acquire(60s));
        ticket = cell.get();
        cell.put(ticket + 1);
        lock.release();
      });
      // A call from this rank reaches the host after the acquire it sent before: once
      // locked() answers, the request is queued there.
      while (!lock.locked()) {
      }
      EXPECT_TRUE(lock.locked());
    }
    MPI_Barrier(cell.c.comm);  // rank r is queued before rank r+1 asks
  }
  if (rt.rank() == 0) lock.release();
  if (waiter.joinable()) waiter.join();
  MPI_Barrier(cell.c.comm);
  if (rt.rank() != 0) {
    EXPECT_EQ(ticket, rt.rank() - 1) << "waiters were not served in arrival order";
  }
  MPI_Barrier(cell.c.comm);
}

TEST(RLock, ReentersOnTheOwningThreadOnlyAndCountsReleases) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::RLock lock(Scope::RanksAndThreads);
  if (rt.rank() == 0) {
    ASSERT_TRUE(lock.acquire());
    ASSERT_TRUE(lock.acquire(1s));
    ASSERT_TRUE(lock.try_lock());
    std::thread other([&] { EXPECT_FALSE(lock.acquire(20ms)); });
    other.join();
    lock.release();
    lock.release();
  }
  MPI_Barrier(c.comm);
  EXPECT_TRUE(lock.locked());  // one acquire still outstanding on rank 0
  if (rt.rank() != 0) {
    EXPECT_FALSE(lock.acquire(20ms));
  }
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    lock.release();
    EXPECT_THROW(lock.release(), troupe::InvalidStateError);
  }
  MPI_Barrier(c.comm);
  {
    std::scoped_lock guard(lock);
    std::lock_guard inner(lock);
  }
  MPI_Barrier(c.comm);
}

TEST(Lock, WaitsInsidePoolTasksDoNotDeadlockThePool) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Lock lock(Scope::RanksAndThreads);
  troupe::ThreadPool pool(troupe::PoolOptions{.threads = 2});
  std::atomic<int> inside{0};
  std::atomic<int> done{0};
  std::vector<troupe::Future<void>> fs;
  for (int i = 0; i < 40; ++i) {
    fs.push_back(pool.submit([&] {
      ASSERT_TRUE(lock.acquire(60s));
      EXPECT_EQ(inside.fetch_add(1), 0);
      inside.fetch_sub(1);
      lock.release();
      done.fetch_add(1);
    }));
  }
  for (auto& f : fs) f.result(120s);
  EXPECT_EQ(done.load(), 40);
  MPI_Barrier(c.comm);
}

TEST(Lock, ThreadScopeNeedsNoRuntime) {
  troupe::Lock lock;  // Scope::Threads
  EXPECT_EQ(lock.scope(), Scope::Threads);
  std::int64_t counter = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::lock_guard g(lock);
        ++counter;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 8000);
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW(lock.release(), troupe::InvalidStateError);
}

TEST(Lock, CrossRankScopeWithoutARuntimeIsAClearError) {
  try {
    troupe::Lock lock(Scope::Ranks);
    ADD_FAILURE() << "no error";
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_NE(std::string(e.what()).find("Lock(Scope::Ranks): no troupe::Runtime is alive"), std::string::npos)
        << e.what();
  }
  troupe::Runtime rt(quiet());
  EXPECT_THROW(troupe::Lock(Scope::Ranks, rt.size()), troupe::ValueError);
  troupe::Lock lock(Scope::Ranks);
  EXPECT_THROW((void)lock.acquire(false, 10ms), troupe::ValueError);
  EXPECT_THROW((void)lock.acquire(-1ms), troupe::ValueError);
}

}  // namespace
