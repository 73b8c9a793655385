#include "troupe/sync/lock_all.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>

#include "sync_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::test::run_threads;

template <class M>
bool is_free(M& m) {
  // Asked from another thread: a recursive mutex would say "free" to its owner.
  bool free = false;
  std::thread([&] {
    if (m.try_lock()) {
      free = true;
      m.unlock();
    }
  }).join();
  return free;
}

TEST(LockAll, GuardLocksAndUnlocksAll) {
  std::mutex a, b, c;
  {
    auto guard = troupe::lock_all(a, b, c);
    EXPECT_TRUE(guard.owns_lock());
    EXPECT_FALSE(is_free(a));
    EXPECT_FALSE(is_free(b));
    EXPECT_FALSE(is_free(c));
  }
  EXPECT_TRUE(is_free(a));
  EXPECT_TRUE(is_free(b));
  EXPECT_TRUE(is_free(c));
}

TEST(LockAll, EarlyUnlockAndMove) {
  std::mutex a, b;
  auto guard = troupe::lock_all(b, a);
  auto moved = std::move(guard);
  EXPECT_FALSE(guard.owns_lock());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_TRUE(static_cast<bool>(moved));
  moved.unlock();
  EXPECT_FALSE(moved.owns_lock());
  moved.unlock();  // idempotent
  EXPECT_TRUE(is_free(a));
  EXPECT_TRUE(is_free(b));

  auto g1 = troupe::lock_all(a);
  std::mutex c;
  auto g2 = troupe::lock_all(c);
  g1 = std::move(g2);  // releases a, takes over c
  EXPECT_TRUE(is_free(a));
  EXPECT_FALSE(is_free(c));
}

TEST(LockAll, MixedLockTypes) {
  std::mutex m;
  std::recursive_mutex r;
  std::timed_mutex t;
  std::shared_mutex s;
  {
    auto guard = troupe::lock_all(t, m, s, r);
    EXPECT_FALSE(is_free(m));
    EXPECT_FALSE(is_free(r));
    EXPECT_FALSE(is_free(t));
    EXPECT_FALSE(is_free(s));
  }
  EXPECT_TRUE(is_free(m) && is_free(r) && is_free(t) && is_free(s));
}

TEST(LockAll, DuplicateLockThrowsValueError) {
  std::mutex a, b;
  try {
    auto guard = troupe::lock_all(a, b, a);
    FAIL() << "no exception";
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("lock_all: the same lock was passed more than once"), std::string::npos);
  }
  EXPECT_TRUE(is_free(a));
  EXPECT_TRUE(is_free(b));
}

// Two (or more) threads take the same locks in opposite argument orders, 100k times each.
// Without a global order this deadlocks within a few thousand iterations; run_threads
// aborts with a message if it does not finish in time.
TEST(LockAll, OppositeOrdersNeverDeadlock) {
  for (int threads : {2, 4, 8}) {
    SCOPED_TRACE(threads);
    std::mutex a, b;
    long long counter = 0;  // protected by a and b together
    const int iterations = threads == 2 ? 100'000 : 20'000;
    run_threads(
        threads,
        [&](int i) {
          for (int k = 0; k < iterations; ++k) {
            auto guard = (i % 2 == 0) ? troupe::lock_all(a, b) : troupe::lock_all(b, a);
            ++counter;
          }
        },
        120s, "lock_all(a, b) vs lock_all(b, a)");
    EXPECT_EQ(counter, static_cast<long long>(threads) * iterations);
  }
}

TEST(LockAll, ThreeLocksAllPermutations) {
  std::mutex a, b, c;
  long long counter = 0;
  constexpr int kIterations = 10'000;
  run_threads(
      6,
      [&](int i) {
        for (int k = 0; k < kIterations; ++k) {
          switch (i) {
            case 0: {
              auto g = troupe::lock_all(a, b, c);
              ++counter;
              break;
            }
            case 1: {
              auto g = troupe::lock_all(a, c, b);
              ++counter;
              break;
            }
            case 2: {
              auto g = troupe::lock_all(b, a, c);
              ++counter;
              break;
            }
            case 3: {
              auto g = troupe::lock_all(b, c, a);
              ++counter;
              break;
            }
            case 4: {
              auto g = troupe::lock_all(c, a, b);
              ++counter;
              break;
            }
            default: {
              auto g = troupe::lock_all(c, b, a);
              ++counter;
              break;
            }
          }
        }
      },
      120s, "lock_all over three locks");
  EXPECT_EQ(counter, 6LL * kIterations);
}

