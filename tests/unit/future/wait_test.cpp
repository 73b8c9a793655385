// as_completed, wait (three modes), when_all, when_any — with promises completed by hand
// (deterministic order) and with a pool (concurrency).
#include "troupe/future/wait.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include "troupe/pool/thread_pool.hpp"

using namespace std::chrono_literals;
using troupe::Future;
using troupe::Promise;
using troupe::ReturnWhen;

namespace {
std::vector<Future<int>> futures_of(std::vector<Promise<int>>& ps) {
  std::vector<Future<int>> fs;
  for (auto& p : ps) fs.push_back(p.get_future());
  return fs;
}
}  // namespace

TEST(AsCompleted, YieldsInCompletionOrder) {
  std::vector<Promise<int>> ps(4);
  auto fs = futures_of(ps);
  ps[2].set_result(2);  // done before the call: yielded first
  auto ac = troupe::as_completed(fs, 5s);
  auto first = ac.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->result(), 2);
  ps[0].set_result(0);
  ps[3].set_result(3);
  fs[1].cancel();
  std::vector<int> order;
  while (auto f = ac.next()) order.push_back(f->cancelled() ? -1 : f->result());
  EXPECT_EQ(order, (std::vector<int>{0, 3, -1}));
}

TEST(AsCompleted, TimeoutThrowsWithCount) {
  std::vector<Promise<int>> ps(3);
  auto fs = futures_of(ps);
  ps[1].set_result(1);
  auto ac = troupe::as_completed(fs, 30ms);
  int got = 0;
  try {
    for (auto& f : ac) {
      (void)f;
      ++got;
    }
    FAIL() << "expected TimeoutError";
  } catch (const troupe::TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("2 (of 3)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(got, 1);
}

TEST(AsCompleted, WithPoolAllArrive) {
  troupe::ThreadPool pool(4);
  std::vector<Future<int>> fs;
  for (int i = 0; i < 1000; ++i) fs.push_back(pool.submit([i] { return i; }));
  std::set<int> seen;
  for (auto& f : troupe::as_completed(fs, 10s)) seen.insert(f.result());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Wait, FirstCompleted) {
  std::vector<Promise<int>> ps(3);
  auto fs = futures_of(ps);
  auto r0 = troupe::wait(fs, 10ms, ReturnWhen::FirstCompleted);
  EXPECT_TRUE(r0.done.empty());
  EXPECT_EQ(r0.not_done.size(), 3u) << "timeout returns the sets, it does not throw";
  ps[1].set_result(1);
  auto r = troupe::wait(fs, 5s, ReturnWhen::FirstCompleted);
  ASSERT_EQ(r.done.size(), 1u);
  EXPECT_EQ(r.done[0].result(), 1);
  EXPECT_EQ(r.not_done.size(), 2u);
}

TEST(Wait, FirstExceptionReturnsOnError) {
  std::vector<Promise<int>> ps(3);
  auto fs = futures_of(ps);
  ps[0].set_result(0);
  auto r0 = troupe::wait(fs, 10ms, ReturnWhen::FirstException);
  EXPECT_EQ(r0.done.size(), 1u) << "a normal result does not end FIRST_EXCEPTION";
  ps[2].set_exception(std::make_exception_ptr(std::runtime_error("boom")));
  auto r = troupe::wait(fs, 5s, ReturnWhen::FirstException);
  EXPECT_EQ(r.done.size(), 2u);
  EXPECT_EQ(r.not_done.size(), 1u);
}

TEST(Wait, FirstExceptionWithoutErrorsWaitsForAll) {
  std::vector<Promise<int>> ps(2);
  auto fs = futures_of(ps);
  ps[0].set_result(0);
  ps[1].set_result(1);
  auto r = troupe::wait(fs, 5s, ReturnWhen::FirstException);
  EXPECT_EQ(r.done.size(), 2u);
}

TEST(Wait, AllCompletedWithPool) {
  troupe::ThreadPool pool(2);
  std::vector<Future<int>> fs;
  for (int i = 0; i < 100; ++i) fs.push_back(pool.submit([i] { return i; }));
  auto r = troupe::wait(fs, 10s);
  EXPECT_EQ(r.done.size(), 100u);
  EXPECT_TRUE(r.not_done.empty());
}

TEST(Wait, EmptyInputAndBadInput) {
  std::vector<Future<int>> none;
  EXPECT_TRUE(troupe::wait(none, 1s).done.empty());
  std::vector<Future<int>> bad(1);
  EXPECT_THROW(troupe::wait(bad, 1s), troupe::ValueError);
  EXPECT_THROW(troupe::wait(none, -1s), troupe::ValueError);
  EXPECT_THROW(troupe::as_completed(bad), troupe::ValueError);
}

TEST(WhenAll, VectorAndVariadic) {
  std::vector<Promise<int>> ps(3);
  auto all = troupe::when_all(futures_of(ps));
  EXPECT_FALSE(all.done());
  ps[2].set_result(2);
  ps[0].set_result(0);
  EXPECT_FALSE(all.done());
  ps[1].set_exception(std::make_exception_ptr(std::logic_error("x")));
  ASSERT_TRUE(all.wait_for(1s));
  auto v = all.result();
  EXPECT_EQ(v[0].result(), 0);
  EXPECT_THROW((void)v[1].result(), std::logic_error);

  Promise<int> a;
  Promise<std::string> b;
  auto t = troupe::when_all(a.get_future(), b.get_future());
  a.set_result(1);
  EXPECT_FALSE(t.done());
  b.set_result("b");
  EXPECT_EQ(std::get<1>(t.result()).result(), "b");

  EXPECT_TRUE(troupe::when_all(std::vector<Future<int>>{}).done());
}

TEST(WhenAny, FirstWins) {
  std::vector<Promise<int>> ps(3);
  auto any = troupe::when_any(futures_of(ps));
  EXPECT_FALSE(any.done());
  ps[1].set_result(11);
  ps[0].set_result(10);
  auto r = any.result(1s);
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(r.futures[r.index].result(), 11);
  EXPECT_THROW(troupe::when_any(std::vector<Future<int>>{}), troupe::ValueError);
}

// as_completed, wait and when_any over futures whose promises are then dropped unset leave
// no cycle behind: the states are freed with their last handle (issue 7; LeakSanitizer
// reported the cycle). The probe callback lives exactly as long as the state holding it.
TEST(WaitLeaks, AbandonedFuturesAreFreed) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  {
    std::vector<Promise<int>> ps(3);
    auto fs = futures_of(ps);
    for (auto& f : fs) f.add_done_callback([token] {});
    ps[0].set_result(0);
    (void)troupe::wait(fs, 1ms, ReturnWhen::FirstCompleted);
    (void)troupe::wait(fs, 1ms, ReturnWhen::FirstException);
    auto any = troupe::when_any(fs);
    EXPECT_EQ(any.result(1s).index, 0u);
    auto ac = troupe::as_completed(fs, 1ms);
    EXPECT_TRUE(ac.next().has_value());
    EXPECT_THROW((void)ac.next(), troupe::TimeoutError);
  }
  token.reset();
  EXPECT_TRUE(watch.expired()) << "an unfinished future outlived every handle on it";
}
