// The Executor's maps at 1, 2 and 4 ranks on the one map stack shared with ThreadPool:
// MapResult, MapOptions, the automatic chunk rule, option checks that name the call,
// lazy (buffersize) streams, errors at their element, the one deadline, map_scan's
// refusal of buffersize. Every test builds an Executor on every rank and shuts it down.
#include "troupe/executor/executor.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <numeric>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "troupe/executor/stream_map.hpp"
#include "troupe/runtime/runtime.hpp"

#include "mpi_test_util.hpp"
#include "test_views.hpp"

using namespace std::chrono_literals;
using troupe::Executor;
using troupe_test::quiet;

namespace {

// Calls @p fn and returns the what() of the ValueError it throws ("" if none).
template <class F>
std::string value_error(F&& fn) {
  try {
    fn();
  } catch (const troupe::ValueError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// The old names still compile, as the same types.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static_assert(std::is_same_v<troupe::StreamMap<int, long>, troupe::MapResult<int>>);
static_assert(std::is_same_v<troupe::ExecutorMapOptions, troupe::MapOptions>);
#pragma GCC diagnostic pop

TEST(Map, OneResultTypeAndOneOptionStructWithThePool) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    std::vector<long> in(10007);
    std::iota(in.begin(), in.end(), 0L);
    troupe::MapOptions opts;  // the struct ThreadPool::map takes
    auto r = ex.map([](long x) { return 3 * x; }, in, opts);
    static_assert(std::is_same_v<decltype(r), troupe::MapResult<long>>);
    auto from_pool = ex.pool().map([](long x) { return 3 * x; }, in, opts);
    static_assert(std::is_same_v<decltype(r), decltype(from_pool)>);
    EXPECT_EQ(r.to_vector(), from_pool.to_vector());
    // The automatic rule over an unsized input: growing chunks, every element once, in order.
    auto odd = ex.map([](long x) { return x; }, troupe_test::filter(in, [](long x) { return x % 2 == 1; })).to_vector();
    ASSERT_EQ(odd.size(), 5003u);
    for (std::size_t i = 0; i < odd.size(); ++i) ASSERT_EQ(odd[i], static_cast<long>(2 * i + 1));
  }
  ex.shutdown();
}

TEST(Map, BadOptionsNameTheCallBeforeAnythingIsSent) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    std::vector<int> in{1, 2, 3};
    auto id = [](int x) { return x; };
    EXPECT_EQ(value_error([&] { (void)ex.map(id, in, {.chunksize = 0}); }),
              "Executor::map: chunksize must be >= 1, got 0");
    EXPECT_EQ(value_error([&] { (void)ex.imap(id, in, {.buffersize = 0}); }),
              "Executor::imap: buffersize must be >= 1, got 0");
    EXPECT_EQ(value_error([&] {
                (void)ex.starmap([](int a, int b) { return a + b; }, std::vector<std::tuple<int, int>>{{1, 2}},
                                 {.chunksize = 0});
              }),
              "Executor::starmap: chunksize must be >= 1, got 0");
    EXPECT_EQ(value_error([&] { (void)ex.map_reduce(id, std::plus<int>{}, in, {.chunksize = 0}); }),
              "Executor::map_reduce: chunksize must be >= 1, got 0");
    EXPECT_EQ(value_error([&] { (void)ex.map_scan(id, std::plus<int>{}, in, {.chunksize = 0}); }),
              "Executor::map_scan: chunksize must be >= 1, got 0");
    EXPECT_EQ(value_error([&] { (void)ex.map_scan(id, std::plus<int>{}, in, {.buffersize = 2}); }),
              "Executor::map_scan: buffersize is not supported (all results are kept)");
    EXPECT_NE(value_error([&] { (void)ex.map_async(id, in, {.buffersize = 2}); }), "");
    EXPECT_NE(value_error([&] { (void)ex.map_unordered(id, in, {.timeout = -1s}); }), "");
    EXPECT_EQ(ex.stats().submitted, 0u) << "nothing was sent for a bad option";
  }
  ex.shutdown();
}

