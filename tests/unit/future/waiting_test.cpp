// The one wait loop (troupe/core/detail/wait.hpp): the progress-source registry, WaitWord,
// and that waiting threads drive every registered source. Deterministic: gates and bounded
// waits only.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/config.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/future/future.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::Deadline;
using troupe::detail::add_progress_source;
using troupe::detail::drive_progress;
using troupe::detail::has_progress_sources;
using troupe::detail::ProgressSource;
using troupe::detail::remove_progress_source;
using troupe::detail::WaitWord;

struct Counter final : ProgressSource {
  std::atomic<int> polls{0};
  bool try_progress() noexcept override {
    polls.fetch_add(1);
    return false;
  }
};

// Registers on construction, unregisters on destruction (also when a test fails).
struct Registered {
  explicit Registered(ProgressSource* s) : src(s) { add_progress_source(s); }
  ~Registered() { remove_progress_source(src); }
  ProgressSource* src;
};

TEST(ProgressSources, NoneRegisteredMeansNoProgress) {
  EXPECT_FALSE(has_progress_sources());
  EXPECT_FALSE(drive_progress());
}

TEST(ProgressSources, EverySourceIsPolledOnce) {
  Counter a;
  Counter b;
  {
    Registered ra(&a);
    Registered rb(&b);
    EXPECT_TRUE(has_progress_sources());
    EXPECT_FALSE(drive_progress());
    EXPECT_EQ(a.polls.load(), 1);
    EXPECT_EQ(b.polls.load(), 1);
  }
  EXPECT_FALSE(has_progress_sources());
  EXPECT_FALSE(drive_progress());
  EXPECT_EQ(a.polls.load(), 1) << "a removed source is not polled";
}

TEST(ProgressSources, AddingTwiceThrows) {
  Counter a;
  Registered ra(&a);
  EXPECT_THROW(add_progress_source(&a), troupe::InvalidStateError);
  EXPECT_THROW(add_progress_source(nullptr), troupe::InvalidStateError);
}

TEST(ProgressSources, RemoveWaitsOutACallInFlight) {
  struct Blocking final : ProgressSource {
    std::latch entered{1};
    std::atomic<bool> release{false};
    std::atomic<bool> returned{false};
    bool try_progress() noexcept override {
      if (!returned.load()) {
        entered.count_down();
        while (!release.load()) std::this_thread::yield();
        returned.store(true);
      }
      return true;
    }
  } src;
  add_progress_source(&src);
  std::thread poller([] { (void)drive_progress(); });
  src.entered.wait();  // the poller is inside try_progress
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    remove_progress_source(&src);
    removed.store(true);
  });
  // remove unregisters first (has_progress_sources() turns false), then waits for the call
  // in flight: it must still be inside remove_progress_source.
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (has_progress_sources() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  ASSERT_FALSE(has_progress_sources());
  EXPECT_FALSE(removed.load()) << "remove_progress_source returned while try_progress still ran";
  src.release.store(true);
  remover.join();
  EXPECT_TRUE(removed.load());
  EXPECT_TRUE(src.returned.load()) << "remove_progress_source returned while try_progress still ran";
  poller.join();
}

TEST(ProgressSources, AnOutsideWaiterDrivesEverySource) {
  // Two sources ("two executors"): each completes its own promise on its third poll; a
  // thread waiting on both futures is the only one polling, so the wait itself drives them.
  struct Completing final : ProgressSource {
    troupe::Promise<int> promise;
    std::atomic<int> polls{0};
    int value = 0;
    bool try_progress() noexcept override {
      if (polls.fetch_add(1) + 1 == 3) {
        promise.set_result(value);
        return true;
      }
      return false;
    }
  };
  Completing a;
  Completing b;
  a.value = 1;
  b.value = 2;
  auto fa = a.promise.get_future();
  auto fb = b.promise.get_future();
  Registered ra(&a);
  Registered rb(&b);
  EXPECT_EQ(fa.result(30s) + fb.result(30s), 3);
}

TEST(WaitWord, NotifyWakesASleeper) {
  WaitWord word;
  std::atomic<bool> flag{false};
  std::thread setter([&] {
    flag.store(true);
    word.notify_all();
  });
  EXPECT_TRUE(word.wait([&] { return flag.load(); }, Deadline::after(30s, "test")));
  setter.join();
}

