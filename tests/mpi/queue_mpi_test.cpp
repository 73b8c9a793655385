// troupe::Queue, JoinableQueue and SimpleQueue across ranks and threads: no item lost or
// duplicated over 10^5 items from producers and consumers on every rank (exact, by id),
// maxsize held globally (the host's high-water mark), timeouts raising Full / Empty,
// close() waking every parked get and put on every rank, task_done / join across ranks,
// and the bad-input errors.
#include "troupe/across/queue.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/error.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Scope;
using troupe_test::Comm;
using troupe_test::quiet;

namespace {

bool contains(const std::exception& e, const std::string& what) {
  return std::string(e.what()).find(what) != std::string::npos;
}

// Waits, with a bound, until the host reports @p n parked gets (or puts): what a test that
// asserts "close() wakes every parked call" must wait for. No sleep: each probe is a call.
template <class Q>
bool wait_parked(const Q& q, std::size_t n, bool gets) {
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < until) {
    const auto s = q.stats();
    if ((gets ? s.parked_gets : s.parked_puts) >= n) return true;
    std::this_thread::yield();
  }
  return false;
}

// Every id of [0, total) exactly once among the ids every rank consumed (gathered on rank 0).
void expect_each_once(Comm& c, const std::vector<std::uint64_t>& mine, std::uint64_t total) {
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(c.size()));
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, c.comm);
  std::vector<int> displs(counts.size());
  int sum = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    displs[i] = sum;
    sum += counts[i];
  }
  std::vector<std::uint64_t> all(c.rank() == 0 ? static_cast<std::size_t>(sum) : 0);
  MPI_Gatherv(mine.data(), n, MPI_UINT64_T, all.data(), counts.data(), displs.data(), MPI_UINT64_T, 0, c.comm);
  if (c.rank() != 0) return;
  EXPECT_EQ(all.size(), total);
  std::vector<int> seen(total, 0);
  std::uint64_t bad = 0;
  for (auto id : all) {
    if (id >= total) {
      ++bad;
    } else {
      ++seen[id];
    }
  }
  EXPECT_EQ(bad, 0u);
  std::uint64_t lost = 0, dup = 0;
  for (int s : seen) {
    if (s == 0) ++lost;
    if (s > 1) ++dup;
  }
  EXPECT_EQ(lost, 0u) << "items lost";
  EXPECT_EQ(dup, 0u) << "items duplicated";
}

TEST(Queue, NoItemLostOrDuplicatedAcrossRanksAndThreads) {
  troupe::Runtime rt(quiet());
  Comm c;
  constexpr std::size_t kMax = 64;
  troupe::Queue<std::uint64_t> q(Scope::RanksAndThreads, kMax, rt.size() - 1);
  constexpr std::uint64_t kTotal = 100'000;
  constexpr std::uint64_t kSingles = 500;  // per rank, put one per call (a round trip each)
  const std::uint64_t per_rank = kTotal / static_cast<std::uint64_t>(rt.size());
  const std::uint64_t total = per_rank * static_cast<std::uint64_t>(rt.size());
  const std::uint64_t base = static_cast<std::uint64_t>(rt.rank()) * per_rank;
  // Producers, two threads per rank: one puts kSingles items one per call, the other the
  // rest of the rank's share in batches of 100 (put_many).
  std::vector<std::thread> prod;
  prod.emplace_back([&] {
    for (std::uint64_t i = 0; i < kSingles; ++i) q.put(base + i, 60s);
  });
  prod.emplace_back([&] {
    std::vector<std::uint64_t> batch;
    for (std::uint64_t i = kSingles; i < per_rank; ++i) {
      batch.push_back(base + i);
      if (batch.size() == 100 || i + 1 == per_rank) {
        q.put_many(batch, troupe::Deadline::after(60s, "test"));
        batch.clear();
      }
    }
  });
  // Consumers: two threads per rank, one get at a time and in batches, until ShutDown.
  std::vector<std::vector<std::uint64_t>> got(2);
  std::atomic<int> errors{0};
  std::vector<std::thread> cons;
  for (int t = 0; t < 2; ++t) {
    cons.emplace_back([&, t] {
      try {
        for (;;) {
          if (t == 0) {
            got[0].push_back(q.get(120s));
          } else {
            for (auto v : q.get_many(50, troupe::Deadline::after(120s, "test"))) got[1].push_back(v);
          }
        }
      } catch (const troupe::ShutDown&) {
      } catch (...) {
        ++errors;
      }
    });
  }
  for (auto& t : prod) t.join();
  MPI_Barrier(c.comm);  // every rank's producers are done
  if (rt.rank() == 0) q.close();
  for (auto& t : cons) t.join();
  EXPECT_EQ(errors.load(), 0);
  std::vector<std::uint64_t> mine = got[0];
  mine.insert(mine.end(), got[1].begin(), got[1].end());
  expect_each_once(c, mine, total);
  const auto s = q.stats();
  EXPECT_LE(s.high_water, kMax);  // maxsize held over every rank together
  EXPECT_EQ(s.puts, total);
  EXPECT_EQ(s.gets, total);
  EXPECT_EQ(s.qsize, 0u);
  EXPECT_TRUE(s.closed);
  MPI_Barrier(c.comm);
}

