// map / map_unordered / starmap / parallel_for / parallel_reduce and their bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <numeric>
#include <optional>
#include <ranges>
#include <semaphore>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "troupe/pool/thread_pool.hpp"
#include "../../support/test_views.hpp"

using namespace std::chrono_literals;
using troupe::ThreadPool;

class AlgoN : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Workers, AlgoN, ::testing::Values(1, 2, 4, 8));

TEST_P(AlgoN, MapIsOrderedForEveryChunksize) {
  ThreadPool pool(GetParam());
  std::vector<int> in(10007);
  std::iota(in.begin(), in.end(), 0);
  for (std::size_t chunk : {1u, 3u, 64u, 10007u, 20000u}) {
    auto out = pool.map([](int x) { return 3 * x; }, in, {.chunksize = chunk}).to_vector();
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], 3 * in[i]) << "chunksize " << chunk;
  }
  auto automatic = pool.map([](int x) { return x + 1; }, in).to_vector();
  EXPECT_EQ(automatic.back(), 10007);
}

TEST_P(AlgoN, MapOfRvalueAndNonRandomAccessRanges) {
  ThreadPool pool(GetParam());
  std::list<std::string> words{"a", "bb", "ccc"};
  auto lens = pool.map([](const std::string& s) { return s.size(); }, words).to_vector();
  EXPECT_EQ(lens, (std::vector<std::size_t>{1, 2, 3}));
  auto r = pool.map([](int x) { return x * x; }, std::vector<int>{1, 2, 3});  // temporary: copied
  EXPECT_EQ(r.to_vector(), (std::vector<int>{1, 4, 9}));
  int count = 0;
  for (int v : pool.map([](int x) { return x; }, troupe_test::iota(0, 100))) count += (v >= 0);
  EXPECT_EQ(count, 100);
}

