// troupe::SharedArray and troupe::SharedValue across the ranks of a node: visibility of plain
// stores after barrier() and under the lock, exact sums of concurrent atomics and of locked
// read-modify-writes from every rank and thread, timed lock attempts against a holder on
// another rank, the errors (length mismatch, index, use after free, no lock), and many
// windows made and freed in a row (leaks are checked by the ASan stage).
#include "troupe/window/shared.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/runtime.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::SharedArray;
using troupe::SharedOptions;
using troupe::SharedValue;
using troupe_test::Comm;
using troupe_test::quiet;

namespace {

// The rank that writes: another rank than 0 when there is one.
int writer(const troupe::Runtime& rt) { return rt.node_size() > 1 ? 1 : 0; }

template <class Fn>
void on_threads(int n, Fn fn) {
  std::vector<std::thread> ts;
  for (int t = 0; t < n; ++t) ts.emplace_back([&fn, t] { fn(t); });
  for (auto& t : ts) t.join();
}

}  // namespace

TEST(Shared, WriteByOneRankIsVisibleAfterBarrier) {
  troupe::Runtime rt(quiet());
  constexpr std::size_t kN = 1000;
  SharedArray<std::int64_t> a(kN);
  SharedValue<double> v(0.0);
  EXPECT_EQ(a.size(), kN);
  for (std::size_t i = 0; i < kN; ++i) ASSERT_EQ(a[i], 0);
  EXPECT_EQ(v.load(), 0.0);
  a.barrier(60s);  // nobody writes before every rank has read the zeros
  if (rt.node_rank() == writer(rt)) {
    auto s = a.span();
    for (std::size_t i = 0; i < kN; ++i) s[i] = static_cast<std::int64_t>(i) * 7 + 1;
    v.value() = 2.5;
  }
  a.barrier(60s);
  for (std::size_t i = 0; i < kN; ++i) ASSERT_EQ(a[i], static_cast<std::int64_t>(i) * 7 + 1) << i;
  EXPECT_EQ(v.value(), 2.5);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 64, 0U);
  a.barrier(60s);
}

TEST(Shared, InitialValuesComeFromNodeRankZero) {
  troupe::Runtime rt(quiet());
  std::vector<int> init(10);
  for (int i = 0; i < 10; ++i) init[static_cast<std::size_t>(i)] = i + 100 * rt.node_rank();
  SharedArray<int> a{std::span<const int>(init)};
  SharedArray<float> f(5, 1.5F);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a[static_cast<std::size_t>(i)], i);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(f[i], 1.5F);
  a.barrier(60s);
}

TEST(Shared, WriteUnderTheLockIsVisibleToTheNextHolder) {
  troupe::Runtime rt(quiet());
  Comm c;
  SharedArray<std::int64_t> a(64);
  if (rt.node_rank() == writer(rt)) {
    std::lock_guard<troupe::SharedLock> g(a.get_lock());
    for (std::size_t i = 0; i < 64; ++i) a[i] = 1000 + static_cast<std::int64_t>(i);
  }
  MPI_Barrier(c.comm);  // sequences the phases only; the lock orders the memory
  a.with_lock([&] {
    for (std::size_t i = 0; i < 64; ++i) EXPECT_EQ(a[i], 1000 + static_cast<std::int64_t>(i));
  });
  MPI_Barrier(c.comm);
}

