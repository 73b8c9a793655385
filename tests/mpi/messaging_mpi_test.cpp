// The messaging layer across ranks: records batched and delivered exactly once in order,
// large records, the error policy on malformed traffic (both sides told), tree collectives
// in rank order with O(log P) messages per rank, and exact quiescence.
#include "troupe/messaging/messenger.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "troupe/pool/thread_pool.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Deadline;
using troupe::messaging::Kind;
using troupe::messaging::Messenger;
using troupe::messaging::MessengerOptions;
using troupe_test::Comm;

namespace {

// Bounded wait on a predicate; drives the messenger when it has no progress thread.
template <class Pred>
bool wait_until(Pred pred, Messenger& m, std::chrono::seconds limit = 60s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    if (!m.try_progress()) std::this_thread::yield();
  }
  return true;
}

// One record of a chain: hops still to go, and the seed that picks the next rank.
struct Hop {
  std::uint32_t left = 0;
  std::uint32_t seed = 0;
  TROUPE_FIELDS(left, seed)
};

void write_u64(troupe::wire::Writer& w, std::uint64_t v) { troupe::wire::save(w, v); }

void run_flood(bool progress_thread) {
  Comm c;
  MessengerOptions opts;
  opts.engine.progress_thread = progress_thread;
  Messenger m(c.comm, opts);
  const int size = m.size();
  constexpr std::uint64_t kPerPeer = 20000;
  std::vector<std::atomic<std::uint64_t>> count(static_cast<std::size_t>(size));
  std::vector<std::uint64_t> next(static_cast<std::size_t>(size), 0);  // handlers run one at a time
  std::atomic<std::uint64_t> out_of_order{0};
  m.on(Kind::kTask, [&](int src, troupe::wire::Reader& in) {
    const auto v = in.read<std::uint64_t>();
    if (v != next[static_cast<std::size_t>(src)]) out_of_order.fetch_add(1);
    next[static_cast<std::size_t>(src)] = v + 1;
    count[static_cast<std::size_t>(src)].fetch_add(1);
  });
  m.start();
  auto sender = [&](int parity) {
    for (std::uint64_t i = 0; i < kPerPeer; ++i) {
      for (int d = parity; d < size; d += 2) m.send(d, Kind::kTask, [i](troupe::wire::Writer& w) { write_u64(w, i); });
    }
  };
  if (progress_thread) {
    std::thread t0(sender, 0), t1(sender, 1);  // two threads send at once
    t0.join();
    t1.join();
  } else {
    sender(0);
    sender(1);
  }
  ASSERT_TRUE(wait_until(
      [&] {
        for (auto& x : count) {
          if (x.load() != kPerPeer) return false;
        }
        return true;
      },
      m))
      << "rank " << m.rank() << " did not receive every record in time";
  EXPECT_EQ(out_of_order.load(), 0u) << "records from one sender arrived out of order";
  const auto st = m.stats();
  EXPECT_EQ(st.records_sent, kPerPeer * static_cast<std::uint64_t>(size));
  EXPECT_LT(st.batches_sent, st.records_sent / 10) << "small records were batched";
  EXPECT_EQ(st.bad_records, 0u);
  m.quiesce(Deadline::after(60s, "test"));  // nobody leaves while a peer may still send to it
}

}  // namespace

TEST(Messaging, FloodOfRecordsArrivesExactlyOnceInOrder) { run_flood(true); }

TEST(Messaging, FunneledModeDrivenByTheWaitingThread) { run_flood(false); }

TEST(Messaging, LargeRecordsArriveIntact) {
  Comm c;
  Messenger m(c.comm);
  std::mutex mu;
  std::vector<std::vector<std::byte>> got;
  m.on(Kind::kTask, [&](int, troupe::wire::Reader& in) {
    std::lock_guard lock(mu);
    got.push_back(in.read<std::vector<std::byte>>());
  });
  m.start();
  const int rank = m.rank(), size = m.size();
  const std::size_t big = (8u << 20) + 13;  // 8 MiB + a tail, far above the batch size
  std::vector<std::byte> payload(big);
  for (std::size_t i = 0; i < big; ++i)
    payload[i] = static_cast<std::byte>((i * 31 + static_cast<std::size_t>(rank)) & 0xff);
  const int to = (rank + 1) % size;
  m.send(to, Kind::kTask, [&](troupe::wire::Writer& w) { troupe::wire::save(w, payload); });
  m.send(to, Kind::kTask, [](troupe::wire::Writer& w) { troupe::wire::save(w, std::vector<std::byte>(3)); });
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return got.size() == 2;
      },
      m));
  const int from = (rank + size - 1) % size;
  std::lock_guard lock(mu);
  ASSERT_EQ(got[0].size(), big);
  for (std::size_t i = 0; i < big; i += 4099) {
    ASSERT_EQ(got[0][i], static_cast<std::byte>((i * 31 + static_cast<std::size_t>(from)) & 0xff)) << "byte " << i;
  }
  EXPECT_EQ(got[1].size(), 3u) << "the small record behind the large one kept its order";
  m.barrier(Deadline::after(60s, "test"));
}