TEST(Map, BufferedStreamsKeepOrderErrorsAndCompletionOrder) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    for (std::size_t buffer : {1u, 2u, 5u}) {
      // Ordered, lazy: an element's exception surfaces after the elements before it.
      auto r = ex.imap(
          [](int x) {
            if (x == 23) throw std::out_of_range("element 23");
            return x * 2;
          },
          troupe_test::iota(0, 100), {.chunksize = 4, .buffersize = buffer});
      for (int i = 0; i < 23; ++i) ASSERT_EQ(r.next(), 2 * i) << "buffersize " << buffer;
      EXPECT_THROW((void)r.next(), std::out_of_range) << "buffersize " << buffer;
      EXPECT_EQ(r.next(), std::nullopt);
      // Unordered, lazy: the same multiset.
      auto u = ex.imap_unordered([](int x) { return x % 5; }, troupe_test::iota(0, 1000),
                                 {.chunksize = 9, .buffersize = buffer})
                   .to_vector();
      ASSERT_EQ(u.size(), 1000u);
      EXPECT_EQ(std::count(u.begin(), u.end(), 0), 200);
    }
    // map_async over the stream's chunk futures.
    auto all = ex.map_async([](int x) { return x + 1; }, std::vector<int>(333, 1), {.chunksize = 10}).result(60s);
    EXPECT_EQ(all, std::vector<int>(333, 2));
  }
  ex.shutdown();
}

TEST(Map, TimeoutIsOneDeadlineForTheIteration) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    auto slow = [](int x) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      return x;
    };
    auto r = ex.map(slow, std::vector<int>(4, 1), {.chunksize = 1, .timeout = 1ms});
    try {
      (void)r.to_vector();
      ADD_FAILURE() << "no TimeoutError";
    } catch (const troupe::TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("Executor::map: timed out"), std::string::npos) << e.what();
    }
    EXPECT_EQ(r.next(), std::nullopt) << "the iteration ended";
    EXPECT_THROW((void)ex.map_scan(slow, std::plus<int>{}, std::vector<int>(2, 1), {.chunksize = 1, .timeout = 1ms}),
                 troupe::TimeoutError);
    // map_scan without a timeout still gives every prefix.
    auto scan = ex.map_scan([](int x) { return x; }, std::plus<int>{}, troupe_test::iota(1, 101));
    ASSERT_EQ(scan.size(), 100u);
    EXPECT_EQ(scan.back(), 5050);
  }
  ex.shutdown();
}

// An ordered map streams (issue 7): 2,000 elements of 2 ms at chunksize 1. The chunks the
// root dispatches to itself used to run newest first (a worker's deque is LIFO), so result
// 1 came only when the whole map ended. Now it comes while almost all the work is still to
// do: when the root holds result 1, fewer than 10% of the tasks have ended (counted, not
// timed).
TEST(Map, OrderedResultsStreamInOrder) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    constexpr int kN = 2000;
    std::vector<int> in(kN);
    std::iota(in.begin(), in.end(), 0);
    auto stream = ex.map(
        [](int x) {
          std::this_thread::sleep_for(2ms);  // stands in for 2 ms of work
          return x;
        },
        in, troupe::MapOptions{.chunksize = 1});
    auto it = stream.begin();
    ASSERT_EQ(*it, 0);
    ++it;
    ASSERT_EQ(*it, 1);
    const auto ended_at_result_1 = ex.stats().completed;
    // Streaming: a quarter of the tasks at most (without streaming it was all of them; at 4
    // ranks under AddressSanitizer and a loaded CI machine 206 of 2,000 had ended).
    EXPECT_LT(ended_at_result_1, static_cast<std::uint64_t>(kN / 4))
        << "result 1 arrived only after " << ended_at_result_1 << " of " << kN << " tasks had ended";
    int expect = 2;
    for (++it; it != stream.end(); ++it) ASSERT_EQ(*it, expect++);
    EXPECT_EQ(expect, kN);
  }
  ex.shutdown();
}

// One chunk rule for the Executor and the pool (issue 7): a chunksize larger than the input
// is one chunk of it. SIZE_MAX (an assigned -1) threw std::length_error from
// vector::reserve and 2^40 std::bad_alloc; an unsized input grows its chunk as it is read.
TEST(Map, HugeChunksizeIsClampedToTheInput) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    std::vector<int> in(1000);
    std::iota(in.begin(), in.end(), 0);
    for (std::size_t chunk : {std::numeric_limits<std::size_t>::max(), std::size_t{1} << 40}) {
      auto out = ex.map([](int x) { return x + 1; }, in, troupe::MapOptions{.chunksize = chunk}).to_vector();
      ASSERT_EQ(out.size(), in.size()) << chunk;
      for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], in[i] + 1);
      EXPECT_EQ(ex.map_reduce([](int x) { return x; }, [](int a, int b) { return a + b; }, in, {.chunksize = chunk}),
                499500);
      auto unsized =
          ex.imap([](int x) { return 2 * x; }, troupe_test::filter(troupe_test::iota(0, 100), [](int) { return true; }),
                  troupe::MapOptions{.chunksize = chunk})
              .to_vector();
      ASSERT_EQ(unsized.size(), 100u);
    }
  }
  ex.shutdown();
}
