// troupe::Dict across ranks and threads: exact sums of concurrent blocking and batched updates
// to the same keys, insert/get/at/contains/erase across owners, KeyError, gather, size and
// for_each against the owners, async ops interleaved with blocking ones, an empty flush, a
// flush one rank joins too late (TimeoutError on every rank, none left hung), the
// Scope::Threads dict, exceptions thrown by update functions, and use after the Runtime.
#include "troupe/across/dict.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "troupe/core/error.hpp"
#include "troupe/runtime/runtime.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Scope;
using troupe_test::Comm;
using troupe_test::quiet;

namespace {

constexpr int kKeys = 1000;
constexpr int kThreads = 2;

long add_one(long n) { return n + 1; }

std::string word(int i) { return "key-" + std::to_string(i); }

}  // namespace

TEST(Dict, BlockingUpdatesFromEveryRankAndThreadSumExactly) {
  troupe::Runtime rt(quiet());
  troupe::Dict<std::string, long> d(Scope::RanksAndThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kKeys; ++i)
        d.update(
            word(i), [](long n) { return n + 1; }, 60s);
    });
  }
  for (auto& t : ts) t.join();
  d.flush(60s);  // every rank's updates are done (blocking ones are; flush is the barrier)
  const long want = static_cast<long>(kThreads) * rt.size();
  for (int i = rt.rank(); i < kKeys; i += rt.size()) {
    const std::string k = word(i);
    EXPECT_EQ(d.at(k, 60s), want) << k;
  }
  EXPECT_EQ(d.size(60s), static_cast<std::uint64_t>(kKeys));
}

TEST(Dict, AsyncUpdatesFromEveryRankAndThreadSumExactlyAfterFlush) {
  troupe::Runtime rt(quiet());
  // Small batches: many messages per destination, and a full buffer sent from inside async_update.
  troupe::Dict<std::int64_t, long> d(Scope::RanksAndThreads, troupe::DictOptions{.batch_bytes = 512});
  constexpr int kRounds = 3;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        for (int i = 0; i < kKeys; ++i) {
          if (t == 0) {
            d.async_update(std::int64_t{i}, [](long n) { return n + 1; });
          } else {
            d.async_update(std::int64_t{i}, troupe::remote<&add_one>);
          }
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  d.flush(60s);
  const long want = static_cast<long>(kThreads) * kRounds * rt.size();
  auto all = d.gather(0, 60s);
  if (rt.rank() == 0) {
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kKeys));
    for (const auto& [k, v] : all) EXPECT_EQ(v, want) << k;
  } else {
    EXPECT_TRUE(all.empty());
  }
  // A second round on the same dict: flush counts are cumulative.
  for (int i = 0; i < kKeys; ++i) d.async_update(std::int64_t{i}, [](long n) { return n + 10; });
  d.flush(60s);
  for (int i = rt.rank(); i < kKeys; i += rt.size()) {
    EXPECT_EQ(d.at(std::int64_t{i}, 60s), want + 10L * rt.size());
  }
  d.flush(60s);
}

