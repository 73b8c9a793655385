// troupe::Bag across ranks and threads: a tree of pushes from pushes ends exactly (every
// item processed once, by id, on some rank), work pushed on one rank reaches every rank,
// an empty bag ends at once, timeouts raise naming the call, several consumer threads per
// rank, consumers as tasks of a one-worker pool, and the errors of bad arguments.
#include "troupe/across/bag.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/error.hpp"
#include "troupe/pool/thread_pool.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Scope;
using troupe_test::Comm;
using troupe_test::quiet;

namespace {

// A node of a random tree: its id encodes its path (base 5, digits 1..4), so ids are unique.
struct Node {
  std::uint64_t id = 0;
  int depth = 0;
};

std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr int kMaxDepth = 12;
// 0..4 children (mean 1.6): a few subtrees are deep and wide, most die out.
int fan_out(const Node& n) {
  return n.depth >= kMaxDepth ? 0 : static_cast<int>(mix(n.id) % 5) * (mix(n.id + 7) % 5 < 4);
}
Node child(const Node& n, int k) { return Node{n.id * 5 + static_cast<std::uint64_t>(k) + 1, n.depth + 1}; }

constexpr int kRoots = 40;
Node root(int i) { return Node{static_cast<std::uint64_t>(i) + 1'000'000'000ull, 0}; }

// The serial answer: every id of the forest.
std::vector<std::uint64_t> serial_ids() {
  std::vector<std::uint64_t> ids;
  std::vector<Node> stack;
  for (int i = 0; i < kRoots; ++i) stack.push_back(root(i));
  while (!stack.empty()) {
    Node n = stack.back();
    stack.pop_back();
    ids.push_back(n.id);
    for (int k = 0; k < fan_out(n); ++k) stack.push_back(child(n, k));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Some CPU per item, so that ranks overlap and steal.
void spin(std::chrono::microseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

// Every rank's ids at rank 0, sorted (empty elsewhere).
std::vector<std::uint64_t> gather_ids(const Comm& c, std::vector<std::uint64_t> mine) {
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(c.size())), displs(static_cast<std::size_t>(c.size()));
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, c.comm);
  int total = 0;
  for (int r = 0; r < c.size(); ++r) {
    displs[static_cast<std::size_t>(r)] = total;
    total += counts[static_cast<std::size_t>(r)];
  }
  std::vector<std::uint64_t> all(static_cast<std::size_t>(c.rank() == 0 ? total : 0));
  MPI_Gatherv(mine.data(), n, MPI_UINT64_T, all.data(), counts.data(), displs.data(), MPI_UINT64_T, 0, c.comm);
  std::sort(all.begin(), all.end());
  return all;
}

std::uint64_t sum_over_ranks(const Comm& c, std::uint64_t v) {
  std::uint64_t s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_UINT64_T, MPI_SUM, c.comm);
  return s;
}

// The tree, processed by every consumer of every rank; checks each id once, exactly.
void run_tree(Scope scope, int consumers, bool roots_everywhere) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Bag<Node> bag(scope, consumers);
  if (roots_everywhere) {
    for (int i = c.rank(); i < kRoots; i += c.size()) bag.push(root(i));
  } else if (c.rank() == 0) {
    for (int i = 0; i < kRoots; ++i) bag.push(root(i));
  }
  std::mutex mu;
  std::vector<std::uint64_t> mine;
  const std::uint64_t here = bag.run(
      [&](const Node& n, troupe::Bag<Node>& b) {
        spin(20us);
        for (int k = 0; k < fan_out(n); ++k) b.push(child(n, k));
        std::lock_guard lock(mu);
        mine.push_back(n.id);
      },
      120s);
  EXPECT_EQ(here, mine.size());
  EXPECT_TRUE(bag.terminated());
  const auto st = bag.stats();
  EXPECT_EQ(st.processed, here);
  EXPECT_EQ(st.global_pushed, st.global_processed);
  const auto expected = serial_ids();
  EXPECT_EQ(st.global_processed, expected.size());
  EXPECT_EQ(sum_over_ranks(c, here), expected.size());
  const auto all = gather_ids(c, mine);
  if (c.rank() == 0) {
    EXPECT_EQ(all, expected) << "every item processed once, by id";
  }
  MPI_Barrier(c.comm);
}

TEST(Bag, TreeOfPushesFromPushesEndsExactlyOnce) { run_tree(Scope::Ranks, 1, false); }

TEST(Bag, TreeWithRootsOnEveryRankEndsExactlyOnce) { run_tree(Scope::Ranks, 1, true); }

TEST(Bag, ThreeConsumerThreadsPerRank) { run_tree(Scope::RanksAndThreads, 3, false); }

TEST(Bag, ScopeThreadsNeedsNoRanks) {
  troupe::Bag<Node> bag(Scope::Threads, 4);
  EXPECT_EQ(bag.size(), 1);
  for (int i = 0; i < kRoots; ++i) bag.push(root(i));
  std::mutex mu;
  std::vector<std::uint64_t> ids;
  const auto n = bag.run(
      [&](Node nd, troupe::Bag<Node>& b) {
        for (int k = 0; k < fan_out(nd); ++k) b.push(child(nd, k));
        std::lock_guard lock(mu);
        ids.push_back(nd.id);
      },
      60s);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, serial_ids());
  EXPECT_EQ(n, ids.size());
}

// All items pushed on rank 0: each rank's first item waits (bounded) until every rank has
// one, so the test passes only if stealing moved work to every rank. No timing involved.
TEST(Bag, WorkPushedOnOneRankReachesEveryRank) {
  troupe::Runtime rt(quiet());
  Comm c;
  Comm gate;
  troupe::Bag<std::int64_t> bag(Scope::Ranks);
  constexpr std::int64_t kItems = 2000;
  if (c.rank() == 0) {
    for (std::int64_t i = 0; i < kItems; ++i) bag.push(i);
  }
  MPI_Request req = MPI_REQUEST_NULL;
  bool first = true;
  bool gate_ok = true;
  std::int64_t sum = 0;
  const auto here = bag.run(
      [&](std::int64_t v) {
        sum += v;
        if (!first) return;
        first = false;
        MPI_Ibarrier(gate.comm, &req);
        int done = 0;
        const auto until = std::chrono::steady_clock::now() + 60s;
        while (!done && std::chrono::steady_clock::now() < until) {
          MPI_Test(&req, &done, MPI_STATUS_IGNORE);
          if (!done) std::this_thread::yield();
        }
        gate_ok = done != 0;
      },
      120s);
  EXPECT_TRUE(gate_ok) << "rank " << c.rank() << ": not every rank got an item within 60 s";
  if (!gate_ok && req != MPI_REQUEST_NULL) {
    MPI_Cancel(&req);
  }
  EXPECT_GT(here, 0u) << "rank " << c.rank() << " processed nothing";
  const auto st = bag.stats();
  if (c.rank() != 0) {
    EXPECT_GT(st.received, 0u);
  }
  EXPECT_EQ(sum_over_ranks(c, here), static_cast<std::uint64_t>(kItems));
  std::int64_t total = 0;
  MPI_Allreduce(&sum, &total, 1, MPI_INT64_T, MPI_SUM, c.comm);
  EXPECT_EQ(total, kItems * (kItems - 1) / 2);
  MPI_Barrier(c.comm);
}

TEST(Bag, EmptyBagEndsAtOnceOnEveryRank) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Bag<int> bag(Scope::Ranks);
  EXPECT_FALSE(bag.pop(60s).has_value());
  EXPECT_TRUE(bag.terminated());
  EXPECT_FALSE(bag.pop(60s).has_value()) << "pop after the end: nullopt again";
  EXPECT_EQ(bag.stats().global_pushed, 0u);
  EXPECT_THROW(bag.push(1), troupe::InvalidStateError);
  MPI_Barrier(c.comm);
}

