// ThreadPool::map_into: results in caller-provided storage, its errors, and that nothing runs
// after it returns. Exact counts and thread identities; the one timing-dependent input (a
// chunk that outlasts the timeout) asserts no durations.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <numeric>
#include <ranges>
#include <semaphore>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "troupe/pool/thread_pool.hpp"
#include "../../support/test_views.hpp"

using namespace std::chrono_literals;
using troupe::ThreadPool;

namespace {

struct ElementError : std::runtime_error {
  explicit ElementError(int i) : std::runtime_error("element failed"), index(i) {}
  int index;
};

// A pool whose calling thread never runs the map's chunks: one worker takes them in order.
ThreadPool one_worker_no_caller() { return ThreadPool(troupe::PoolOptions{.threads = 1, .caller_helps = false}); }

std::vector<int> iota_vector(std::size_t n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

struct Identity {
  int operator()(int x) const { return x; }
};
template <class Out>
concept can_map_into = requires(ThreadPool& pool, Out&& out, const std::vector<int>& in) {
  pool.map_into(std::forward<Out>(out), Identity{}, in);
};
// Lvalue containers and views are outputs; a temporary container (its results would be
// lost) and std::vector<bool> (not contiguous: concurrent writers would tear its bits) are not.
static_assert(can_map_into<std::vector<int>&>);
static_assert(can_map_into<std::span<int>>);
static_assert(can_map_into<std::array<long, 4>&>);
static_assert(!can_map_into<std::vector<int>>);
static_assert(!can_map_into<std::vector<bool>&>);

}  // namespace

class MapIntoN : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Workers, MapIntoN, ::testing::Values(1, 2, 4));

TEST_P(MapIntoN, IntsForEveryChunksize) {
  ThreadPool pool(GetParam());
  const auto in = iota_vector(10007);
  std::vector<int> out(in.size(), -1);
  for (std::size_t chunk : {1u, 3u, 64u, 10007u, 20000u}) {
    std::fill(out.begin(), out.end(), -1);
    pool.map_into(out, [](int x) { return 3 * x; }, in, {.chunksize = chunk});
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], 3 * in[i]) << "chunksize " << chunk;
  }
  std::fill(out.begin(), out.end(), -1);
  pool.map_into(
      out, [](int x) { return x + 1; }, in);  // automatic chunksize
  for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], in[i] + 1);
}

TEST_P(MapIntoN, SpansArraysAndViews) {
  ThreadPool pool(GetParam());
  std::array<long, 100> arr{};
  pool.map_into(
      arr, [](int x) { return 2L * x; }, troupe_test::iota(0, 100));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(arr[static_cast<std::size_t>(i)], 2L * i);
  std::vector<double> backing(300, -1.0);
  std::span<double> middle(backing.data() + 100, 100);  // a window of a larger buffer
  const auto in = iota_vector(100);
  pool.map_into(middle, [](int x) { return x * 0.5; }, in, {.chunksize = 7});
  for (std::size_t i = 0; i < 300; ++i) {
    const double want = (i >= 100 && i < 200) ? static_cast<double>(i - 100) * 0.5 : -1.0;
    ASSERT_EQ(backing[i], want) << i;
  }
}

TEST_P(MapIntoN, NonTrivialResults) {
  ThreadPool pool(GetParam());
  const auto in = iota_vector(5000);
  std::vector<std::string> out(in.size(), "old");
  pool.map_into(out, [](int x) { return std::string(static_cast<std::size_t>(x % 40), 'a').append(std::to_string(x)); },
                in, {.chunksize = 13});
  for (std::size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(out[i], std::string(i % 40, 'a').append(std::to_string(i)));
  }
}

TEST(MapInto, EmptyInputRunsNothing) {
  ThreadPool pool(2);
  std::vector<int> out;
  std::atomic<int> calls{0};
  pool.map_into(
      out, [&](int x) { return calls.fetch_add(1) + x; }, std::vector<int>{});
  EXPECT_EQ(calls.load(), 0);
}