TEST(Queue, MaxsizeHoldsGloballyAndFullRaises) {
  troupe::Runtime rt(quiet());
  Comm c;
  constexpr std::ptrdiff_t kMax = 3;
  troupe::Queue<int> q(Scope::Ranks, kMax);
  EXPECT_EQ(q.maxsize(), kMax);
  if (rt.rank() == 0) {
    for (int i = 0; i < kMax; ++i) q.put(i);
    EXPECT_TRUE(q.full());
  }
  MPI_Barrier(c.comm);
  EXPECT_TRUE(q.full());
  EXPECT_EQ(q.qsize(), static_cast<std::size_t>(kMax));
  try {
    q.put_nowait(99);
    ADD_FAILURE() << "put_nowait on a full queue did not throw";
  } catch (const troupe::Full& e) {
    EXPECT_TRUE(contains(e, "Queue::put: the queue is full")) << e.what();
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(q.put(99, 40ms), troupe::Full);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 40ms);
  MPI_Barrier(c.comm);
  // Every rank parks a put beyond the bound; rank 0 takes items one by one: each get admits
  // exactly one parked put, so the queue never holds more than kMax.
  std::thread putter([&] { q.put(1000 + rt.rank(), 60s); });
  if (rt.rank() == 0) {
    EXPECT_TRUE(wait_parked(q, static_cast<std::size_t>(rt.size()), false));
    std::vector<int> seen;
    for (int i = 0; i < kMax + rt.size(); ++i) seen.push_back(q.get(60s));
    std::sort(seen.begin(), seen.end());
    for (int i = 0; i < kMax; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], i);
    for (int r = 0; r < rt.size(); ++r) EXPECT_EQ(seen[static_cast<std::size_t>(kMax + r)], 1000 + r);
    EXPECT_TRUE(q.empty());
  }
  putter.join();
  MPI_Barrier(c.comm);
  EXPECT_EQ(q.stats().high_water, static_cast<std::size_t>(kMax));
  MPI_Barrier(c.comm);
}

TEST(Queue, GetOnEmptyRaisesEmptyAfterTheTimeout) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Queue<std::string> q(Scope::Ranks, 0, rt.size() - 1);
  try {
    q.get_nowait();
    ADD_FAILURE() << "get_nowait on an empty queue did not throw";
  } catch (const troupe::Empty& e) {
    EXPECT_TRUE(contains(e, "Queue::get: the queue is empty")) << e.what();
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    q.get(50ms);
    ADD_FAILURE() << "get(50ms) on an empty queue did not throw";
  } catch (const troupe::Empty& e) {
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
    EXPECT_TRUE(contains(e, "timeout")) << e.what();
  }
  EXPECT_THROW(q.get_many(4, troupe::Deadline::after(10ms, "test")), troupe::Empty);
  EXPECT_THROW(q.get(-1ms), troupe::ValueError);
  MPI_Barrier(c.comm);
  // Nothing was lost by the timeouts: an item put afterwards is got exactly once.
  if (rt.rank() == 0) q.put("one");
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    EXPECT_EQ(q.get(60s), "one");
  }
  MPI_Barrier(c.comm);
  EXPECT_EQ(q.stats().gets, 1u);
  MPI_Barrier(c.comm);
}