TEST(Shared, WriteIsVisibleAfterSyncAndAnAtomicFlag) {
  troupe::Runtime rt(quiet());
  constexpr std::size_t kN = 4096;
  SharedArray<std::int32_t> data(kN, SharedOptions{.lock = false});
  SharedArray<std::int32_t> flag(1, SharedOptions{.lock = false});
  if (rt.node_rank() == writer(rt)) {
    for (std::size_t i = 0; i < kN; ++i) data[i] = static_cast<std::int32_t>(3 * i + 5);
    data.sync();
    flag.store(0, 1);
  } else {
    // Waits for exactly the flag (bounded), then reads the data.
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (flag.load(0) == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    ASSERT_EQ(flag.load(0), 1);
    data.sync();
  }
  for (std::size_t i = 0; i < kN; ++i) ASSERT_EQ(data[i], static_cast<std::int32_t>(3 * i + 5)) << i;
  data.barrier(60s);
}

TEST(Shared, ConcurrentAtomicsFromRanksAndThreadsSumExactly) {
  troupe::Runtime rt(quiet());
  constexpr int kThreads = 3;
  constexpr int kRounds = 4000;
  SharedArray<std::int64_t> a(4);
  SharedValue<double> d(0.0);
  SharedArray<std::uint32_t> cas(1);
  on_threads(kThreads, [&](int) {
    for (int i = 0; i < kRounds; ++i) {
      a.fetch_add(0, 1);
      a.fetch_add(3, 2);
      d.fetch_add(0.5);
      std::uint32_t seen = cas.load(0);
      while (!cas.compare_exchange(0, seen, seen + 1)) {
      }
    }
  });
  a.barrier(60s);
  const std::int64_t total = std::int64_t{kThreads} * kRounds * rt.node_size();
  EXPECT_EQ(a.load(0), total);
  EXPECT_EQ(a.load(3), 2 * total);
  EXPECT_EQ(a.load(1), 0);
  EXPECT_EQ(d.load(), 0.5 * static_cast<double>(total));
  EXPECT_EQ(cas.load(0), static_cast<std::uint32_t>(total));
  a.barrier(60s);  // every rank has read before the store below
  if (rt.node_rank() == writer(rt)) a.store(1, 42);
  a.barrier(60s);
  EXPECT_EQ(a.load(1), 42);
  a.barrier(60s);
}

TEST(Shared, TheLockPreventsLostUpdates) {
  troupe::Runtime rt(quiet());
  constexpr int kThreads = 3;
  constexpr int kRounds = 1500;
  SharedArray<std::int64_t> a(2);
  SharedValue<std::int64_t> v(0);
  on_threads(kThreads, [&](int t) {
    for (int i = 0; i < kRounds; ++i) {
      if (t % 2 == 0) {
        std::lock_guard<troupe::SharedLock> g(a.get_lock());
        // A plain read-modify-write, split so that an unlocked race would lose updates.
        const std::int64_t x = a[0];
        a[0] = x + 1;
      } else {
        ASSERT_TRUE(a.get_lock().acquire(60s));
        const std::int64_t x = a[0];
        a[0] = x + 1;
        a.get_lock().release();
      }
      v.with_lock([&] { v.value() = v.value() + 1; });
    }
  });
  a.barrier(60s);
  const std::int64_t total = std::int64_t{kThreads} * kRounds * rt.node_size();
  EXPECT_EQ(a.with_lock([&] { return a[0]; }), total);
  EXPECT_EQ(v.load(), total);
  EXPECT_FALSE(a.get_lock().locked());
  a.barrier(60s);
}

TEST(Shared, TimedAcquireFailsWhileAnotherRankHoldsItThenSucceeds) {
  troupe::Runtime rt(quiet());
  Comm c;
  SharedArray<int> a(1);
  troupe::SharedLock& lock = a.get_lock();
  if (rt.node_rank() == 0) {
    ASSERT_TRUE(lock.acquire(10s));
    EXPECT_TRUE(lock.held_by_me());
    // Not recursive: a second acquire by the holder is an error, not a deadlock.
    EXPECT_THROW(lock.acquire(1s), troupe::InvalidStateError);
  }
  MPI_Barrier(c.comm);
  // Every rank checks from a thread of its own (at rank 0 another thread than the holder).
  std::thread checker([&] {
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(lock.held_by_me());
    EXPECT_FALSE(lock.try_lock());
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(lock.acquire(150ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 140ms);
    std::stop_source stop;
    stop.request_stop();
    EXPECT_THROW(lock.acquire(troupe::Deadline::after(10s, "test"), stop.get_token()), troupe::CancelledError);
    try {
      lock.release();
      ADD_FAILURE() << "release by a non-holder did not raise";
    } catch (const troupe::InvalidStateError& e) {
      EXPECT_NE(std::string(e.what()).find("held by another thread"), std::string::npos) << e.what();
    }
  });
  checker.join();
  MPI_Barrier(c.comm);
  if (rt.node_rank() == 0) lock.release();
  // Everyone now takes it in turn, each waiting for the others (a wake across processes).
  std::thread taker([&] {
    ASSERT_TRUE(lock.acquire(60s));
    a[0] += 1;
    lock.release();
  });
  taker.join();
  MPI_Barrier(c.comm);
  EXPECT_EQ(a.with_lock([&] { return a[0]; }), rt.node_size());
  EXPECT_THROW(lock.release(), troupe::InvalidStateError);  // not held
  MPI_Barrier(c.comm);
}

TEST(Shared, WaitersOnOtherRanksAreWokenByTheRelease) {
  troupe::Runtime rt(quiet());
  Comm c;
  SharedArray<int> a(2);  // [0] counted under the lock, [1] waiters announced
  auto& lock = a.get_lock();
  if (rt.node_rank() == 0) {
    ASSERT_TRUE(lock.acquire(10s));
  }
  MPI_Barrier(c.comm);
  // The others announce that they are about to wait, then wait; the holder releases once
  // every one has announced it (most are asleep on the shared futex word by then).
  if (rt.node_rank() == 0) {
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (a.load(1) < rt.node_size() - 1 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    EXPECT_EQ(a.load(1), rt.node_size() - 1);
    lock.release();
  } else {
    a.fetch_add(1, 1);
    ASSERT_TRUE(lock.acquire(60s));
    a[0] += 1;
    lock.release();
  }
  MPI_Barrier(c.comm);
  EXPECT_EQ(a.with_lock([&] { return a[0]; }), rt.node_size() - 1);
  MPI_Barrier(c.comm);
}

TEST(Shared, LengthMismatchRaisesValueErrorOnEveryRank) {
  troupe::Runtime rt(quiet());
  if (rt.node_size() < 2) GTEST_SKIP() << "needs two ranks on the node";
  try {
    SharedArray<int> a(10 + static_cast<std::size_t>(rt.node_rank()));
    ADD_FAILURE() << "no ValueError";
  } catch (const troupe::ValueError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("SharedArray"), std::string::npos) << m;
    EXPECT_NE(m.find("length"), std::string::npos) << m;
  }
  // The runtime is still usable: a well-formed array works.
  SharedArray<int> ok(10);
  ok.fetch_add(9, 1);
  ok.barrier(60s);
  EXPECT_EQ(ok.load(9), rt.node_size());
}

TEST(Shared, OutOfRangeIndexRaisesIndexError) {
  troupe::Runtime rt(quiet());
  SharedArray<int> a(10);
  try {
    (void)a.at(10);
    ADD_FAILURE() << "no IndexError";
  } catch (const troupe::IndexError& e) {
    EXPECT_EQ(std::string(e.what()), "SharedArray::at: index 10 out of range for length 10");
  }
  EXPECT_THROW(a.fetch_add(11, 1), troupe::IndexError);
  EXPECT_THROW((void)a.load(1000), troupe::IndexError);
  int expected = 0;
  EXPECT_THROW(a.compare_exchange(10, expected, 1), troupe::IndexError);
  EXPECT_NO_THROW((void)a.at(9));
  SharedArray<int> empty(0);
  EXPECT_EQ(empty.size(), 0U);
  EXPECT_THROW((void)empty.at(0), troupe::IndexError);
  a.barrier(60s);
}

TEST(Shared, UseAfterFreeRaisesInvalidStateError) {
  troupe::Runtime rt(quiet());
  SharedArray<int> a(10);
  SharedValue<double> v(1.0);
  auto& lock = a.get_lock();
  a.free(60s);
  v.free();
  EXPECT_TRUE(a.freed());
  EXPECT_THROW((void)a.span(), troupe::InvalidStateError);
  EXPECT_THROW((void)a.data(), troupe::InvalidStateError);
  EXPECT_THROW((void)a.at(0), troupe::InvalidStateError);
  EXPECT_THROW(a.fetch_add(0, 1), troupe::InvalidStateError);
  EXPECT_THROW((void)a.get_lock(), troupe::InvalidStateError);
  EXPECT_THROW(lock.acquire(1s), troupe::InvalidStateError);
  EXPECT_THROW(a.sync(), troupe::InvalidStateError);
  EXPECT_THROW(a.barrier(1s), troupe::InvalidStateError);
  EXPECT_THROW((void)v.value(), troupe::InvalidStateError);
  EXPECT_THROW((void)v.load(), troupe::InvalidStateError);
  try {
    v.store(2.0);
    ADD_FAILURE() << "no InvalidStateError";
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_NE(std::string(e.what()).find("SharedValue::store"), std::string::npos) << e.what();
  }
  try {
    (void)a.span();
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_NE(std::string(e.what()).find("SharedArray::span"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(a.free(60s));  // idempotent
  EXPECT_EQ(a.size(), 10U);
}

TEST(Shared, GetLockWithoutLockRaises) {
  troupe::Runtime rt(quiet());
  SharedArray<int> raw(4, SharedOptions{.lock = false});
  SharedValue<int> rawv(0, SharedOptions{.lock = false});
  try {
    (void)raw.get_lock();
    ADD_FAILURE() << "no InvalidStateError";
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_NE(std::string(e.what()).find("lock=false"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)rawv.get_lock(), troupe::InvalidStateError);
  EXPECT_THROW(raw.with_lock([] {}), troupe::InvalidStateError);
  raw.fetch_add(0, 1);  // the atomics need no lock
  raw.barrier(60s);
  EXPECT_EQ(raw.load(0), rt.node_size());
}

TEST(Shared, NegativeTimeoutRaisesValueError) {
  troupe::Runtime rt(quiet());
  SharedArray<int> a(1);
  EXPECT_THROW(a.get_lock().acquire(-1s), troupe::ValueError);
  EXPECT_THROW(a.barrier(-1s), troupe::ValueError);
  a.barrier(60s);
}

TEST(Shared, StructValueUnderTheLock) {
  struct Point {
    double x;
    double y;
    int hits;
  };
  troupe::Runtime rt(quiet());
  constexpr int kRounds = 300;
  SharedValue<Point> p(Point{1.0, 2.0, 0});
  EXPECT_EQ(p.load().x, 1.0);
  p.barrier(60s);  // every rank has read the initial value before anyone changes it
  on_threads(2, [&](int) {
    for (int i = 0; i < kRounds; ++i) {
      p.with_lock([&] {
        Point q = p.value();
        q.hits += 1;
        q.x += 1.0;
        p.value() = q;
      });
    }
  });
  p.barrier(60s);
  const Point q = p.with_lock([&] { return p.value(); });
  EXPECT_EQ(q.hits, 2 * kRounds * rt.node_size());
  EXPECT_EQ(q.x, 1.0 + 2.0 * kRounds * rt.node_size());
  EXPECT_EQ(q.y, 2.0);
  p.barrier(60s);
}

TEST(Shared, ManyArraysMadeAndFreedInARow) {
  troupe::Runtime rt(quiet());
  for (int i = 0; i < 200; ++i) {
    SharedArray<std::int64_t> a(static_cast<std::size_t>(1 + i % 7) * 512);
    a.fetch_add(0, 1);
    if (i % 2 == 0) {
      a.barrier(60s);
      ASSERT_EQ(a.load(0), rt.node_size());
      a.free(60s);
    }  // the odd ones are freed by the destructor
  }
  // And a few left for the Runtime's release to free.
  SharedArray<int> left1(100);
  SharedValue<int> left2(0);
  (void)left1;
  (void)left2;
}
