// Future and Promise semantics, without a pool: every state built by hand.
#include "troupe/future/future.hpp"

#include "troupe/future/wait.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using troupe::Future;
using troupe::Promise;

TEST(Future, DefaultHasNoStateAndSaysSo) {
  Future<int> f;
  EXPECT_FALSE(f.valid());
  EXPECT_THROW((void)f.done(), troupe::InvalidStateError);
  try {
    (void)f.result();
    FAIL();
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_NE(std::string(e.what()).find("Future::result"), std::string::npos);
  }
}

TEST(Future, PendingThenFinished) {
  Promise<int> p;
  auto f = p.get_future();
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.running());
  EXPECT_TRUE(p.set_running_or_notify_cancel());
  EXPECT_TRUE(f.running());
  EXPECT_FALSE(f.cancel()) << "a running future cannot be cancelled";
  p.set_result(42);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 42);
  EXPECT_EQ(f.result(), 42) << "result() can be called again";
  EXPECT_EQ(f.get(), 42);
  EXPECT_EQ(f.exception(), nullptr);
}

// The thread that awaited a future destroys its Promise as soon as the value is visible,
// while set_result (or set_exception) is still waking waiters on another thread: the call
// holds its own reference, so the state outlives it (ThreadSanitizer and AddressSanitizer
// report a use after free otherwise; scripts/test.sh runs this under both).
TEST(Promise, TheWaiterMayDestroyThePromiseWhileItIsBeingSet) {
  for (int round = 0; round < 500; ++round) {
    auto p = std::make_unique<troupe::Promise<int>>();
    auto f = p->get_future();
    const bool fail = round % 2 == 1;
    std::thread setter([&p, fail] {
      if (fail) {
        p->set_exception(std::make_exception_ptr(std::runtime_error("x")));
      } else {
        p->set_result(7);
      }
    });
    EXPECT_TRUE(f.wait_for(std::chrono::seconds(60)));
    if (fail) {
      EXPECT_THROW(f.result(), std::runtime_error);
    } else {
      EXPECT_EQ(f.result(), 7);
    }
    f = troupe::Future<int>();  // the last handle besides the promise's
    p.reset();                  // while the setter may still be inside set_result
    setter.join();
  }
}

TEST(Future, ResultTimeoutThrowsTimeoutError) {
  Promise<int> p;
  auto f = p.get_future();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW((void)f.result(20ms), troupe::TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  EXPECT_THROW((void)f.exception(1ms), troupe::TimeoutError);
  EXPECT_FALSE(f.wait_for(1ms));
  p.set_result(1);
  EXPECT_TRUE(f.wait_for(0ms));
}

TEST(Future, NegativeTimeoutIsValueError) {
  Promise<int> p;
  auto f = p.get_future();
  try {
    (void)f.result(-1s);
    FAIL();
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("timeout must be >= 0"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)f.wait_for(-5ms), troupe::ValueError);
}

TEST(Future, CancelPendingSucceedsAndResultThrowsCancelled) {
  Promise<int> p;
  auto f = p.get_future();
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancel()) << "cancel of a cancelled future returns true (Python)";
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_THROW((void)f.result(), troupe::CancelledError);
  EXPECT_THROW((void)f.exception(), troupe::CancelledError);
  EXPECT_FALSE(p.set_running_or_notify_cancel());
  EXPECT_THROW(p.set_result(1), troupe::InvalidStateError);
}

TEST(Future, CancelFinishedReturnsFalse) {
  auto f = troupe::make_ready_future(3);
  EXPECT_FALSE(f.cancel());
  EXPECT_FALSE(f.cancelled());
}

TEST(Future, ExceptionIsRethrownAsItself) {
  Promise<std::string> p;
  auto f = p.get_future();
  p.set_exception(std::make_exception_ptr(std::out_of_range("index 7")));
  EXPECT_THROW((void)f.result(), std::out_of_range);
  ASSERT_NE(f.exception(), nullptr);
  EXPECT_THROW(std::rethrow_exception(f.exception()), std::out_of_range);
  EXPECT_THROW(p.set_exception(std::make_exception_ptr(std::runtime_error("x"))), troupe::InvalidStateError);
  EXPECT_THROW(p.set_exception(nullptr), troupe::ValueError);
}

TEST(Future, VoidFuture) {
  Promise<void> p;
  auto f = p.get_future();
  p.set_result();
  f.result();
  EXPECT_TRUE(f.done());
  auto r = troupe::make_ready_future();
  EXPECT_TRUE(r.done());
}

TEST(Future, CallbacksRunInOrderOfAddition) {
  Promise<int> p;
  auto f = p.get_future();
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) f.add_done_callback([&order, i](const Future<int>&) { order.push_back(i); });
  EXPECT_TRUE(order.empty());
  p.set_result(1);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Future, CallbackAddedAfterCompletionRunsAtOnce) {
  auto f = troupe::make_ready_future(5);
  int seen = 0;
  f.add_done_callback([&](const Future<int>& g) { seen = g.result(); });
  EXPECT_EQ(seen, 5);
  bool plain = false;
  f.add_done_callback([&] { plain = true; });
  EXPECT_TRUE(plain);
}

