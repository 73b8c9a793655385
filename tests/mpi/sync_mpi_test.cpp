// troupe::Event, Semaphore, BoundedSemaphore, Condition and Sequential across ranks and
// threads: wake-ups on every rank, exact bounds on concurrent holders (counted on rank 0's
// memory with atomic RMA), over-release errors with nothing changed, A/B/C turn-taking,
// notify(n) waking n, lock misuse errors, rank order, and waits inside pool tasks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <exception>
#include <utility>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "troupe/across/condition.hpp"
#include "troupe/across/lock.hpp"
#include "troupe/across/sequential.hpp"
#include "troupe/core/error.hpp"
#include "troupe/pool/thread_pool.hpp"
#include "troupe/sync/event.hpp"
#include "troupe/sync/semaphore.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Scope;
using troupe_test::Comm;
using troupe_test::quiet;

namespace {

// n int64 cells on rank 0, read and updated from any rank and thread with atomic RMA.
// A test thread's body: an exception it throws becomes a test failure that names it (one
// escaping a std::thread would abort the rank with a truncated message and no test name).
template <class F>
auto reported(F f) {
  return [f = std::move(f)]() mutable {
    try {
      f();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "a test thread threw: " << e.what();
    } catch (...) {
      ADD_FAILURE() << "a test thread threw a non-std exception";
    }
  };
}

struct Cells {
  Comm c;
  MPI_Win win = MPI_WIN_NULL;
  std::int64_t* base = nullptr;
  explicit Cells(int n) {
    const MPI_Aint bytes = c.rank() == 0 ? n * static_cast<MPI_Aint>(sizeof(std::int64_t)) : 0;
    MPI_Win_allocate(bytes, sizeof(std::int64_t), MPI_INFO_NULL, c.comm, &base, &win);
    if (c.rank() == 0) {
      for (int i = 0; i < n; ++i) base[i] = 0;
    }
    MPI_Barrier(c.comm);
    MPI_Win_lock_all(0, win);
  }
  ~Cells() {
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
  }
  std::int64_t add(int i, std::int64_t d) {  // returns the old value
    std::int64_t old = 0;
    MPI_Fetch_and_op(&d, &old, MPI_INT64_T, 0, i, MPI_SUM, win);
    MPI_Win_flush(0, win);
    return old;
  }
  std::int64_t get(int i) {
    std::int64_t v = 0, none = 0;
    MPI_Fetch_and_op(&none, &v, MPI_INT64_T, 0, i, MPI_NO_OP, win);
    MPI_Win_flush(0, win);
    return v;
  }
  void put(int i, std::int64_t v) {
    std::int64_t old = 0;
    MPI_Fetch_and_op(&v, &old, MPI_INT64_T, 0, i, MPI_REPLACE, win);
    MPI_Win_flush(0, win);
  }
  void max(int i, std::int64_t v) {
    MPI_Accumulate(&v, 1, MPI_INT64_T, 0, i, 1, MPI_INT64_T, MPI_MAX, win);
    MPI_Win_flush(0, win);
  }
  void barrier() { MPI_Barrier(c.comm); }
};

bool contains(const std::exception& e, const std::string& what) {
  return std::string(e.what()).find(what) != std::string::npos;
}

// ---------------------------------------------------------------------------------- Event

TEST(EventAcross, SetOnOneRankReleasesWaitersOnEveryRankAndThread) {
  troupe::Runtime rt(quiet());
  troupe::Event ev(Scope::Ranks);
  EXPECT_EQ(ev.scope(), Scope::Ranks);
  Cells cells(1);  // waiters released
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back(reported([&] {
      EXPECT_TRUE(ev.wait(60s));
      cells.add(0, 1);
    }));
  }
  EXPECT_FALSE(ev.is_set());
  cells.barrier();  // nobody sets before every rank has looked
  if (rt.rank() == rt.size() - 1) ev.set();
  for (auto& t : ts) t.join();
  EXPECT_TRUE(ev.is_set());
  EXPECT_TRUE(ev.wait(0s));
  cells.barrier();
  EXPECT_EQ(cells.get(0), 2 * rt.size());
  cells.barrier();
}