// Two consumers declared per rank, one pops: never idle, so every pop times out; then both
// pop and the bag ends.
TEST(Bag, PopTimesOutNamingTheCallThenEnds) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Bag<int> bag(Scope::RanksAndThreads, 2);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)bag.pop(100ms);
    ADD_FAILURE() << "pop did not time out";
  } catch (const troupe::TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("Bag::pop"), std::string::npos) << e.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  MPI_Barrier(c.comm);
  std::optional<int> a, b;
  std::thread other([&] { b = bag.pop(60s); });
  a = bag.pop(60s);
  other.join();
  EXPECT_FALSE(a.has_value());
  EXPECT_FALSE(b.has_value());
  MPI_Barrier(c.comm);
}

TEST(Bag, RunTimeoutRaisesNamingTheCall) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Bag<int> bag(Scope::Ranks);
  bag.push(0);
  // Every item pushes the next one: the work never ends, so every rank's run times out.
  try {
    (void)bag.run(
        [](int v, troupe::Bag<int>& b) {
          spin(1ms);
          b.push(v + 1);
        },
        100ms);
    ADD_FAILURE() << "run did not time out";
  } catch (const troupe::TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("Bag::run"), std::string::npos) << e.what();
  }
  MPI_Barrier(c.comm);
  // The timed-out consumers pop again, pushing nothing: the bag drains and ends.
  while (bag.pop(60s)) {
  }
  const auto st = bag.stats();
  EXPECT_TRUE(st.terminated);
  EXPECT_EQ(st.global_pushed, st.global_processed);
  EXPECT_EQ(sum_over_ranks(c, st.pushed), st.global_pushed);
  MPI_Barrier(c.comm);
}