TEST(Future, CallbackRunsOnCancel) {
  Promise<int> p;
  auto f = p.get_future();
  bool saw_cancel = false;
  f.add_done_callback([&](const Future<int>& g) { saw_cancel = g.cancelled(); });
  f.cancel();
  EXPECT_TRUE(saw_cancel);
}

TEST(Future, ThrowingCallbackDoesNotStopOthers) {
  Promise<int> p;
  auto f = p.get_future();
  int ran = 0;
  f.add_done_callback([&] {
    ++ran;
    throw std::runtime_error("callback failure (expected in this test)");
  });
  f.add_done_callback([&] { ++ran; });
  p.set_result(1);
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(f.result(), 1);
}

TEST(Future, ThenChainsValuesAndPropagatesErrors) {
  Promise<int> p;
  auto f = p.get_future();
  auto g = f.then([](int x) { return x * 2; }).then([](int x) { return std::to_string(x); });
  auto h = f.then([](const Future<int>& src) { return src.result() + 1; });
  p.set_result(21);
  EXPECT_EQ(g.result(), "42");
  EXPECT_EQ(h.result(), 22);

  Promise<int> q;
  bool called = false;
  auto e = q.get_future().then([&](int) {
    called = true;
    return 0;
  });
  q.set_exception(std::make_exception_ptr(std::invalid_argument("bad")));
  EXPECT_THROW((void)e.result(), std::invalid_argument);
  EXPECT_FALSE(called);

  Promise<int> c;
  auto cf = c.get_future();
  auto after_cancel = cf.then([](int x) { return x; });
  cf.cancel();
  EXPECT_THROW((void)after_cancel.result(), troupe::CancelledError);

  auto v = troupe::make_ready_future().then([] { return 7; });
  EXPECT_EQ(v.result(), 7);
}

TEST(Future, ResultWakesWaiterInAnotherThread) {
  for (int round = 0; round < 200; ++round) {
    Promise<int> p;
    auto f = p.get_future();
    std::latch started(1);
    std::thread t([&] {
      started.count_down();
      EXPECT_EQ(f.result(5s), round);
    });
    started.wait();
    p.set_result(round);
    t.join();
  }
}

TEST(Future, TokenEndsWaitWithCancelledError) {
  Promise<int> p;
  auto f = p.get_future();
  troupe::CancellationSource src;
  std::thread stopper([&] {
    std::this_thread::sleep_for(10ms);
    src.request_stop();
  });
  EXPECT_THROW((void)f.result(5s, src.get_token()), troupe::CancelledError);
  stopper.join();
  EXPECT_FALSE(f.done()) << "stopping a wait does not cancel the future";
}

TEST(Future, ManyWaitersAllWake) {
  Promise<int> p;
  auto f = p.get_future();
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  std::latch ready(8);
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&] {
      ready.count_down();
      if (f.result(5s) == 9) ok.fetch_add(1);
    });
  }
  ready.wait();
  p.set_result(9);
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 8);
}

// result() of an rvalue future returns the value itself (issue 7: a reference into the
// temporary's state was read after the state was freed, a heap use-after-free under ASan).
TEST(Future, ResultOfAnRvalueFutureIsAValue) {
  EXPECT_TRUE((std::is_same_v<decltype(std::declval<Future<std::vector<int>>>().result()), std::vector<int>>));
  EXPECT_TRUE((std::is_same_v<decltype(std::declval<Future<std::vector<int>>&>().result()), const std::vector<int>&>));
  EXPECT_TRUE((std::is_same_v<decltype(std::declval<Future<int>>().result(1s)), int>));
  EXPECT_TRUE((std::is_same_v<decltype(std::declval<Future<void>>().get()), void>));
  auto make = [] {
    Promise<std::vector<int>> p;
    p.set_result(std::vector<int>{1, 2, 3});
    return p.get_future();
  };
  int sum = 0;
  for (int x : make().result()) sum += x;  // the temporary future dies before the loop body
  EXPECT_EQ(sum, 6);
  EXPECT_EQ(make().result(1s).size(), 3u);
  EXPECT_EQ(make().get().size(), 3u);
}

TEST(Future, RvalueResultCopiesWhileOtherHandlesShareTheState) {
  Promise<std::vector<int>> p;
  p.set_result(std::vector<int>{4, 5});
  Future<std::vector<int>> f = p.get_future();
  Future<std::vector<int>> g = f;
  EXPECT_EQ(std::move(g).result(), (std::vector<int>{4, 5}));
  EXPECT_EQ(f.result(), (std::vector<int>{4, 5})) << "another handle still reads the value";
  Promise<std::unique_ptr<int>> q;
  q.set_result(std::make_unique<int>(9));
  Future<std::unique_ptr<int>> only = q.get_future();
  std::unique_ptr<int> v = std::move(only).result();  // move-only: moved out
  EXPECT_EQ(*v, 9);
}