TEST(EventAcross, ClearAndIsSetAreSeenByEveryRank) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Event ev(Scope::RanksAndThreads);
  if (rt.rank() == 0) ev.set();
  MPI_Barrier(c.comm);
  EXPECT_TRUE(ev.is_set());
  MPI_Barrier(c.comm);
  if (rt.rank() == 1 % rt.size()) ev.clear();
  MPI_Barrier(c.comm);
  EXPECT_FALSE(ev.is_set());
  EXPECT_FALSE(ev.wait(1ms));
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    ev.set();
    ev.set();  // setting a set event does nothing
  }
  MPI_Barrier(c.comm);
  EXPECT_TRUE(ev.wait(60s));
  MPI_Barrier(c.comm);
}

TEST(EventAcross, WaitTimeoutReturnsFalseAfterTheTimeout) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Event ev(Scope::Ranks);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(ev.wait(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  EXPECT_THROW((void)ev.wait(-1ms), troupe::ValueError);
  troupe::CancellationSource src;
  src.request_stop();
  EXPECT_THROW((void)ev.wait(troupe::Deadline{}, src.get_token()), troupe::CancelledError);
  MPI_Barrier(c.comm);
  // The withdrawn waits left nothing behind: a later set() still answers a new wait.
  if (rt.rank() == 0) ev.set();
  EXPECT_TRUE(ev.wait(60s));
  MPI_Barrier(c.comm);
}

TEST(EventAcross, WaitsInsidePoolTasksDoNotDeadlockThePool) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Event ev(Scope::RanksAndThreads);
  troupe::ThreadPool pool(troupe::PoolOptions{.threads = 2});
  std::atomic<int> released{0};
  std::vector<troupe::Future<void>> fs;
  for (int i = 0; i < 8; ++i) {
    fs.push_back(pool.submit([&] {
      EXPECT_TRUE(ev.wait(60s));
      released.fetch_add(1);
    }));
  }
  // The setter is queued behind the 8 waiters on the last rank's 2 workers: only a waiting
  // worker that helps runs it.
  if (rt.rank() == rt.size() - 1) fs.push_back(pool.submit([&] { ev.set(); }));
  for (auto& f : fs) f.result(120s);
  EXPECT_EQ(released.load(), 8);
  MPI_Barrier(c.comm);
}

TEST(EventAcross, ThreadScopeIsTheProcessLocalEvent) {
  troupe::Event ev(Scope::Threads);  // no Runtime needed
  EXPECT_EQ(ev.scope(), Scope::Threads);
  std::thread t([&] { ev.set(); });
  EXPECT_TRUE(ev.wait(60s));
  t.join();
  EXPECT_THROW((void)troupe::Event(Scope::Ranks), troupe::InvalidStateError);
}

// ------------------------------------------------------------------------------ Semaphore

TEST(SemaphoreAcross, LimitsConcurrentHoldersAcrossRanksAndThreadsExactly) {
  troupe::Runtime rt(quiet());
  constexpr int kValue = 2;
  troupe::Semaphore sem(Scope::RanksAndThreads, kValue);
  Cells cells(3);  // 0: holders now, 1: most holders seen, 2: acquisitions
  constexpr int kThreads = 3;
  constexpr int kRounds = 40;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back(reported([&] {
      for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(sem.acquire(60s));
        const auto now = cells.add(0, 1) + 1;
        cells.max(1, now);
        cells.add(2, 1);
        cells.add(0, -1);
        sem.release();
      }
    }));
  }
  for (auto& t : ts) t.join();
  cells.barrier();
  EXPECT_EQ(cells.get(0), 0);
  EXPECT_LE(cells.get(1), kValue) << "more holders at once than the semaphore's value";
  EXPECT_GE(cells.get(1), 1);
  EXPECT_EQ(cells.get(2), std::int64_t{kThreads} * kRounds * rt.size());
  EXPECT_EQ(sem.value(), kValue);
  cells.barrier();
}

