// troupe::Counter across ranks and threads: a self-scheduling loop hands out every index
// exactly once, value() and start, the host option, bad input, and the thread scope.
#include "troupe/across/counter.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/error.hpp"

#include "mpi_test_util.hpp"

using troupe::Scope;
using troupe_test::Comm;
using troupe_test::quiet;

namespace {

TEST(Counter, SelfSchedulingLoopHandsOutEveryIndexExactlyOnce) {
  troupe::Runtime rt(quiet());
  Comm c;
  constexpr int kThreads = 3;
  constexpr long kN = 20'000;
  troupe::Counter next(Scope::RanksAndThreads, 0, rt.size() - 1);
  std::vector<long> mine;
  std::mutex mu;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      std::vector<long> got;
      for (long i = next.next(); i < kN; i = next.next()) got.push_back(i);
      std::lock_guard lock(mu);
      mine.insert(mine.end(), got.begin(), got.end());
    });
  }
  for (auto& t : ts) t.join();
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(rt.size()));
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, c.comm);
  std::vector<int> displs(counts.size());
  int total = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    displs[i] = total;
    total += counts[i];
  }
  std::vector<long> all(static_cast<std::size_t>(rt.rank() == 0 ? total : 0));
  MPI_Gatherv(mine.data(), n, MPI_LONG, all.data(), counts.data(), displs.data(), MPI_LONG, 0, c.comm);
  if (rt.rank() == 0) {
    ASSERT_EQ(total, kN);
    std::sort(all.begin(), all.end());
    for (long i = 0; i < kN; ++i) ASSERT_EQ(all[static_cast<std::size_t>(i)], i);
  }
  MPI_Barrier(c.comm);
  // Every thread took one index past the end.
  EXPECT_EQ(next.value(), kN + long{kThreads} * rt.size());
  MPI_Barrier(c.comm);
}

TEST(Counter, StartIncrementAndHost) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Counter counter(Scope::Ranks, 100);
  EXPECT_EQ(counter.scope(), Scope::Ranks);
  (void)counter.next(rt.rank() + 1);
  MPI_Barrier(c.comm);
  const long sum = static_cast<long>(rt.size()) * (rt.size() + 1) / 2;
  EXPECT_EQ(counter.value(), 100 + sum);
  EXPECT_EQ(counter.fetch_add(0), 100 + sum);
  MPI_Barrier(c.comm);
  try {
    troupe::Counter bad(Scope::Ranks, 0, rt.size());
    ADD_FAILURE() << "no error";
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("Counter: host must be a rank in [0, " + std::to_string(rt.size())),
              std::string::npos)
        << e.what();
  }
}

TEST(Counter, ThreadScopeIsAnAtomic) {
  troupe::Counter counter;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) (void)counter.next();
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter.value(), 40'000);
}

}  // namespace