TEST(Dict, InsertGetAtContainsEraseAcrossOwners) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Dict<std::tuple<int, std::string>, std::vector<double>> d(Scope::Ranks);
  const int me = rt.rank();
  const int n = rt.size();
  // Each rank inserts 50 keys of its own; every rank then reads every key.
  for (int i = 0; i < 50; ++i) d.insert({me, word(i)}, {double(me), double(i)}, 30s);
  MPI_Barrier(c.comm);
  for (int r = 0; r < n; ++r) {
    for (int i = 0; i < 50; ++i) {
      const auto k = std::make_tuple(r, word(i));
      ASSERT_TRUE(d.contains(k, 30s));
      EXPECT_EQ(d.get(k, 30s), (std::vector<double>{double(r), double(i)}));
      EXPECT_EQ(d.at(k), (std::vector<double>{double(r), double(i)}));
    }
  }
  EXPECT_FALSE(d.get({-1, "missing"}).has_value());
  EXPECT_FALSE(d.contains({-1, "missing"}));
  try {
    (void)d.at({-1, "missing"}, 30s);
    ADD_FAILURE() << "at of a missing key did not throw";
  } catch (const troupe::KeyError& e) {
    EXPECT_NE(std::string(e.what()).find("Dict::at"), std::string::npos) << e.what();
  }
  // insert assigns.
  d.insert({me, word(0)}, {42.0});
  EXPECT_EQ(d.at({me, word(0)}), std::vector<double>{42.0});
  EXPECT_EQ(d.size(30s), static_cast<std::uint64_t>(50 * n));
  // for_each sees exactly the keys this rank owns.
  std::size_t seen = 0;
  d.for_each([&](const std::tuple<int, std::string>& k, std::vector<double>& v) {
    EXPECT_EQ(d.owner(k), me);
    v.push_back(-1.0);  // stored back
    ++seen;
  });
  EXPECT_EQ(seen, d.local_size());
  MPI_Barrier(c.comm);
  std::uint64_t total = 0;
  std::uint64_t mine = seen;
  MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, c.comm);
  EXPECT_EQ(total, static_cast<std::uint64_t>(50 * n));
  EXPECT_EQ(d.at({me, word(1)}).back(), -1.0);
  MPI_Barrier(c.comm);
  // Erase half of the own keys; erase again returns false.
  for (int i = 0; i < 50; i += 2) EXPECT_TRUE(d.erase({me, word(i)}, 30s));
  for (int i = 0; i < 50; i += 2) EXPECT_FALSE(d.erase({me, word(i)}));
  MPI_Barrier(c.comm);
  EXPECT_EQ(d.size(30s), static_cast<std::uint64_t>(25 * n));
  auto all = d.gather(n - 1, 30s);
  if (me == n - 1) {
    ASSERT_EQ(all.size(), static_cast<std::size_t>(25 * n));
    for (const auto& [k, v] : all) {
      const int i = std::stoi(std::get<1>(k).substr(4));
      EXPECT_EQ(i % 2, 1);
      EXPECT_EQ(v, (std::vector<double>{double(std::get<0>(k)), double(i), -1.0}));
    }
  } else {
    EXPECT_TRUE(all.empty());
  }
  EXPECT_THROW((void)d.gather(n, 1s), troupe::ValueError);
}

TEST(Dict, AsyncOpsInterleavedWithBlockingOnesKeepProgramOrderPerKey) {
  troupe::Runtime rt(quiet());
  troupe::Dict<int, long> d(Scope::Ranks);
  const int me = rt.rank();
  const int n = rt.size();
  d.flush(30s);  // nothing pending
  d.flush(30s);
  // Keys of this rank (key = me + n * i): async then blocking on the same key sees the async op.
  for (int i = 0; i < 200; ++i) {
    const int k = me + n * i;
    d.async_insert(k, 5);
    d.async_update(k, [](long v) { return v * 2; });
    EXPECT_EQ(d.update(k, [](long v) { return v + 1; }), 11) << k;
    d.async_erase(k);
    EXPECT_FALSE(d.contains(k)) << k;
    d.async_insert(k, 7);
    EXPECT_EQ(d.get(k), std::optional<long>(7)) << k;
    if (i % 2 == 0) d.async_erase(k);
  }
  d.flush(30s);
  EXPECT_EQ(d.size(30s), static_cast<std::uint64_t>(100 * n));
  auto all = d.gather(0, 30s);
  if (me == 0) {
    ASSERT_EQ(all.size(), static_cast<std::size_t>(100 * n));
    for (const auto& [k, v] : all) {
      EXPECT_EQ((k / n) % 2, 1) << k;
      EXPECT_EQ(v, 7);
    }
  }
}

TEST(Dict, ExceptionsOfUpdateFunctionsReachTheCallerOrTheFlush) {
  troupe::Runtime rt(quiet());
  troupe::Dict<int, int> d(Scope::Ranks);
  const int me = rt.rank();
  const int n = rt.size();
  auto boom = [](int v) -> int {
    if (v >= 0) throw troupe::ValueError("boom");
    return v;
  };
  // Blocking: a key owned by the next rank (by search), and one owned here.
  for (int k = 0; k < 64; ++k) {
    if (d.owner(k) == (me + 1) % n) {
      EXPECT_THROW((void)d.update(k, boom, 30s), troupe::ValueError);
      EXPECT_FALSE(d.contains(k));
      break;
    }
  }
  // Async: every rank's update of one key owned by rank 0 throws there; every flush reports it.
  int k0 = 0;
  while (d.owner(k0) != 0) ++k0;
  if (n == 1) {
    // At one rank the update runs in the call itself, and its exception propagates.
    EXPECT_THROW(d.async_update(k0, boom), troupe::ValueError);
  } else {
    if (me != 0) d.async_update(k0, boom);
    try {
      d.flush(30s);
      ADD_FAILURE() << "flush did not report the failed async updates";
    } catch (const troupe::Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(n - 1) + " async_update"), std::string::npos) << e.what();
    }
    d.flush(30s);  // reported once; the dict is still usable
  }
}