TEST(Queue, CloseWakesEveryParkedGetAndPutOnEveryRank) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Queue<int> empty_q(Scope::RanksAndThreads);
  troupe::Queue<int> full_q(Scope::RanksAndThreads, 1);
  if (rt.rank() == 0) full_q.put(7);
  MPI_Barrier(c.comm);
  std::atomic<int> shut{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back([&] {
      try {
        empty_q.get(60s);
      } catch (const troupe::ShutDown& e) {
        if (contains(e, "Queue::get")) ++shut;
      }
    });
  }
  ts.emplace_back([&] {
    try {
      full_q.put(8, 60s);
    } catch (const troupe::ShutDown& e) {
      if (contains(e, "Queue::put: the queue is closed")) ++shut;
    }
  });
  if (rt.rank() == 0) {
    // Wait until every get and put of every rank is parked at the host, then close.
    EXPECT_TRUE(wait_parked(empty_q, 2u * static_cast<std::size_t>(rt.size()), true));
    EXPECT_TRUE(wait_parked(full_q, static_cast<std::size_t>(rt.size()), false));
    empty_q.close();
    full_q.close();
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(shut.load(), 3);
  // After close: put throws, get drains what is left, then throws.
  try {
    full_q.put(9);
    ADD_FAILURE() << "put after close did not throw";
  } catch (const troupe::ShutDown& e) {
    EXPECT_TRUE(contains(e, "Queue::put: the queue is closed")) << e.what();
  }
  EXPECT_THROW(empty_q.put_nowait(1), troupe::ShutDown);
  EXPECT_THROW(full_q.put_many({1, 2}), troupe::ShutDown);
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    EXPECT_EQ(full_q.get(60s), 7);  // the item queued before close
  }
  MPI_Barrier(c.comm);
  try {
    full_q.get(60s);
    ADD_FAILURE() << "get on a closed, empty queue did not throw";
  } catch (const troupe::ShutDown& e) {
    EXPECT_TRUE(contains(e, "Queue::get: the queue is closed and empty")) << e.what();
  }
  EXPECT_THROW(full_q.get_nowait(), troupe::ShutDown);
  EXPECT_TRUE(full_q.stats().closed);
  empty_q.close();  // idempotent
  MPI_Barrier(c.comm);
}

TEST(Queue, PutAsyncItemsRacingCloseAreEachGotOnceAndLaterOnesRaise) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Queue<std::uint64_t> q(Scope::RanksAndThreads);
  constexpr std::uint64_t kPerThread = 20'000;
  constexpr int kThreads = 2;
  constexpr std::size_t kCloseAfter = 3'000;  // the consumer closes the queue mid-stream
  // Producers on every rank put_async until ShutDown: what they sent is a prefix of their ids.
  std::vector<std::uint64_t> sent(kThreads, 0);
  std::vector<std::thread> prod;
  for (int t = 0; t < kThreads; ++t) {
    prod.emplace_back([&, t] {
      const std::uint64_t base = static_cast<std::uint64_t>(rt.rank() * kThreads + t) * kPerThread;
      try {
        for (std::uint64_t i = 0; i < kPerThread; ++i) {
          q.put_async(base + i);
          ++sent[static_cast<std::size_t>(t)];
        }
      } catch (const troupe::ShutDown& e) {
        EXPECT_TRUE(contains(e, "the queue is closed")) << e.what();
      }
    });
  }
  std::vector<std::uint64_t> got;
  if (rt.rank() == 0) {
    try {
      for (;;) {
        got.push_back(q.get(120s));
        if (got.size() == kCloseAfter) q.close();
      }
    } catch (const troupe::ShutDown&) {
    }
  }
  for (auto& t : prod) t.join();
  MPI_Barrier(c.comm);
  // close() has returned on rank 0: every rank knows, a put_async now raises.
  if (got.size() >= kCloseAfter || rt.rank() != 0) {
    EXPECT_THROW(q.put_async(1), troupe::ShutDown);
  }
  // Every id sent was got exactly once, none that was not sent.
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(kThreads * rt.size()));
  MPI_Gather(sent.data(), kThreads, MPI_UINT64_T, counts.data(), kThreads, MPI_UINT64_T, 0, c.comm);
  if (rt.rank() == 0) {
    std::vector<char> want(static_cast<std::size_t>(kPerThread) * counts.size(), 0);
    std::uint64_t n_sent = 0;
    for (std::size_t p = 0; p < counts.size(); ++p) {
      for (std::uint64_t i = 0; i < counts[p]; ++i) want[p * kPerThread + i] = 1;
      n_sent += counts[p];
    }
    std::uint64_t unexpected = 0, dup = 0;
    for (auto id : got) {
      if (id >= want.size() || want[id] == 0) {
        ++unexpected;
      } else if (want[id] == 2) {
        ++dup;
      } else {
        want[id] = 2;
      }
    }
    EXPECT_EQ(unexpected, 0u);
    EXPECT_EQ(dup, 0u);
    EXPECT_EQ(got.size(), n_sent) << "items put_async before close() returned were lost";
    EXPECT_GE(got.size(), kCloseAfter);
  }
  MPI_Barrier(c.comm);
}