// An exception of fn does not stall the other ranks: run() processes every item, then
// rethrows the first one after the global end.
TEST(Bag, RunRethrowsTheFirstErrorOfFnAfterTheEnd) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Bag<int> bag(Scope::Ranks);
  for (int i = 0; i < 10; ++i) bag.push(c.rank() * 100 + i);
  std::uint64_t calls = 0;
  try {
    (void)bag.run(
        [&](int v) {
          ++calls;
          if (v % 10 == 3) throw std::runtime_error("item " + std::to_string(v) + " failed");
        },
        60s);
    // A rank whose item 3 was stolen by another rank may see no error itself.
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("failed"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(bag.terminated());
  EXPECT_EQ(bag.stats().global_processed, static_cast<std::uint64_t>(10 * c.size()));
  EXPECT_EQ(sum_over_ranks(c, calls), static_cast<std::uint64_t>(10 * c.size()));
  MPI_Barrier(c.comm);
}

// Three consumers per rank run as tasks of a one-worker pool: the worker's wait in pop()
// runs the other consumer tasks (helping), so all three wait at once and the bag ends.
TEST(Bag, ConsumersAsTasksOfAOneWorkerPoolDoNotDeadlock) {
  troupe::Runtime rt(quiet());
  Comm c;
  troupe::Bag<Node> bag(Scope::RanksAndThreads, 3);
  if (c.rank() == 0) {
    for (int i = 0; i < kRoots; ++i) bag.push(root(i));
  }
  std::atomic<std::uint64_t> processed{0};
  {
    troupe::ThreadPool pool(1);
    std::vector<troupe::Future<std::uint64_t>> fs;
    for (int t = 0; t < 3; ++t) {
      fs.push_back(pool.submit([&bag, &processed] {
        std::uint64_t n = 0;
        while (auto nd = bag.pop(120s)) {
          for (int k = 0; k < fan_out(*nd); ++k) bag.push(child(*nd, k));
          ++n;
          processed.fetch_add(1);
        }
        return n;
      }));
    }
    std::uint64_t sum = 0;
    for (auto& f : fs) sum += f.result(150s);
    EXPECT_EQ(sum, processed.load());
  }
  EXPECT_EQ(sum_over_ranks(c, processed.load()), serial_ids().size());
  MPI_Barrier(c.comm);
}

TEST(Bag, BadArgumentsRaiseNamingTheProblem) {
  troupe::Runtime rt(quiet());
  Comm c;
  try {
    troupe::Bag<int> bag(Scope::RanksAndThreads, 0);
    ADD_FAILURE() << "consumers_per_rank 0 accepted";
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("consumers_per_rank must be >= 1, got 0"), std::string::npos) << e.what();
  }
  try {
    troupe::Bag<int> bag(Scope::Ranks, 2);
    ADD_FAILURE() << "Scope::Ranks with 2 consumers accepted";
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("Scope::RanksAndThreads"), std::string::npos) << e.what();
  }
  troupe::Bag<int> bag(Scope::Ranks);
  EXPECT_THROW((void)bag.pop(-1ms), troupe::ValueError);
  EXPECT_FALSE(bag.pop(60s).has_value());
  MPI_Barrier(c.comm);
}

TEST(Bag, CancelledPopRaisesCancelledError) {
  troupe::Bag<int> bag(Scope::Threads, 2);  // one of two consumers pops: never ends
  troupe::CancellationSource src;
  src.request_stop();
  EXPECT_THROW((void)bag.pop(troupe::Deadline{}, src.get_token()), troupe::CancelledError);
}

}  // namespace