TEST(Dict, AFlushOneRankJoinsTooLateTimesOutEverywhere) {
  troupe::Runtime rt(quiet());
  Comm c;
  if (rt.size() < 2) GTEST_SKIP() << "needs two ranks";
  troupe::Dict<int, int> d(Scope::Ranks);
  for (int k = 0; k < 100; ++k) d.async_insert(k, k);
  const auto t0 = std::chrono::steady_clock::now();
  if (rt.rank() != 0) {
    EXPECT_THROW(d.flush(200ms), troupe::TimeoutError);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
  }
  MPI_Barrier(c.comm);  // rank 0 comes only now: its Ialltoall completes, its Iallreduce cannot
  if (rt.rank() == 0) {
    EXPECT_THROW(d.flush(200ms), troupe::TimeoutError);
  }
  // The collective calls are unusable now, on every rank; per-key calls still work.
  EXPECT_THROW(d.flush(1s), troupe::InvalidStateError);
  EXPECT_THROW((void)d.size(1s), troupe::InvalidStateError);
  d.insert(1000 + rt.rank(), 1, 30s);
  EXPECT_EQ(d.at(1000 + rt.rank(), 30s), 1);
  MPI_Barrier(c.comm);
}

TEST(Dict, ThreadScopeUnderSeveralThreads) {
  // No Runtime needed.
  troupe::Dict<std::string, long> d(Scope::Threads);
  EXPECT_EQ(d.ranks(), 1);
  constexpr int kT = 4;
  std::vector<std::thread> ts;
  for (int t = 0; t < kT; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kKeys; ++i) {
        if (t % 2 == 0) {
          d.update(word(i), [](long v) { return v + 1; });
        } else {
          d.async_update(word(i), [](long v) { return v + 1; });
        }
      }
      d.insert("thread-" + std::to_string(t), t);
    });
  }
  for (auto& t : ts) t.join();
  d.flush();
  EXPECT_EQ(d.size(), static_cast<std::uint64_t>(kKeys + kT));
  for (int i = 0; i < kKeys; ++i) EXPECT_EQ(d.at(word(i)), kT);
  auto all = d.gather();
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kKeys + kT));
  EXPECT_EQ(all.at("thread-3"), 3);
  EXPECT_TRUE(d.erase("thread-3"));
  EXPECT_THROW((void)d.at("thread-3"), troupe::KeyError);
}

TEST(Dict, UseAfterTheRuntimeIsReleasedIsAnInvalidStateError) {
  Comm c;
  std::unique_ptr<troupe::Dict<int, int>> d;
  {
    troupe::Runtime rt(quiet());
    d = std::make_unique<troupe::Dict<int, int>>(Scope::Ranks);
    d->insert(rt.rank(), 1, 30s);
    d->flush(30s);
    MPI_Barrier(c.comm);
  }
  EXPECT_THROW(d->insert(0, 1), troupe::InvalidStateError);
  EXPECT_THROW((void)d->get(1), troupe::InvalidStateError);
  EXPECT_THROW(d->async_insert(0, 1), troupe::InvalidStateError);
  EXPECT_THROW(d->flush(1s), troupe::InvalidStateError);
  d.reset();  // no flush, no hang
}

TEST(Dict, CrossRankScopeWithoutARuntimeIsAClearError) {
  EXPECT_THROW((troupe::Dict<int, int>(Scope::Ranks)), troupe::InvalidStateError);
  EXPECT_THROW((troupe::Dict<int, int>(Scope::Threads, troupe::DictOptions{.batch_bytes = 0})), troupe::ValueError);
}