TEST(JoinableQueue, JoinWaitsForEveryTaskDoneAcrossRanks) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::JoinableQueue<int> q(Scope::Ranks, 0, rt.size() - 1);
  constexpr int kPerRank = 100;
  for (int i = 0; i < kPerRank; ++i) q.put(rt.rank() * kPerRank + i);
  MPI_Barrier(c.comm);
  // Nobody has taken anything: a join with a timeout simply times out, twice.
  EXPECT_FALSE(q.join(20ms));
  EXPECT_FALSE(q.join(troupe::Deadline::after(5ms, "test")));
  MPI_Barrier(c.comm);
  // Every rank consumes (a thread), marks done; every rank's main thread joins.
  std::int64_t sum = 0;
  int done = 0;
  std::thread consumer([&] {
    try {
      for (;;) {
        sum += q.get(60s);
        ++done;
        q.task_done();
      }
    } catch (const troupe::ShutDown&) {
    }
  });
  EXPECT_TRUE(q.join(60s));
  EXPECT_EQ(q.stats().unfinished, 0u);
  MPI_Barrier(c.comm);  // every rank's join returned
  if (rt.rank() == 0) q.close();
  consumer.join();
  std::int64_t total = 0;
  int total_done = 0;
  MPI_Allreduce(&sum, &total, 1, MPI_INT64_T, MPI_SUM, c.comm);
  MPI_Allreduce(&done, &total_done, 1, MPI_INT, MPI_SUM, c.comm);
  const std::int64_t n = std::int64_t{kPerRank} * rt.size();
  EXPECT_EQ(total_done, n);
  EXPECT_EQ(total, n * (n - 1) / 2);
  MPI_Barrier(c.comm);
  // One more task_done than items: ValueError naming the call; the count stays 0.
  if (rt.rank() == 0) {
    try {
      q.task_done();
      ADD_FAILURE() << "task_done too often did not throw";
    } catch (const troupe::ValueError& e) {
      EXPECT_TRUE(contains(e, "JoinableQueue::task_done: called more times than items were put")) << e.what();
    }
    EXPECT_EQ(q.stats().unfinished, 0u);
    EXPECT_TRUE(q.join(1s));
  }
  MPI_Barrier(c.comm);
}

TEST(Queue, BadInputAndTheThreadsScope) {
  troupe::Runtime rt(quiet());
  Comm c;
  try {
    troupe::Queue<int> bad(Scope::Threads, -1);
    ADD_FAILURE() << "maxsize -1 did not throw";
  } catch (const troupe::ValueError& e) {
    EXPECT_TRUE(contains(e, "Queue: maxsize must be >= 0")) << e.what();
    EXPECT_TRUE(contains(e, "-1")) << e.what();
  }
  EXPECT_THROW(troupe::JoinableQueue<int>(Scope::Threads, -5), troupe::ValueError);
  // Scope::Threads: no messages; the same semantics.
  troupe::JoinableQueue<std::vector<int>> local(Scope::Threads, 2);
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) local.put({i, i * 2}, 60s);
    local.close();
  });
  int n = 0;
  try {
    for (;;) {
      auto v = local.get(60s);
      EXPECT_EQ(v.size(), 2u);
      EXPECT_EQ(v[0], n);
      EXPECT_EQ(v[1], 2 * n);
      ++n;
      local.task_done();
    }
  } catch (const troupe::ShutDown&) {
  }
  producer.join();
  EXPECT_EQ(n, 1000);
  EXPECT_TRUE(local.join(1s));
  EXPECT_LE(local.stats().high_water, 2u);
  EXPECT_THROW(local.task_done(), troupe::ValueError);
  EXPECT_THROW(local.get_many(0), troupe::ValueError);
  // A host that is not a rank.
  EXPECT_THROW(troupe::Queue<int>(Scope::Ranks, 0, rt.size()), troupe::ValueError);
  MPI_Barrier(c.comm);
}

TEST(SimpleQueue, PutGetAcrossRanks) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::SimpleQueue<std::string> q(Scope::Ranks);
  EXPECT_TRUE(q.empty());
  MPI_Barrier(c.comm);
  q.put("from " + std::to_string(rt.rank()));
  MPI_Barrier(c.comm);
  EXPECT_EQ(q.qsize(), static_cast<std::size_t>(rt.size()));
  MPI_Barrier(c.comm);
  if (rt.rank() == 0) {
    std::vector<std::string> got;
    for (int i = 0; i < rt.size(); ++i) got.push_back(q.get(60s));
    std::sort(got.begin(), got.end());
    for (int i = 0; i < rt.size(); ++i)
      EXPECT_NE(std::find(got.begin(), got.end(), "from " + std::to_string(i)), got.end());
    EXPECT_THROW(q.get(10ms), troupe::Empty);
  }
  MPI_Barrier(c.comm);
  EXPECT_TRUE(q.empty());
  MPI_Barrier(c.comm);
}

}  // namespace