// A callback (add_done_callback or then) on a future whose promise is dropped unset must
// not keep that future's state alive (issue 7: the callback held a copy of the future, a
// cycle that LeakSanitizer reported in the as_completed / wait / when_any tests).
TEST(Future, CallbacksOfAnAbandonedFutureDoNotKeepItAlive) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  {
    Promise<int> p;
    p.get_future().add_done_callback([token](const Future<int>&) {});
    p.get_future().add_done_callback([token] {});
    auto next = p.get_future().then([token](int x) { return x; });
    auto seen = p.get_future().then([token](const Future<int>& f) { return f.done(); });
  }
  token.reset();
  EXPECT_TRUE(watch.expired()) << "the callbacks' state outlived every handle on it";
}

namespace {
// A value that counts its copy constructions (moves are free), to tell a taken value from
// a copied one.
struct Counted {
  static inline std::atomic<int> copies{0};
  std::vector<int> data;
  explicit Counted(std::vector<int> d) : data(std::move(d)) {}
  Counted(const Counted& o) : data(o.data) { copies.fetch_add(1, std::memory_order_relaxed); }
  Counted(Counted&&) noexcept = default;
  Counted& operator=(const Counted&) = delete;
  Counted& operator=(Counted&&) noexcept = default;
};
}  // namespace

// Issue 10 item 6: a producer that still holds the state after setting the value (a live
// Promise, an executor's envelope) does not make an rvalue result() copy: it never reads
// the value again. Another Future handle does.
TEST(Future, RvalueResultMovesWhileOnlyTheProducerStillHoldsTheState) {
  Counted::copies = 0;
  Promise<Counted> p;
  auto f = p.get_future();
  p.set_result(Counted({1, 2, 3}));
  Counted v = std::move(f).result();  // p is alive and holds the state
  EXPECT_EQ(v.data, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(Counted::copies.load(), 0) << "the value was copied though no other future could read it";

  Counted::copies = 0;
  Promise<Counted> q;
  auto g = q.get_future();
  auto other = g;  // a second reader
  q.set_result(Counted({4, 5}));
  Counted w = std::move(g).result();
  EXPECT_EQ(Counted::copies.load(), 1) << "another future shares the state: the value must be copied";
  EXPECT_EQ(w.data, (std::vector<int>{4, 5}));
  EXPECT_EQ(other.result().data, (std::vector<int>{4, 5})) << "the other future lost its value";
}

// The same with the value set from another thread while the taker waits, the promise
// alive on the producer's side throughout (what the executor does); run under TSan.
TEST(Future, RvalueResultMovesWhenSetFromAnotherThread) {
  for (int round = 0; round < 200; ++round) {
    Counted::copies = 0;
    auto p = std::make_shared<Promise<Counted>>();
    auto f = p->get_future();
    std::thread producer([p, round] { p->set_result(Counted({round, 7})); });
    Counted v = std::move(f).result(5s);
    producer.join();
    ASSERT_EQ(v.data, (std::vector<int>{round, 7}));
    ASSERT_EQ(Counted::copies.load(), 0) << "round " << round;
  }
}

// A callback added through a future may read the value: until it has run, it is a reader
// and the value is copied (the callback still sees it); once it has run, it is moved.
TEST(Future, RvalueResultCopiesWhileAReadingCallbackIsPendingOrRunning) {
  Counted::copies = 0;
  Promise<Counted> p;
  auto f = p.get_future();
  std::latch started(1);
  std::latch release(1);
  std::atomic<std::size_t> seen{0};
  f.add_done_callback([&](const Future<Counted>& g) {
    started.count_down();
    release.wait();
    seen = g.result().data.size();  // still intact: the taker copied
  });
  std::thread producer([&] { p.set_result(Counted({1, 2, 3, 4})); });  // runs the callback
  started.wait();                                                      // terminal, callback running
  Counted v = std::move(f).result();
  EXPECT_EQ(Counted::copies.load(), 1) << "a running callback may still read the value";
  release.count_down();
  producer.join();
  EXPECT_EQ(seen.load(), 4u);
  EXPECT_EQ(v.data.size(), 4u);

  Counted::copies = 0;
  Promise<Counted> q;
  auto h = q.get_future();
  std::size_t in_then = 0;
  auto next = h.then([&](Counted& c) {
    in_then = c.data.size();
    return 0;
  });
  h.add_done_callback([] {});     // does not read: not a reader
  q.set_result(Counted({5, 6}));  // runs both callbacks here
  Counted w = std::move(h).result();
  EXPECT_EQ(in_then, 2u);
  EXPECT_EQ(w.data.size(), 2u);
  EXPECT_EQ(Counted::copies.load(), 0) << "the callbacks have run: nothing else reads the value";
}

// when_all's output holds the inputs as futures: taking one of them by value copies while
// that output lives.
TEST(Future, WhenAllInputsAreReaders) {
  Counted::copies = 0;
  Promise<Counted> p;
  auto f = p.get_future();
  auto all = troupe::when_all(std::vector<Future<Counted>>{f});
  p.set_result(Counted({8}));
  ASSERT_TRUE(all.done());
  Counted v = std::move(f).result();
  EXPECT_EQ(Counted::copies.load(), 1);
  EXPECT_EQ(all.result()[0].result().data, (std::vector<int>{8}));
  EXPECT_EQ(v.data, (std::vector<int>{8}));
}
