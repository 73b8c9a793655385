// The engine across ranks: exact delivery of floods of messages, order per sender, large
// messages (no 2 GiB limit), funneled poll mode, watched requests and clear errors for bad
// arguments. (Batches, records and malformed traffic: messaging_mpi_test.cpp.)
#include "troupe/engine/engine.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <numeric>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::engine::Engine;
using troupe::engine::EngineOptions;
using troupe_test::Comm;

namespace {

std::vector<std::byte> bytes_of(std::uint64_t v) {
  std::vector<std::byte> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}
std::uint64_t value_of(std::span<const std::byte> b) {
  std::uint64_t v = 0;
  if (b.size() == sizeof v) std::memcpy(&v, b.data(), sizeof v);
  return v;
}

// Bounded wait on a predicate, polling the engine in funneled mode.
template <class Pred>
bool wait_until(Pred pred, std::chrono::seconds limit, Engine* poll_engine = nullptr) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    if (poll_engine) {
      poll_engine->poll();
    } else {
      std::this_thread::sleep_for(50us);
    }
  }
  return true;
}

void run_flood(bool progress_thread) {
  Comm c;
  const int rank = c.rank(), size = c.size();
  constexpr std::uint64_t kPerPeer = 20000;
  EngineOptions opts;
  opts.progress_thread = progress_thread;
  Engine engine(c.comm, opts);
  std::vector<std::atomic<std::uint64_t>> count(static_cast<std::size_t>(size));
  std::vector<std::atomic<std::uint64_t>> next_expected(static_cast<std::size_t>(size));
  std::atomic<std::uint64_t> out_of_order{0};
  engine.on_receive([&](int src, std::vector<std::byte> p) {
    const auto v = value_of(p);
    auto& nx = next_expected[static_cast<std::size_t>(src)];
    if (v != nx.load()) out_of_order.fetch_add(1);
    nx.store(v + 1);
    count[static_cast<std::size_t>(src)].fetch_add(1);
  });
  engine.start();
  // Two sender threads per rank at once: one for even, one for odd peers.
  auto sender = [&](int parity) {
    for (std::uint64_t i = 0; i < kPerPeer; ++i) {
      for (int d = parity; d < size; d += 2) engine.send(d, bytes_of(i));
      if (!progress_thread) return;  // funneled: this thread may not race the poller
    }
  };
  if (progress_thread) {
    std::thread t0(sender, 0), t1(sender, 1);
    t0.join();
    t1.join();
  } else {
    for (std::uint64_t i = 0; i < kPerPeer; ++i) {
      for (int d = 0; d < size; ++d) engine.send(d, bytes_of(i));
      if (i % 1000 == 0) engine.poll();
    }
  }
  const bool all = wait_until(
      [&] {
        for (auto& x : count) {
          if (x.load() != kPerPeer) return false;
        }
        return true;
      },
      60s, progress_thread ? nullptr : &engine);
  ASSERT_TRUE(all) << "rank " << rank << " did not receive every message in time";
  EXPECT_EQ(out_of_order.load(), 0u) << "messages from one sender arrived out of order";
  const auto st = engine.stats();
  EXPECT_EQ(st.messages_received, kPerPeer * static_cast<std::uint64_t>(size));
  EXPECT_EQ(st.messages_sent, kPerPeer * static_cast<std::uint64_t>(size));
  // Nobody leaves while a peer may still be sending to it.
  MPI_Barrier(c.comm);
  if (!progress_thread) {
    for (int i = 0; i < 100; ++i) engine.poll();
  }
}

}  // namespace

TEST(Engine, FloodOfSmallMessagesArrivesExactlyOnceInOrder) { run_flood(true); }

TEST(Engine, FunneledPollModeWorks) { run_flood(false); }

TEST(Engine, LargeMessagesArriveIntact) {
  Comm c;
  const int rank = c.rank(), size = c.size();
  Engine engine(c.comm);
  std::mutex mu;
  std::vector<std::vector<std::byte>> got;
  std::atomic<int> n{0};
  engine.on_receive([&](int, std::vector<std::byte> p) {
    std::lock_guard lock(mu);
    got.push_back(std::move(p));
    n.fetch_add(1);
  });
  engine.start();
  const std::size_t big = (8u << 20) + 13;  // 8 MiB + a tail, far above the batch size
  const int to = (rank + 1) % size;
  std::vector<std::byte> payload(big);
  for (std::size_t i = 0; i < big; ++i)
    payload[i] = static_cast<std::byte>((i * 31 + static_cast<std::size_t>(rank)) & 0xff);
  engine.send(to, payload);
  engine.send(to, bytes_of(42));  // a small one right behind it keeps its order
  ASSERT_TRUE(wait_until([&] { return n.load() == 2; }, 60s));
  const int from = (rank + size - 1) % size;
  std::lock_guard lock(mu);
  ASSERT_EQ(got[0].size(), big);
  for (std::size_t i = 0; i < big; i += 4099) {
    ASSERT_EQ(got[0][i], static_cast<std::byte>((i * 31 + static_cast<std::size_t>(from)) & 0xff)) << "byte " << i;
  }
  EXPECT_EQ(value_of(got[1]), 42u);
  MPI_Barrier(c.comm);
}

TEST(Engine, BadArgumentsNameTheProblem) {
  Comm c;
  Engine engine(c.comm);
  EXPECT_THROW(engine.start(), troupe::InvalidStateError) << "no receiver";
  engine.on_receive([](int, std::vector<std::byte>) {});
  engine.start();
  try {
    engine.send(c.size(), {});
    FAIL();
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("destination rank must be in"), std::string::npos) << e.what();
  }
  EXPECT_THROW(engine.send(-1, {}), troupe::ValueError);
  EXPECT_THROW(engine.on_receive([](int, std::vector<std::byte>) {}), troupe::InvalidStateError);
  EXPECT_THROW(engine.poll(), troupe::InvalidStateError);
  EXPECT_THROW(Engine(MPI_COMM_NULL), troupe::ValueError);
}

TEST(Engine, WatchedRequestsCompleteOnTheEngineThread) {
  Comm c;
  Comm user;  // the program's own traffic
  const int rank = c.rank();
  Engine engine(c.comm);
  engine.on_receive([](int, std::vector<std::byte>) {});
  engine.start();

  int received = 0;
  const int value = 100 + rank;
  MPI_Request req;
  MPI_Irecv(&received, 1, MPI_INT, rank, 11, user.comm, &req);
  std::atomic<int> source{-1};
  engine.watch(req, [&](const MPI_Status& st) { source.store(st.MPI_SOURCE); });
  MPI_Send(&value, 1, MPI_INT, rank, 11, user.comm);
  ASSERT_TRUE(wait_until([&] { return source.load() >= 0; }, 60s));
  EXPECT_EQ(source.load(), rank);
  EXPECT_EQ(received, value);
  EXPECT_THROW(engine.watch(MPI_REQUEST_NULL, [](const MPI_Status&) {}), troupe::ValueError);
  MPI_Barrier(c.comm);
}