TEST(MapInto, BadInputsNameTheCall) {
  ThreadPool pool(2);
  std::vector<int> out(3, 7);
  const auto in = iota_vector(4);
  try {
    pool.map_into(
        out, [](int x) { return x; }, in);
    FAIL() << "size mismatch accepted";
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("ThreadPool::map_into: out has 3 element(s), inputs has 4"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(out, (std::vector<int>{7, 7, 7}));  // untouched
  std::vector<int> out4(4);
  EXPECT_THROW(pool.map_into(out4, [](int x) { return x; }, in, {.chunksize = 0}), troupe::ValueError);
  EXPECT_THROW(pool.map_into(out4, [](int x) { return x; }, in, {.buffersize = 2}), troupe::ValueError);
  EXPECT_THROW(pool.map_into(out4, [](int x) { return x; }, in, {.timeout = -1s}), troupe::ValueError);
}

TEST(MapInto, ShutDownPoolRefusesAsMapDoes) {
  ThreadPool pool(2);
  pool.shutdown();
  std::vector<int> out(4);
  const auto in = iota_vector(4);
  try {
    pool.map_into(
        out, [](int x) { return x; }, in);
    FAIL() << "map_into ran on a shut-down pool";
  } catch (const troupe::InvalidStateError& e) {
    EXPECT_EQ(std::string(e.what()), "ThreadPool::map_into: cannot schedule new tasks after shutdown");
  }
  std::vector<int> none;
  EXPECT_THROW(pool.map_into(
                   none, [](int x) { return x; }, std::vector<int>{}),
               troupe::InvalidStateError);
}

TEST(MapInto, ElementExceptionIsRethrownAsItselfAndStopsTheRest) {
  auto pool = one_worker_no_caller();
  const auto in = iota_vector(100);
  std::vector<int> out(in.size(), -1);
  std::atomic<int> calls{0};
  try {
    pool.map_into(out,
                  [&](int x) {
                    calls.fetch_add(1);
                    if (x == 0) throw ElementError(x);
                    return x;
                  },
                  in, {.chunksize = 1});
    FAIL() << "no exception";
  } catch (const ElementError& e) {
    EXPECT_EQ(e.index, 0);
  }
  // One worker takes the chunks in order: after the failing one, every other is skipped.
  EXPECT_EQ(calls.load(), 1);
  pool.shutdown();  // runs whatever was still queued
  EXPECT_EQ(calls.load(), 1);
  for (int v : out) ASSERT_EQ(v, -1);
}

TEST_P(MapIntoN, ReturnsOnlyAfterEveryStartedChunkEnded) {
  ThreadPool pool(GetParam());
  const auto in = iota_vector(20000);
  std::vector<int> out(in.size());
  std::atomic<int> running{0};
  std::atomic<int> calls{0};
  EXPECT_THROW(pool.map_into(out,
                             [&](int x) {
                               running.fetch_add(1);
                               calls.fetch_add(1);
                               if (x % 1000 == 999) {
                                 running.fetch_sub(1);
                                 throw ElementError(x);
                               }
                               running.fetch_sub(1);
                               return x;
                             },
                             in, {.chunksize = 10}),
               ElementError);
  EXPECT_EQ(running.load(), 0);
  const int at_return = calls.load();
  pool.shutdown();  // joins the workers: a chunk still to run would run now
  EXPECT_EQ(calls.load(), at_return);
}

TEST(MapInto, TimeoutSkipsTheChunksNotStarted) {
  auto pool = one_worker_no_caller();
  const auto in = iota_vector(8);
  // The first chunk outlasts the deadline once it starts. Whether the worker starts it before
  // the deadline depends on the machine's load, so the timeout doubles until it does; every
  // attempt must end in TimeoutError with nothing running and nothing left to run.
  bool started_in_time = false;
  for (auto timeout = std::chrono::milliseconds(20); !started_in_time && timeout <= 20s; timeout *= 2) {
    std::vector<int> out(in.size(), -1);
    std::atomic<int> calls{0};
    std::atomic<bool> first_done{false};
    try {
      pool.map_into(out,
                    [&, timeout](int x) {
                      calls.fetch_add(1);
                      if (x == 0) {
                        // The call began before this chunk did: this outlasts its deadline.
                        std::this_thread::sleep_for(timeout + 5ms);
                        first_done.store(true);
                      }
                      return x + 100;
                    },
                    in, {.chunksize = 1, .timeout = timeout});
      FAIL() << "no TimeoutError";
    } catch (const troupe::TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("ThreadPool::map_into: timed out"), std::string::npos) << e.what();
    }
    // One worker takes the chunks in order: the first, or none, ran, and it ended before the
    // call returned; the others never run.
    const int at_return = calls.load();
    ASSERT_LE(at_return, 1);
    started_in_time = at_return == 1;
    EXPECT_EQ(first_done.load(), started_in_time);
    EXPECT_EQ(out[0], started_in_time ? 100 : -1);
    for (std::size_t i = 1; i < out.size(); ++i) ASSERT_EQ(out[i], -1);
    // A helper still queued finds no chunk: run a task behind it on the one worker.
    ASSERT_TRUE(pool.submit([] {}).wait_for(60s));
    EXPECT_EQ(calls.load(), at_return);
  }
  EXPECT_TRUE(started_in_time);
}

TEST(MapInto, ZeroTimeoutRunsNothing) {
  ThreadPool pool(2);
  const auto in = iota_vector(1000);
  std::vector<int> out(in.size());
  std::atomic<int> calls{0};
  EXPECT_THROW(pool.map_into(out, [&](int x) { return calls.fetch_add(1) + x; }, in, {.timeout = 0s}),
               troupe::TimeoutError);
  pool.shutdown();
  EXPECT_EQ(calls.load(), 0);
}

TEST(MapInto, TokenCancels) {
  std::stop_source before;
  before.request_stop();
  ThreadPool pool(2);
  const auto in = iota_vector(100);
  std::vector<int> out(in.size());
  std::atomic<int> calls{0};
  EXPECT_THROW(pool.map_into(
                   out, [&](int x) { return calls.fetch_add(1) + x; }, in, {}, before.get_token()),
               troupe::CancelledError);
  EXPECT_EQ(calls.load(), 0);

  auto serial = one_worker_no_caller();
  std::stop_source during;
  try {
    serial.map_into(
        out,
        [&](int x) {
          calls.fetch_add(1);
          if (x == 0) during.request_stop();
          return x;
        },
        in, {.chunksize = 1}, during.get_token());
    FAIL() << "no CancelledError";
  } catch (const troupe::CancelledError& e) {
    EXPECT_EQ(std::string(e.what()), "ThreadPool::map_into: cancelled by token");
  }
  EXPECT_EQ(calls.load(), 1);
}

TEST(MapInto, CallerRunsTheChunksWhenTheWorkersAreBusy) {
  ThreadPool pool(1);
  std::binary_semaphore started{0}, gate{0};
  auto busy = pool.submit([&] {
    started.release();
    (void)gate.try_acquire_for(60s);  // bounded: a broken map_into fails instead of hanging
  });
  ASSERT_TRUE(started.try_acquire_for(60s));
  const auto in = iota_vector(1000);
  std::vector<int> out(in.size());
  std::atomic<int> elsewhere{0};
  const auto me = std::this_thread::get_id();
  pool.map_into(out,
                [&](int x) {
                  if (std::this_thread::get_id() != me) elsewhere.fetch_add(1);
                  return -x;
                },
                in, {.chunksize = 10});
  gate.release();
  busy.result();
  EXPECT_EQ(elsewhere.load(), 0);  // the only worker was busy: the caller did it all
  for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], -in[i]);
}

TEST(MapInto, WithoutCallerHelpsOnlyWorkersRunFn) {
  ThreadPool pool(troupe::PoolOptions{.threads = 2, .caller_helps = false});
  const auto in = iota_vector(5000);
  std::vector<int> out(in.size());
  std::atomic<int> by_caller{0};
  const auto me = std::this_thread::get_id();
  pool.map_into(out,
                [&](int x) {
                  if (std::this_thread::get_id() == me) by_caller.fetch_add(1);
                  return x * x;
                },
                in, {.chunksize = 50});
  EXPECT_EQ(by_caller.load(), 0);
  for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], in[i] * in[i]);
}

TEST(MapInto, NestedInsideATaskOfAPoolWithoutCallerHelps) {
  auto pool = one_worker_no_caller();
  const auto in = iota_vector(1000);
  std::vector<int> out(in.size());
  auto f = pool.submit([&] { pool.map_into(out, [](int x) { return x - 1; }, in, {.chunksize = 10}); });
  ASSERT_TRUE(f.wait_for(60s));
  f.result();
  for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], in[i] - 1);
}