TEST(SemaphoreAcross, TimedAndNonBlockingAcquireThenReleaseOfManyUnits) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Semaphore sem(Scope::Ranks, 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(sem.acquire(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
  EXPECT_FALSE(sem.try_acquire());
  EXPECT_FALSE(sem.acquire(false));
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) sem.release(rt.size());
  EXPECT_TRUE(sem.acquire(60s));
  MPI_Barrier(c.comm);
  EXPECT_EQ(sem.value(), 0);
  MPI_Barrier(c.comm);
  EXPECT_THROW(sem.release(0), troupe::ValueError);
  EXPECT_THROW(troupe::Semaphore(Scope::Ranks, -1), troupe::ValueError);
  // (the throwing constructor registered nothing: it checked the value before the hub)
  MPI_Barrier(c.comm);
}

TEST(SemaphoreAcross, BoundedOverReleaseRaisesOnEveryRankWithNothingChanged) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::BoundedSemaphore local(2);  // the thread version's message, for comparison
  std::string local_msg;
  try {
    local.release();
  } catch (const troupe::ValueError& e) {
    local_msg = e.what();
  }
  ASSERT_FALSE(local_msg.empty());
  troupe::BoundedSemaphore sem(Scope::Ranks, 2);
  EXPECT_EQ(sem.initial_value(), 2);
  try {
    sem.release();
    ADD_FAILURE() << "over-release did not throw";
  } catch (const troupe::ValueError& e) {
    EXPECT_EQ(std::string(e.what()), local_msg);
    EXPECT_TRUE(contains(e, "BoundedSemaphore::release: released too many times (value would be 3 > initial 2)"))
        << e.what();
  }
  MPI_Barrier(c.comm);
  EXPECT_EQ(sem.value(), 2);
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    ASSERT_TRUE(sem.acquire(60s));
    ASSERT_TRUE(sem.acquire(60s));
    EXPECT_EQ(sem.value(), 0);
    try {
      sem.release(3);
      ADD_FAILURE() << "release(3) did not throw";
    } catch (const troupe::ValueError& e) {
      EXPECT_TRUE(contains(e, "value would be 3 > initial 2")) << e.what();
    }
    EXPECT_EQ(sem.value(), 0);
    sem.release(2);
  }
  MPI_Barrier(c.comm);
  EXPECT_EQ(sem.value(), 2);
  MPI_Barrier(c.comm);
}

TEST(SemaphoreAcross, TimedOutAcquiresNeverLoseAUnit) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Semaphore sem(Scope::RanksAndThreads, 1);
  // Short timeouts race the releases: a unit granted just as its waiter gave up must be
  // returned to that waiter (acquire() true), never dropped, so the count stays exact.
  std::atomic<int> got{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back(reported([&] {
      for (int i = 0; i < 30; ++i) {
        if (sem.acquire(std::chrono::microseconds(200 * (i % 4)))) {
          got.fetch_add(1);
          sem.release();
        }
      }
    }));
  }
  for (auto& t : ts) t.join();
  MPI_Barrier(c.comm);
  EXPECT_EQ(sem.value(), 1) << "a unit was lost or created";
  MPI_Barrier(c.comm);            // every rank has read the value before any takes the unit
  EXPECT_TRUE(sem.acquire(60s));  // the one unit is there
  sem.release();
  MPI_Barrier(c.comm);
}

// ------------------------------------------------------------------------------ Condition