TEST_P(AlgoN, ExceptionInThirdOfTenSurfacesOnThirdNext) {
  ThreadPool pool(GetParam());
  std::vector<int> in{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (std::size_t chunk : {1u, 2u, 4u, 10u}) {
    auto results = pool.map(
        [](int x) {
          if (x == 2) throw std::out_of_range("element 2");
          return x;
        },
        in, {.chunksize = chunk});
    EXPECT_EQ(results.next(), 0) << "chunksize " << chunk;
    EXPECT_EQ(results.next(), 1) << "chunksize " << chunk;
    EXPECT_THROW(results.next(), std::out_of_range) << "chunksize " << chunk;
    EXPECT_EQ(results.next(), std::nullopt) << "iteration ends after the exception";
  }
}

// The first chunk throws (issue 7): map(...).to_vector() and starmap raise the first
// exception in element order. Before the fix the ordered hand-over returned default values
// ({0, 0, 0}) and, at 100,000 elements, chunks still running wrote into storage the caller
// had already released.
TEST_P(AlgoN, ToVectorRaisesTheFirstExceptionWhenTheFirstChunkThrows) {
  ThreadPool pool(GetParam());
  for (std::size_t n : {std::size_t{3}, std::size_t{100'000}}) {
    std::vector<int> in(n);
    std::iota(in.begin(), in.end(), 0);
    const int last = static_cast<int>(n) - 1;
    auto f = [last](int x) {
      if (x == 0) throw std::out_of_range("element 0");
      if (x == last) throw std::invalid_argument("last element");
      return x;
    };
    std::vector<std::tuple<int>> tuples(in.begin(), in.end());
    for (std::optional<std::size_t> cs : {std::optional<std::size_t>{}, std::optional<std::size_t>{1}}) {
      EXPECT_THROW((void)pool.map(f, in, {.chunksize = cs}).to_vector(), std::out_of_range) << n;
      EXPECT_THROW((void)pool.map(f, std::vector<int>(in), {.chunksize = cs}).to_vector(), std::out_of_range) << n;
      EXPECT_THROW((void)pool.starmap(f, tuples, {.chunksize = cs}).to_vector(), std::out_of_range) << n;
    }
  }
}

TEST_P(AlgoN, MapTimeout) {
  ThreadPool pool(GetParam());
  std::binary_semaphore release(0);
  auto results = pool.map(
      [&](int x) {
        if (x == 1) release.acquire();
        return x;
      },
      std::vector<int>{0, 1, 2}, {.chunksize = 1, .timeout = 50ms});
  EXPECT_EQ(results.next(), 0);
  EXPECT_THROW(results.next(), troupe::TimeoutError);
  release.release();
}

TEST_P(AlgoN, MapUnorderedSameMultiset) {
  ThreadPool pool(GetParam());
  std::vector<int> in(5000);
  std::iota(in.begin(), in.end(), 0);
  auto out = pool.map_unordered([](int x) { return x % 97; }, in, {.chunksize = 7}).to_vector();
  std::vector<int> expect;
  for (int x : in) expect.push_back(x % 97);
  std::sort(out.begin(), out.end());
  std::sort(expect.begin(), expect.end());
  EXPECT_EQ(out, expect);
}

TEST_P(AlgoN, MapUnorderedYieldsFastOnesFirst) {
  ThreadPool pool(std::max<std::size_t>(2, GetParam()));  // one worker blocks on purpose
  std::binary_semaphore release(0);
  auto results = pool.map_unordered(
      [&](int x) {
        if (x == 0) release.acquire();
        return x;
      },
      std::vector<int>{0, 1}, {.chunksize = 1, .timeout = 30s});
  EXPECT_EQ(results.next(), 1);
  release.release();
  EXPECT_EQ(results.next(), 0);
}

TEST_P(AlgoN, Starmap) {
  ThreadPool pool(GetParam());
  std::vector<std::tuple<int, int>> args{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap([](int a, int b) { return a * b; }, args).to_vector(), (std::vector<int>{2, 12, 30}));
}

TEST_P(AlgoN, VoidMap) {
  ThreadPool pool(GetParam());
  std::atomic<int> n{0};
  auto out = pool.map([&](int) { n.fetch_add(1); }, std::vector<int>(50)).to_vector();
  EXPECT_EQ(out.size(), 50u);
  EXPECT_EQ(n.load(), 50);
}

TEST_P(AlgoN, TimedOutMapCancelsUnstartedChunks) {
  const std::size_t workers = GetParam();
  ThreadPool pool(workers);
  std::atomic<int> started{0};
  std::counting_semaphore<1 << 20> gate(0);
  {
    auto r = pool.map(
        [&](int x) {
          started.fetch_add(1);
          (void)gate.try_acquire_for(30s);  // every started chunk holds a worker until released
          return x;
        },
        std::vector<int>(1000, 1), {.chunksize = 1, .timeout = 50ms});
    EXPECT_THROW((void)r.next(), troupe::TimeoutError);
    gate.release(1000);
  }  // destroyed: waits for the chunks that were running
  EXPECT_LE(started.load(), static_cast<int>(workers)) << "chunks not started before the timeout were cancelled";
}

TEST_P(AlgoN, BufferedMapReadsAnEndlessInputLazily) {
  ThreadPool pool(GetParam());
  std::atomic<int> calls{0};
  {
    auto r = pool.map(
        [&](int x) {
          calls.fetch_add(1);
          return x * x;
        },
        troupe_test::iota(0), {.chunksize = 10, .buffersize = 3});
    int i = 0;
    for (int v : r) {
      ASSERT_EQ(v, i * i);
      if (++i == 1000) break;
    }
  }  // destroyed: cancels what has not started, waits for the running chunks
  EXPECT_LE(calls.load(), 1000 + 3 * 10) << "the input was read ahead of the buffer";
  // Unordered and lazy over a sized input: the same multiset.
  auto u = pool.map_unordered([](int x) { return x % 7; }, std::vector<int>(1000, 3), {.chunksize = 9, .buffersize = 2})
               .to_vector();
  EXPECT_EQ(u, std::vector<int>(1000, 3));
}

TEST_P(AlgoN, BufferedMapErrorsSurfaceAtTheirElement) {
  ThreadPool pool(GetParam());
  for (std::size_t buffer : {1u, 2u, 8u}) {
    auto r = pool.map(
        [](int x) {
          if (x == 13) throw std::out_of_range("element 13");
          return x;
        },
        troupe_test::iota(0, 50), {.chunksize = 4, .buffersize = buffer});
    for (int i = 0; i < 13; ++i) ASSERT_EQ(r.next(), i) << "buffersize " << buffer;
    EXPECT_THROW((void)r.next(), std::out_of_range) << "buffersize " << buffer;
    EXPECT_EQ(r.next(), std::nullopt);
  }
}

TEST_P(AlgoN, ToVectorAfterPartialIterationAndChunkFutures) {
  ThreadPool pool(GetParam());
  std::vector<int> in(100);
  std::iota(in.begin(), in.end(), 0);
  auto r = pool.map([](int x) { return x; }, in, {.chunksize = 10});
  EXPECT_EQ(r.chunk_futures().size(), 10u);
  EXPECT_EQ(r.next(), 0);
  EXPECT_EQ(r.next(), 1);
  auto rest = r.to_vector();
  ASSERT_EQ(rest.size(), 98u);
  EXPECT_EQ(rest.front(), 2);
  EXPECT_EQ(rest.back(), 99);
  EXPECT_TRUE(r.to_vector().empty());
  troupe::MapResult<int> empty;
  EXPECT_EQ(empty.next(), std::nullopt);
  EXPECT_TRUE(pool.map([](int x) { return x; }, std::vector<int>{}).to_vector().empty());
}

TEST(PoolAlgorithms, OneChunkRule) {
  using troupe::detail::Chunking;
  EXPECT_EQ(Chunking::auto_size(1'000'000, 2), 62'500u) << "about 8 chunks per worker";
  EXPECT_EQ(Chunking::auto_size(17, 1), 3u);
  EXPECT_EQ(Chunking::auto_size(0, 4), 1u);
  EXPECT_EQ(Chunking::auto_size(10, 0), 2u) << "0 workers counts as 1";
  EXPECT_EQ(Chunking::auto_size(std::size_t{1} << 40, 1), Chunking::kMaxAutoChunk);
  EXPECT_EQ(Chunking::auto_size(1'000'000, 2, Chunking::kAcrossRanks), Chunking::kMaxRemoteChunk)
      << "an executor chunk stays small";
  EXPECT_EQ(Chunking::auto_size(20'000, 2, Chunking::kAcrossRanks), 625u) << "16 chunks per worker over ranks";
  auto unsized = troupe_test::filter(troupe_test::iota(0), [](int) { return true; });
  auto grow = Chunking::make({}, unsized, 4, "test");
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 20; ++i) sizes.push_back(grow.next());
  EXPECT_EQ(sizes[0], 1u);
  EXPECT_EQ(sizes[1], 2u);
  EXPECT_EQ(sizes[10], 1024u);
  EXPECT_EQ(sizes[19], Chunking::kMaxAutoChunk);
  std::vector<int> v(800);
  EXPECT_EQ(Chunking::make({}, v, 4, "test").chunksize, 25u);
  EXPECT_EQ(Chunking::make({.chunksize = 7}, unsized, 4, "test").next(), 7u);
  EXPECT_FALSE(Chunking::make({}, v, 4, "test").lazy());
  EXPECT_TRUE(Chunking::make({.buffersize = 2}, v, 4, "test").lazy());
}

// One chunk rule (issue 7): a chunksize or grain larger than the input means one chunk of
// the whole input, in every map and loop (it threw std::length_error from
// vector::reserve for SIZE_MAX and std::bad_alloc for 2^40 in a buffered map, and a loop
// with grain SIZE_MAX ran no index at all: its chunk count overflowed to 0).
TEST_P(AlgoN, HugeChunksizeIsClampedToTheInput) {
  ThreadPool pool(GetParam());
  using troupe::detail::Chunking;
  EXPECT_EQ(Chunking::clamp_chunksize(SIZE_MAX, 10), 10u);
  EXPECT_EQ(Chunking::clamp_chunksize(SIZE_MAX, 0), 1u);
  EXPECT_EQ(Chunking::clamp_chunksize(7, 10), 7u);
  EXPECT_EQ(Chunking::clamp_chunksize(SIZE_MAX, std::nullopt), SIZE_MAX) << "unknown size: kept, never reserved";
  std::vector<int> in(1000);
  std::iota(in.begin(), in.end(), 0);
  std::vector<int> doubled(in.size());
  std::transform(in.begin(), in.end(), doubled.begin(), [](int x) { return 2 * x; });
  auto twice = [](int x) { return 2 * x; };
  for (std::size_t cs : {SIZE_MAX, std::size_t{1} << 40}) {
    EXPECT_EQ(Chunking::make({.chunksize = cs}, in, GetParam(), "test").chunksize, in.size());
    EXPECT_EQ(pool.map(twice, in, {.chunksize = cs}).to_vector(), doubled) << cs;
    EXPECT_EQ(pool.map(twice, in, {.chunksize = cs, .buffersize = 2}).to_vector(), doubled) << cs;
    auto unordered = pool.map_unordered(twice, in, {.chunksize = cs}).to_vector();
    std::sort(unordered.begin(), unordered.end());
    EXPECT_EQ(unordered, doubled) << cs;
    auto unsized = troupe_test::filter(troupe_test::iota(0, 1000), [](int) { return true; });
    EXPECT_EQ(pool.map(twice, unsized, {.chunksize = cs, .buffersize = 1}).to_vector(), doubled) << cs;
    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}};
    EXPECT_EQ(pool.starmap([](int a, int b) { return a * b; }, pairs, {.chunksize = cs}).to_vector(),
              (std::vector<int>{2, 12}));
    std::atomic<long> hits{0};
    pool.parallel_for(0, 1000, [&](int) { hits.fetch_add(1); }, {.grain = cs});
    EXPECT_EQ(hits.load(), 1000) << cs;
    EXPECT_EQ(pool.parallel_reduce(0, 1000, 0L, std::plus<>{}, [](int i) { return long{i}; }, {.grain = cs}), 499500L)
        << cs;
  }
}

TEST_P(AlgoN, ParallelForCoversEveryIndexOnce) {
  ThreadPool pool(GetParam());
  std::vector<std::atomic<int>> hits(100003);
  pool.parallel_for(std::size_t{0}, hits.size(), [&](std::size_t i) { hits[i].fetch_add(1); });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  std::atomic<long> chunked{0};
  pool.parallel_for(10, 1010, [&](int lo, int hi) { chunked.fetch_add(hi - lo); }, {.grain = 17});
  EXPECT_EQ(chunked.load(), 1000);
  pool.parallel_for(5, 5, [](int) { FAIL(); });
}

TEST_P(AlgoN, ParallelForRethrowsFirstException) {
  ThreadPool pool(GetParam());
  EXPECT_THROW(pool.parallel_for(0, 1000,
                                 [](int i) {
                                   if (i == 500) throw std::length_error("i=500");
                                 },
                                 {.grain = 10}),
               std::length_error);
}

TEST_P(AlgoN, NestedParallelFor) {
  ThreadPool pool(GetParam());
  std::atomic<long> total{0};
  pool.parallel_for(
      0, 16, [&](int) { pool.parallel_for(0, 1000, [&](int) { total.fetch_add(1, std::memory_order_relaxed); }); },
      {.grain = 1});
  EXPECT_EQ(total.load(), 16000);
}

TEST_P(AlgoN, ParallelReduceOrderedAndUnordered) {
  ThreadPool pool(GetParam());
  const std::size_t n = 1'000'000;
  const double sum =
      pool.parallel_reduce(std::size_t{0}, n, 0.0, std::plus<>{}, [](std::size_t i) { return double(i); });
  EXPECT_EQ(sum, double(n) * double(n - 1) / 2);
  const long u =
      pool.parallel_reduce(0L, 100000L, 0L, std::plus<>{}, [](long i) { return i; }, {.grain = 333, .ordered = false});
  EXPECT_EQ(u, 100000L * 99999L / 2);
  // Ordered reduction of a non-commutative (but associative) operator: string concatenation.
  const std::string s = pool.parallel_reduce(0, 26, std::string(">"), std::plus<>{},
                                             [](int i) { return std::string(1, char('a' + i)); }, {.grain = 3});
  EXPECT_EQ(s, ">abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(pool.parallel_reduce(3, 3, 42, std::plus<>{}, [](int i) { return i; }), 42) << "empty range gives init";
}

TEST_P(AlgoN, CancellationTokenStopsLoops) {
  ThreadPool pool(GetParam());
  troupe::CancellationSource src;
  std::atomic<int> done{0};
  EXPECT_THROW(pool.parallel_for(0, 100000,
                                 [&](int i) {
                                   if (i == 10) src.request_stop();
                                   done.fetch_add(1);
                                 },
                                 {.grain = 1, .token = src.get_token()}),
               troupe::CancelledError);
  EXPECT_LT(done.load(), 100000);
  EXPECT_THROW((void)pool.parallel_reduce(0, 10, 0, std::plus<>{}, [](int i) { return i; }, {.token = src.get_token()}),
               troupe::CancelledError);
}

TEST(PoolAlgorithms, BadInputsNameTheProblem) {
  ThreadPool pool(2);
  std::vector<int> in{1, 2, 3};
  try {
    (void)pool.map([](int x) { return x; }, in, {.chunksize = 0});
    FAIL();
  } catch (const troupe::ValueError& e) {
    EXPECT_STREQ(e.what(), "ThreadPool::map: chunksize must be >= 1, got 0");
  }
  EXPECT_THROW((void)pool.map([](int x) { return x; }, in, {.timeout = -1s}), troupe::ValueError);
  EXPECT_THROW((void)pool.map_unordered([](int x) { return x; }, in, {.chunksize = 0}), troupe::ValueError);
  try {
    (void)pool.starmap([](int a) { return a; }, std::vector<std::tuple<int>>{{1}}, {.buffersize = 0});
    FAIL();
  } catch (const troupe::ValueError& e) {
    EXPECT_STREQ(e.what(), "ThreadPool::starmap: buffersize must be >= 1, got 0");
  }
  EXPECT_THROW(pool.parallel_for(0, 10, [](int) {}, {.grain = 0}), troupe::ValueError);
  EXPECT_THROW((void)pool.parallel_reduce(0, 10, 0, std::plus<>{}, [](int i) { return i; }, {.grain = 0}),
               troupe::ValueError);
}
