// troupe::Pipe between ranks: FIFO order over many items (more than the credit window),
// both directions at once, poll with a timeout, end of file after close, one-way pipes,
// inactive ends on the other ranks, send timing out on a full window, and a three-rank
// pipeline ended by end of file.
#include "troupe/across/pipe.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/error.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe_test::Comm;
using troupe_test::quiet;

namespace {

bool contains(const std::exception& e, const std::string& what) {
  return std::string(e.what()).find(what) != std::string::npos;
}

TEST(Pipe, BadRanksRaiseValueError) {
  troupe::Runtime rt(quiet());
  try {
    troupe::Pipe<int> p(0, 0);
    ADD_FAILURE() << "a pipe with both ends on one rank did not throw";
  } catch (const troupe::ValueError& e) {
    EXPECT_TRUE(contains(e, "Pipe: the two ends must be on different ranks")) << e.what();
  }
  EXPECT_THROW(troupe::Pipe<int>(0, rt.size()), troupe::ValueError);
  EXPECT_THROW(troupe::Pipe<int>(-1, 0), troupe::ValueError);
  if (rt.size() > 1) {
    EXPECT_THROW(troupe::Pipe<int>(0, 1, true, 0), troupe::ValueError);
  }
}

TEST(Pipe, OrderIsKeptBothWaysAtOnceBeyondTheWindow) {
  troupe::Runtime rt(quiet());
  if (rt.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  Comm c;
  const int a = 0, b = rt.size() - 1;
  constexpr std::int64_t kItems = 20'000;
  troupe::Pipe<std::int64_t> p(a, b, true, /*window=*/64);
  if (rt.rank() == a || rt.rank() == b) {
    EXPECT_TRUE(p.active());
    EXPECT_EQ(p.peer(), rt.rank() == a ? b : a);
    const std::int64_t sign = rt.rank() == a ? 1 : -1;
    std::thread sender([&] {
      for (std::int64_t i = 0; i < kItems; ++i) p.send(sign * i, 60s);
    });
    std::int64_t expect = 0;
    for (std::int64_t i = 0; i < kItems; ++i) {
      const auto v = p.recv(60s);
      if (v != -sign * expect) {
        ADD_FAILURE() << "item " << i << ": got " << v << ", expected " << -sign * expect;
        break;
      }
      ++expect;
    }
    EXPECT_EQ(expect, kItems);
    sender.join();
    EXPECT_FALSE(p.poll());  // nothing more
  } else {
    EXPECT_FALSE(p.active());
    EXPECT_EQ(p.peer(), -1);
    try {
      p.send(1);
      ADD_FAILURE() << "send on an inactive end did not throw";
    } catch (const troupe::InvalidStateError& e) {
      EXPECT_TRUE(contains(e, "Pipe::send: rank")) << e.what();
      EXPECT_TRUE(contains(e, "holds no end of this pipe")) << e.what();
    }
    EXPECT_THROW(p.recv(1ms), troupe::InvalidStateError);
  }
  MPI_Barrier(c.comm);
}

TEST(Pipe, PollTimesOutThenSeesAnItem) {
  troupe::Runtime rt(quiet());
  if (rt.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  Comm c;
  troupe::Pipe<std::string> p(1, 0);
  if (rt.rank() == 0) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(p.poll(30ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
    const auto t1 = std::chrono::steady_clock::now();
    EXPECT_THROW(p.recv(30ms), troupe::TimeoutError);
    EXPECT_GE(std::chrono::steady_clock::now() - t1, 30ms);
  }
  MPI_Barrier(c.comm);
  if (rt.rank() == 1) p.send("ping");
  if (rt.rank() == 0) {
    EXPECT_TRUE(p.poll(60s));
    EXPECT_TRUE(p.poll());
    EXPECT_EQ(p.recv(60s), "ping");
    p.send("pong");
  }
  if (rt.rank() == 1) {
    EXPECT_EQ(p.recv(60s), "pong");
  }
  MPI_Barrier(c.comm);
}

TEST(Pipe, EndOfFileAfterCloseAndEverythingReceived) {
  troupe::Runtime rt(quiet());
  if (rt.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  Comm c;
  troupe::Pipe<std::vector<int>> p(0, 1);
  if (rt.rank() == 0) {
    for (int i = 0; i < 3; ++i) p.send({i, i + 1});
    p.close();
    p.close();  // idempotent
    EXPECT_TRUE(p.closed());
    try {
      p.send({9});
      ADD_FAILURE() << "send on a closed end did not throw";
    } catch (const troupe::InvalidStateError& e) {
      EXPECT_TRUE(contains(e, "Pipe::send: this end is closed")) << e.what();
    }
    EXPECT_THROW(p.recv(1ms), troupe::InvalidStateError);
  }
  if (rt.rank() == 1) {
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(p.recv(60s), (std::vector<int>{i, i + 1}));
    }
    EXPECT_TRUE(p.poll(60s));  // end of file: recv would not block
    for (int k = 0; k < 2; ++k) {
      try {
        p.recv(60s);
        ADD_FAILURE() << "recv after the peer closed did not throw";
      } catch (const troupe::EOFError& e) {
        EXPECT_TRUE(contains(e, "Pipe::recv: end of file")) << e.what();
      }
    }
    try {
      p.send({1});
      ADD_FAILURE() << "send to a closed peer did not throw";
    } catch (const troupe::InvalidStateError& e) {
      EXPECT_TRUE(contains(e, "closed its end (broken pipe)")) << e.what();
    }
  }
  MPI_Barrier(c.comm);
}

TEST(Pipe, OneWayPipeRefusesTheOtherDirectionAndSendTimesOutOnAFullWindow) {
  troupe::Runtime rt(quiet());
  if (rt.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  Comm c;
  troupe::Pipe<int> p(0, 1, /*duplex=*/false, /*window=*/4);
  if (rt.rank() == 0) {
    try {
      p.recv(1ms);
      ADD_FAILURE() << "recv on the send-only end did not throw";
    } catch (const troupe::InvalidStateError& e) {
      EXPECT_TRUE(contains(e, "Pipe::recv: this end is send-only")) << e.what();
    }
    for (int i = 0; i < 4; ++i) p.send(i, 60s);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(p.send(4, 30ms), troupe::TimeoutError);  // window full: nobody received
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
  }
  if (rt.rank() == 1) {
    EXPECT_THROW(p.send(1), troupe::InvalidStateError);
  }
  MPI_Barrier(c.comm);  // rank 0's window is full now
  if (rt.rank() == 1) {
    for (int i = 0; i < 4; ++i) EXPECT_EQ(p.recv(60s), i);  // returns 2 credits twice
  }
  if (rt.rank() == 0) {
    p.send(5, 60s);  // credit came back
  }
  if (rt.rank() == 1) {
    EXPECT_EQ(p.recv(60s), 5);  // the timed-out item was never sent
  }
  MPI_Barrier(c.comm);
}

TEST(Pipe, ThreeRankPipelineEndsByEndOfFile) {
  troupe::Runtime rt(quiet());
  if (rt.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  Comm c;
  // create (rank 0) -> square (rank 1) -> sum (rank 2; rank 0 again at 2 ranks), each
  // stage ended by its input's end of file.
  const int r2 = 2 % rt.size();
  troupe::Pipe<std::int64_t> first(0, 1, /*duplex=*/false, /*window=*/128);
  troupe::Pipe<std::int64_t> second(1, r2, /*duplex=*/false, /*window=*/128);
  constexpr std::int64_t kN = 5'000;
  std::thread creator;
  if (rt.rank() == 0) {
    creator = std::thread([&] {
      for (std::int64_t i = 1; i <= kN; ++i) first.send(i, 60s);
      first.close();
    });
  }
  if (rt.rank() == 1) {
    std::int64_t n = 0;
    try {
      for (;;) {
        const auto v = first.recv(60s);
        second.send(v * v, 60s);
        ++n;
      }
    } catch (const troupe::EOFError&) {
    }
    second.close();
    EXPECT_EQ(n, kN);
  }
  if (rt.rank() == r2) {
    std::int64_t sum = 0, count = 0, last = 0;
    bool ordered = true;
    try {
      for (;;) {
        const auto v = second.recv(60s);
        ordered = ordered && v > last;
        last = v;
        sum += v;
        ++count;
      }
    } catch (const troupe::EOFError&) {
    }
    EXPECT_TRUE(ordered);
    EXPECT_EQ(count, kN);
    EXPECT_EQ(sum, kN * (kN + 1) * (2 * kN + 1) / 6);
  }
  if (creator.joinable()) creator.join();
  MPI_Barrier(c.comm);
}

}  // namespace