TEST(ConditionAcross, CancelledWaitHoldsTheLockAgainAndAPlainLockWorks) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Lock lock(Scope::Ranks, rt.size() - 1);  // a plain Lock on the last rank
  troupe::Condition cv(Scope::Ranks, &lock);
  EXPECT_EQ(&cv.underlying_lock(), &lock);
  if (rt.rank() == 0) {
    std::unique_lock guard(cv);
    troupe::CancellationSource src;
    src.request_stop();
    EXPECT_THROW((void)cv.wait(troupe::Deadline{}, src.get_token()), troupe::CancelledError);
    EXPECT_TRUE(lock.held_by_this_thread());
  }
  MPI_Barrier(c.comm);
  EXPECT_FALSE(lock.locked());
  MPI_Barrier(c.comm);
  // Rank 0 waits, the last rank notifies (at np 1: another thread).
  troupe::Condition arrived(Scope::Ranks, &lock);
  Cells cells(1);  // 0: the waiter is registered (set holding the lock)
  std::thread notifier;
  if (rt.rank() == rt.size() - 1) {
    notifier = std::thread([&] {
      std::unique_lock guard(cv);
      ASSERT_TRUE(arrived.wait_for([&] { return cells.get(0) == 1; }, 60s));
      cv.notify();
    });
  }
  if (rt.rank() == 0) {
    std::unique_lock guard(cv);
    cells.put(0, 1);
    arrived.notify_all();
    EXPECT_TRUE(cv.wait(60s));
    EXPECT_TRUE(lock.held_by_this_thread());
  }
  if (notifier.joinable()) notifier.join();
  cells.barrier();
}

TEST(ConditionAcross, ABCTakeTurnsAcrossRanks) {
  troupe::Runtime rt(quiet());
  troupe::Condition cv(Scope::RanksAndThreads);
  Cells cells(2);  // 0: whose turn (0, 1, 2), 1: steps taken
  constexpr int kRounds = 5;
  std::vector<std::thread> ts;
  for (int party = 0; party < 3; ++party) {
    if (party % rt.size() != rt.rank()) continue;
    ts.emplace_back(reported([&, party] {
      for (int round = 0; round < kRounds; ++round) {
        std::unique_lock guard(cv);
        ASSERT_TRUE(cv.wait_for([&] { return cells.get(0) == party; }, 60s)) << "party " << party;
        EXPECT_EQ(cells.get(1), round * 3 + party) << "out of turn";
        cells.add(1, 1);
        cells.put(0, (party + 1) % 3);
        cv.notify_all();
      }
    }));
  }
  for (auto& t : ts) t.join();
  cells.barrier();
  EXPECT_EQ(cells.get(1), 3 * kRounds);
  cells.barrier();
}

TEST(ConditionAcross, NotifyNWakesExactlyN) {
  troupe::Runtime rt(quiet());
  troupe::Condition cv(Scope::RanksAndThreads);
  troupe::Condition arrived(Scope::RanksAndThreads, &cv.underlying_lock());
  Cells cells(2);  // 0: waiting, 1: woken
  constexpr int kPerRank = 3;
  const int total = kPerRank * rt.size();
  std::vector<std::thread> ts;
  for (int t = 0; t < kPerRank; ++t) {
    ts.emplace_back(reported([&] {
      std::unique_lock guard(cv);
      cells.add(0, 1);
      arrived.notify_all();
      EXPECT_TRUE(cv.wait(60s));
      cells.add(1, 1);
      arrived.notify_all();
    }));
  }
  if (rt.rank() == 0) {
    std::unique_lock guard(cv);
    // A waiter counted itself holding the lock, and wait() registers it before releasing
    // the lock: once all are counted, all are registered.
    ASSERT_TRUE(arrived.wait_for([&] { return cells.get(0) == total; }, 60s));
    cv.notify(2);
    ASSERT_TRUE(arrived.wait_for([&] { return cells.get(1) >= 2; }, 60s));
    // The woken ones queued for the lock before this thread (woken later) did: a third
    // waiter woken by mistake would have been counted already.
    EXPECT_EQ(cells.get(1), 2);
    cv.notify(0);  // nothing
    cv.notify_all();
    ASSERT_TRUE(arrived.wait_for([&] { return cells.get(1) == total; }, 60s));
  }
  for (auto& t : ts) t.join();
  cells.barrier();
  EXPECT_EQ(cells.get(1), total);
  cells.barrier();
}