TEST(WaitWord, DeadlinePassesWithoutNotify) {
  WaitWord word;
  EXPECT_FALSE(word.wait([] { return false; }, Deadline::after(5ms, "test")));
  EXPECT_TRUE(word.wait([] { return true; }, Deadline::after(0s, "test"))) << "a true condition wins";
}

TEST(WaitWord, StopRequestEndsASleepingWaitNamingTheApi) {
  WaitWord word;
  std::stop_source stop;
  std::thread stopper([&] { stop.request_stop(); });
  auto token = stop.get_token();
  try {
    (void)word.wait([] { return false; }, Deadline::after(30s, "test"), &token, "MyApi::wait");
    FAIL() << "no CancelledError";
  } catch (const troupe::CancelledError& e) {
    EXPECT_NE(std::string(e.what()).find("MyApi::wait"), std::string::npos) << e.what();
  }
  stopper.join();
}

TEST(WaitWord, ManyNotifiersManyWaiters) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  WaitWord word;
  std::atomic<int> value{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Thread t waits for value % kThreads == t, then increments it: a token ring.
      for (int r = 0; r < kRounds; ++r) {
        ASSERT_TRUE(word.wait([&] { return value.load() % kThreads == t; }, Deadline::after(30s, "test")));
        value.fetch_add(1);
        word.notify_all();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(value.load(), kThreads * kRounds);
}

}  // namespace

// The policy switch: where cores are shared, waits have no spin window (they sleep at once),
// but a waiter that can drive progress still does so while that finds work.
namespace {
struct SharedCores {
  explicit SharedCores(bool on) { troupe::detail::set_cores_shared(on); }
  ~SharedCores() { troupe::detail::reset_cores_shared(); }
};
}  // namespace

TEST(SharedCores, TheSpinWindowIsZeroOnlyWhileCoresAreShared) {
  {
    SharedCores shared(true);
    EXPECT_TRUE(troupe::detail::cores_shared());
    EXPECT_EQ(troupe::detail::effective_spin(std::chrono::microseconds(50)), std::chrono::nanoseconds(0));
  }
  SharedCores not_shared(false);
  EXPECT_FALSE(troupe::detail::cores_shared());
  EXPECT_EQ(troupe::detail::effective_spin(std::chrono::microseconds(50)), std::chrono::microseconds(50));
  EXPECT_EQ(troupe::detail::effective_spin(troupe::detail::kWaitSpin), troupe::detail::kWaitSpin);
}

TEST(SharedCores, ResetFallsBackToTheKnob) {
  troupe::detail::set_cores_shared(true);
  troupe::detail::reset_cores_shared();
  // TROUPE_SHARED_CORES is unset in the unit tests' environment: not shared.
  EXPECT_EQ(troupe::detail::cores_shared(), troupe::settings().shared_cores.value_or(0) == 1);
}

TEST(SharedCores, AWaiterStillDrivesProgressUntilItsConditionHolds) {
  SharedCores shared(true);
  // Each poll is useful; the fifth makes the condition true.
  struct Steps final : ProgressSource {
    std::atomic<int> polls{0};
    std::atomic<bool> done{false};
    WaitWord* word = nullptr;
    bool try_progress() noexcept override {
      if (polls.fetch_add(1) + 1 == 5) {
        done.store(true);
        word->notify_all();
      }
      return !done.load();
    }
  } src;
  WaitWord w;
  src.word = &w;
  Registered reg(&src);
  EXPECT_TRUE(w.wait([&] { return src.done.load(); }, Deadline::after(std::chrono::seconds(30), "test")));
  EXPECT_GE(src.polls.load(), 5);
}

TEST(SharedCores, ANotifiedSleeperWakesAndADeadlineStillEndsAWait) {
  SharedCores shared(true);
  WaitWord w;
  std::atomic<bool> flag{false};
  std::thread t([&] {
    flag.store(true);
    w.notify_all();
  });
  EXPECT_TRUE(w.wait([&] { return flag.load(); }, Deadline::after(std::chrono::seconds(30), "test")));
  t.join();
  EXPECT_FALSE(w.wait([] { return false; }, Deadline::after(std::chrono::milliseconds(5), "test")));
}