// A lockable whose lock() throws: the locks taken before it are released.
struct ThrowingLock {
  void lock() { throw std::runtime_error("cannot lock"); }
  void unlock() noexcept {}
  bool try_lock_until(troupe::Clock::time_point) { throw std::runtime_error("cannot lock"); }
};

TEST(LockAll, ExceptionReleasesWhatWasTaken) {
  std::mutex a, b;
  ThrowingLock bad;
  EXPECT_THROW((void)troupe::lock_all(a, bad, b), std::runtime_error);
  EXPECT_TRUE(is_free(a));
  EXPECT_TRUE(is_free(b));
}

// A user-defined TimedLockable (std::mutex + std::condition_variable): try_lock_all_for
// accepts any type with lock(), unlock() and try_lock_until(steady_clock::time_point).
class CvTimedMutex {
 public:
  void lock() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [this] { return !locked_; });
    locked_ = true;
  }
  bool try_lock() {
    std::lock_guard lock(m_);
    if (locked_) return false;
    locked_ = true;
    return true;
  }
  bool try_lock_until(troupe::Clock::time_point tp) {
    std::unique_lock lock(m_);
    if (!cv_.wait_until(lock, tp, [this] { return !locked_; })) return false;
    locked_ = true;
    return true;
  }
  void unlock() {
    {
      std::lock_guard lock(m_);
      locked_ = false;
    }
    cv_.notify_one();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool locked_ = false;
};

template <class M>
class TryLockAllFor : public testing::Test {};
using TimedMutexTypes = testing::Types<std::timed_mutex, CvTimedMutex>;
TYPED_TEST_SUITE(TryLockAllFor, TimedMutexTypes);

TYPED_TEST(TryLockAllFor, SucceedsWhenFree) {
  TypeParam a, b;
  auto guard = troupe::try_lock_all_for(1s, b, a);
  ASSERT_TRUE(guard.has_value());
  EXPECT_TRUE(guard->owns_lock());
  EXPECT_FALSE(is_free(a));
  guard.reset();
  EXPECT_TRUE(is_free(a));
  EXPECT_TRUE(is_free(b));
}

TYPED_TEST(TryLockAllFor, TimesOutAndHoldsNothing) {
  TypeParam a, b;
  std::latch held(2);
  std::latch done(2);
  std::jthread holder([&] {
    std::lock_guard lock(b);
    held.arrive_and_wait();
    done.arrive_and_wait();
  });
  held.arrive_and_wait();
  const auto start = std::chrono::steady_clock::now();
  auto guard = troupe::try_lock_all_for(20ms, a, b);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_FALSE(guard.has_value());
  EXPECT_TRUE(is_free(a));  // the lock it did get was released
  EXPECT_FALSE(troupe::try_lock_all_for(0s, b, a).has_value());
  done.arrive_and_wait();
  holder.join();
  EXPECT_TRUE(troupe::try_lock_all_for(0s, b, a).has_value());
}

TYPED_TEST(TryLockAllFor, NegativeTimeoutAndDuplicatesThrow) {
  TypeParam a;
  EXPECT_THROW((void)troupe::try_lock_all_for(-1ms, a), troupe::ValueError);
  EXPECT_THROW((void)troupe::try_lock_all_for(1s, a, a), troupe::ValueError);
  EXPECT_TRUE(is_free(a));
}

TYPED_TEST(TryLockAllFor, ExceptionReleasesWhatWasTaken) {
  TypeParam a, b;
  ThrowingLock bad;
  EXPECT_THROW((void)troupe::try_lock_all_for(1s, a, bad, b), std::runtime_error);
  EXPECT_TRUE(is_free(a));
  EXPECT_TRUE(is_free(b));
}

TYPED_TEST(TryLockAllFor, OppositeOrdersNeverDeadlock) {
  TypeParam a, b;
  long long counter = 0;
  constexpr int kIterations = 20'000;
  run_threads(
      2,
      [&](int i) {
        for (int k = 0; k < kIterations; ++k) {
          auto guard = (i == 0) ? troupe::try_lock_all_for(30s, a, b) : troupe::try_lock_all_for(30s, b, a);
          ASSERT_TRUE(guard.has_value());
          ++counter;
        }
      },
      120s, "try_lock_all_for(a, b) vs (b, a)");
  EXPECT_EQ(counter, 2LL * kIterations);
}

}  // namespace