TEST(ConditionAcross, WaitOrNotifyWithoutTheLockRaisesAndTimeoutsKeepTheLock) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Condition cv(Scope::Ranks);
  try {
    (void)cv.wait(10ms);
    ADD_FAILURE() << "wait without the lock did not throw";
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_TRUE(contains(e, "Condition::wait: the lock is not held by this thread")) << e.what();
  }
  try {
    cv.notify();
    ADD_FAILURE() << "notify without the lock did not throw";
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_TRUE(contains(e, "Condition::notify: the lock is not held by this thread")) << e.what();
  }
  EXPECT_THROW(cv.notify_all(), troupe::InvalidStateError);
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    // The own lock is an RLock: wait() releases every level and restores them.
    ASSERT_TRUE(cv.acquire());
    ASSERT_TRUE(cv.acquire(1s));
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(cv.wait(40ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 40ms);
    EXPECT_TRUE(cv.underlying_lock().held_by_this_thread());
    EXPECT_FALSE(cv.wait_for([] { return false; }, 20ms));
    cv.release();
    EXPECT_TRUE(cv.underlying_lock().held_by_this_thread());
    cv.release();
    EXPECT_FALSE(cv.underlying_lock().held_by_this_thread());
    EXPECT_THROW(cv.release(), troupe::InvalidStateError);
  }
  MPI_Barrier(c.comm);
  EXPECT_FALSE(cv.underlying_lock().locked());
  troupe::Lock threads_lock;
  EXPECT_THROW(troupe::Condition(Scope::Ranks, &threads_lock), troupe::ValueError);
  MPI_Barrier(c.comm);
}

TEST(ConditionAcross, ThreadScopeWorksWithoutARuntime) {
  troupe::Condition cv;  // Scope::Threads, own RLock
  bool ready = false;
  std::thread t([&] {
    std::lock_guard g(cv);
    ready = true;
    cv.notify();
  });
  {
    std::unique_lock g(cv);
    EXPECT_TRUE(cv.wait_for([&] { return ready; }, 60s));
  }
  t.join();
}

// ----------------------------------------------------------------------------- Sequential

TEST(SequentialAcross, RanksRunTheRegionInRankOrder) {
  troupe::Runtime rt(quiet());
  troupe::Sequential seq(Scope::Ranks);
  const int n = rt.size();
  Cells cells(1 + n);  // 0: next slot, 1..n: the log
  for (int round = 0; round < 3; ++round) {
    auto append = [&] { cells.put(1 + static_cast<int>(cells.add(0, 1)), rt.rank()); };
    if (round == 1) {
      troupe::Sequential::Turn turn(seq, 60s);
      append();
    } else {
      seq.run(append, 60s);
    }
    cells.barrier();
    if (rt.rank() == 0) {
      EXPECT_EQ(cells.get(0), n);
      for (int i = 0; i < n; ++i) {
        EXPECT_EQ(cells.get(1 + i), i) << "round " << round << ": slot " << i;
      }
      cells.put(0, 0);
    }
    cells.barrier();
  }
  EXPECT_EQ(seq.run([] { return 7; }, 60s), 7);
  cells.barrier();
}

TEST(SequentialAcross, BeginTimesOutWhileThePreviousRankHoldsItsTurnAndMisuseRaises) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Sequential seq(Scope::Ranks);
  EXPECT_THROW(seq.end(), troupe::InvalidStateError);
  if (rt.rank() == 0) seq.begin(60s);
  MPI_Barrier(c.comm);
  if (rt.rank() == 1) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      seq.begin(30ms);
      ADD_FAILURE() << "begin did not time out";
    } catch (const troupe::TimeoutError& e) {
      EXPECT_TRUE(contains(e, "Sequential::begin: rank 1 did not get its turn")) << e.what();
    }
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
  }
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    EXPECT_THROW(seq.begin(1s), troupe::InvalidStateError);
    seq.end();
  } else {
    seq.begin(60s);
    seq.end();
  }
  MPI_Barrier(c.comm);
  EXPECT_THROW((void)troupe::Sequential(Scope::Threads), troupe::ValueError);
  MPI_Barrier(c.comm);
}

}  // namespace