TEST(Messaging, MalformedTrafficBreaksBothSidesAndIsNeverJustPrinted) {
  Comm c;
  Messenger m(c.comm);
  std::mutex mu;
  std::vector<std::string> told;  // what on_broken heard
  std::atomic<int> good{0};
  m.on(Kind::kTask, [&](int, troupe::wire::Reader& in) {
    (void)in.read<std::uint64_t>();
    good.fetch_add(1);
  });
  m.on_broken([&](int, const std::string& cause) {
    std::lock_guard lock(mu);
    told.push_back(cause);
  });
  m.start();
  const int to = (m.rank() + 1) % m.size();
  // Raw MPI traffic on the engine's tag that is not a batch (the test owns the comm; the
  // harness runs at MPI_THREAD_MULTIPLE), a kind nobody knows, a record its handler cannot
  // read (3 bytes, not a u64), and a good record: the messenger keeps working.
  const char junk[24] = "definitely not a batch";
  MPI_Send(junk, sizeof junk, MPI_CHAR, to, troupe::engine::Engine::kTag, c.comm);
  const std::byte three[3] = {};
  m.send_raw(to, 99, three);
  m.send_raw(to, static_cast<std::uint16_t>(Kind::kTask), three);
  m.send(to, Kind::kTask, [](troupe::wire::Writer& w) { write_u64(w, 7); });
  // Each rank finds 3 faults in what it received and hears of 3 in what it sent.
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return good.load() == 1 && told.size() == 6;
      },
      m));
  const auto errors = m.errors();
  const auto has = [&](const std::string& what) {
    for (const auto& e : errors) {
      if (e.find(what) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("bad magic")) << ::testing::PrintToString(errors);
  EXPECT_TRUE(has("unknown kind 99")) << ::testing::PrintToString(errors);
  EXPECT_TRUE(has("bad task record")) << ::testing::PrintToString(errors);
  EXPECT_TRUE(has("reported:")) << "the sender was told: " << ::testing::PrintToString(errors);
  EXPECT_EQ(m.stats().bad_records, 3u);
  m.barrier(Deadline::after(60s, "test"));
}

TEST(Messaging, TreeCollectivesKeepRankOrderWithLogMessagesPerRank) {
  Comm c;
  Messenger m(c.comm);
  m.start();
  const int rank = m.rank(), p = m.size();
  const auto deadline = Deadline::after(120s, "test");
  const auto log2p = static_cast<std::uint64_t>(std::ceil(std::log2(static_cast<double>(p))));
  auto concat = [](std::vector<std::byte> l, std::vector<std::byte> r) {
    l.insert(l.end(), r.begin(), r.end());
    return l;
  };
  for (int root = 0; root < p; ++root) {
    const auto before = m.stats();
    auto got = m.reduce({static_cast<std::byte>(rank)}, concat, root, deadline);
    const auto mid = m.stats();
    auto all =
        m.broadcast(rank == root ? std::vector<std::byte>(3, static_cast<std::byte>(root)) : std::vector<std::byte>{},
                    root, deadline);
    const auto after = m.stats();
    // Reduce: every rank but the root sends exactly one message. Broadcast: at most log2 P
    // sent, and P - 1 in all. (What arrives while a rank is inside one collective may
    // already belong to the next, so receives are checked over the whole run below.)
    EXPECT_EQ(mid.mail_sent - before.mail_sent, rank == root ? 0u : 1u) << "root " << root;
    EXPECT_LE(after.mail_sent - mid.mail_sent, log2p) << "root " << root;
    const auto all_sent = m.allreduce_value(after.mail_sent - mid.mail_sent, std::plus<>{}, deadline);
    EXPECT_EQ(all_sent, static_cast<std::uint64_t>(p - 1)) << "root " << root;
    if (rank == root) {
      ASSERT_TRUE(got.has_value());
      ASSERT_EQ(got->size(), static_cast<std::size_t>(p));
      for (int i = 0; i < p; ++i) {  // rank order, starting at the root
        EXPECT_EQ((*got)[static_cast<std::size_t>(i)], static_cast<std::byte>((root + i) % p)) << "root " << root;
      }
    } else {
      EXPECT_FALSE(got.has_value());
    }
    EXPECT_EQ(all, std::vector<std::byte>(3, static_cast<std::byte>(root)));
  }
  // Per root: a reduce and a broadcast, then the allreduce (reduce + broadcast) of the
  // check above: at most 2 (log2 P + 1) receives per rank and root.
  const auto loop = m.stats();
  EXPECT_LE(loop.mail_received, static_cast<std::uint64_t>(p) * 2 * (log2p + 1));
  const long total = m.allreduce_value(
      static_cast<long>(rank + 1), [](long a, long b) { return a + b; }, deadline);
  EXPECT_EQ(total, static_cast<long>(p) * (p + 1) / 2);
  const auto order = m.allreduce_value(
      std::vector<int>{rank},
      [](std::vector<int> a, const std::vector<int>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
      },
      deadline);
  std::vector<int> expected(static_cast<std::size_t>(p));
  for (int i = 0; i < p; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(order, expected) << "allreduce combines in rank order";
  m.barrier(deadline);
  EXPECT_THROW(m.reduce({}, concat, p, deadline), troupe::ValueError);
  EXPECT_THROW(m.broadcast({}, -1, deadline), troupe::ValueError);
  // A slot nobody fills: a clear timeout, not a hang.
  EXPECT_THROW(m.take(rank, ~0ull, Deadline::after(50ms, "test"), "test take"), troupe::TimeoutError);
}

TEST(Messaging, QuiesceIsExactForChainsOfRecordsAndDeferredWork) {
  Comm c;
  Messenger m(c.comm);
  troupe::ThreadPool pool(2);
  std::atomic<std::uint64_t> handled{0};
  const int p = m.size();
  auto forward = [&m, p](const Hop& h) {
    std::minstd_rand rng(h.seed);
    const int to = static_cast<int>(rng() % static_cast<unsigned>(p));
    m.send(to, Kind::kTask, [&](troupe::wire::Writer& w) { troupe::wire::save(w, Hop{h.left - 1, h.seed * 31 + 7}); });
  };
  m.on(Kind::kTask, [&](int, troupe::wire::Reader& in) {
    const auto h = in.read<Hop>();
    handled.fetch_add(1);
    if (h.left == 0) return;
    if (h.seed % 2) {
      forward(h);  // straight from the handler
    } else {
      m.begin_work();  // deferred to a pool: quiescence must wait for it
      (void)pool.submit([&m, h, forward] {
        forward(h);
        m.end_work();
      });
    }
  });
  m.start();
  std::minstd_rand rng(static_cast<unsigned>(1234 + m.rank()));
  long long started = 0;
  for (int chain = 0; chain < 200; ++chain) {
    const Hop h{static_cast<std::uint32_t>(rng() % 40), static_cast<std::uint32_t>(rng())};
    started += h.left + 1;  // records of this chain, the first included
    m.send(static_cast<int>(rng() % static_cast<unsigned>(p)), Kind::kTask,
           [&](troupe::wire::Writer& w) { troupe::wire::save(w, h); });
  }
  m.quiesce(Deadline::after(120s, "test"));
  // Every record of every chain was handled when quiesce returned, on every rank.
  const auto deadline = Deadline::after(60s, "test");
  const long long mine = static_cast<long long>(handled.load());
  EXPECT_EQ(m.allreduce_value(mine, std::plus<>{}, deadline), m.allreduce_value(started, std::plus<>{}, deadline));
  pool.shutdown(true);
}

// Failure detection (issue 7): rank 0 waits on rank 1, which stalls without progress (no
// progress thread, its only thread held in a barrier on another communicator). After
// failure_timeout of silence rank 0 declares it lost; every other rank learns it from the
// notice; rank 1, once it drives progress again, learns that it was declared lost and its
// owner breaks. No sleeps: each rank waits for exactly the verdict it asserts.
TEST(Messaging, SilentPeerIsDeclaredLostEverywhereAndLearnsIt) {
  if (troupe_test::world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  Comm c;
  MessengerOptions opts;
  opts.failure_timeout = 300ms;
  const int me = troupe_test::world_rank();
  opts.engine.progress_thread = me != 1;
  Messenger m(c.comm, opts);
  std::mutex mu;
  std::vector<int> lost_seen;
  std::string broken_cause;
  m.on_lost([&](int r, const std::string&) {
    std::lock_guard lock(mu);
    lost_seen.push_back(r);
  });
  m.on_broken([&](int, const std::string& cause) {
    std::lock_guard lock(mu);
    broken_cause = cause;
  });
  m.start();
  if (me == 1) {
    MPI_Barrier(MPI_COMM_WORLD);  // stalled: nothing answers rank 0's pings meanwhile
    ASSERT_TRUE(wait_until(
        [&] {
          std::lock_guard lock(mu);
          return !broken_cause.empty();
        },
        m));
    EXPECT_NE(broken_cause.find("declared this rank lost"), std::string::npos) << broken_cause;
  } else {
    if (me == 0) m.watch(1, +1);
    ASSERT_TRUE(wait_until([&] { return m.is_lost(1); }, m)) << "rank 1 was never declared lost";
    EXPECT_EQ(m.lost(), std::vector<int>{1});
    {
      std::lock_guard lock(mu);
      EXPECT_EQ(lost_seen, std::vector<int>{1});
    }
    bool named = false;
    for (const auto& e : m.errors())
      named = named || e.find("rank 1 lost: no message from rank 1") != std::string::npos;
    EXPECT_TRUE(named) << "the cause does not name the silent rank";
    if (me == 0) m.watch(1, -1);
    EXPECT_THROW((void)m.take(1, 42, Deadline::after(5s, "test"), "test"), troupe::BrokenExecutor);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}
