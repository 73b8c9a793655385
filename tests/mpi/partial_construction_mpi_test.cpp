// A collective construction that not every rank makes (issue 7): an Executor built on all
// ranks but the last. It used to block rank 0 in the constructor forever, silently; now
// every rank that built it raises TimeoutError within its start-up timeout, naming the
// rank that did not arrive. Its own binary: the abandoned construction leaves MPI state
// (a pending MPI_Comm_idup) that the test completes by hand before MPI_Finalize.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <string>
#include <vector>

#include "troupe/executor/executor.hpp"
#include "troupe/runtime/detail/arrival.hpp"
#include "troupe/runtime/runtime.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe_test::quiet;

TEST(PartialConstruction, RanksThatBuiltItRaiseNamingTheMissingRank) {
  troupe::Runtime rt(quiet());
  if (rt.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  const int missing = rt.size() - 1;
  if (rt.rank() != missing) {
    troupe::ExecutorOptions opts;
    opts.startup_timeout = 1500ms;
    const auto start = std::chrono::steady_clock::now();
    try {
      troupe::Executor ex(rt, opts);
      ADD_FAILURE() << "the Executor was built although rank " << missing << " never came";
    } catch (const troupe::TimeoutError& e) {
      const std::string what = e.what();
      EXPECT_NE(
          what.find("rank(s) [" + std::to_string(missing) + "] of " + std::to_string(rt.size()) + " did not arrive"),
          std::string::npos)
          << what;
      EXPECT_NE(what.find("Executor: timed out at start-up"), std::string::npos) << what;
      std::printf(
          "[rank %d] raised after %lld ms: %s\n", rt.rank(),
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count()),
          what.c_str());
    }
  }
  // Clean up for MPI_Finalize: the missing rank joins the abandoned MPI_Comm_idup and takes
  // the arrival messages addressed to it.
  MPI_Barrier(MPI_COMM_WORLD);
  if (rt.rank() == missing) {
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Request req = MPI_REQUEST_NULL;
    MPI_Comm_idup(rt.comm(), &dup, &req);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
    MPI_Comm_free(&dup);
    for (int r = 0; r < missing; ++r) {
      MPI_Recv(nullptr, 0, MPI_BYTE, r, troupe::detail::kArrivalTag, rt.comm(), MPI_STATUS_IGNORE);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// The ranks agree after all: the same construction with every rank present succeeds
// within the timeout, and a bad timeout is refused before anything collective happens.
TEST(PartialConstruction, EveryRankPresentBuildsAndABadTimeoutIsRefused) {
  troupe::Runtime rt(quiet());
  troupe::ExecutorOptions bad;
  bad.startup_timeout = 0ms;
  try {
    troupe::Executor ex(rt, bad);
    ADD_FAILURE() << "startup_timeout 0 accepted";
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("startup_timeout must be > 0"), std::string::npos) << e.what();
  }
  troupe::ExecutorOptions opts;
  opts.startup_timeout = 60s;
  troupe::Executor ex(rt, opts);
  if (ex.is_root()) {
    EXPECT_EQ(ex.submit([](int x) { return x + 1; }, 1).result(60s), 2);
  }
  ex.shutdown();
}

// Shutdown is collective too: with a shutdown_timeout, a rank whose peers never shut down
// raises TimeoutError naming the rank it waited for, instead of waiting forever. Here
// rank 0 shuts down while the others are still held by a barrier on another communicator;
// then every rank shuts down, and rank 0's second call resumes the collective it gave up.
TEST(PartialConstruction, ShutdownTimesOutNamingTheRankItWaitsFor) {
  troupe::Runtime rt(quiet());
  if (rt.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  troupe::ExecutorOptions opts;
  opts.shutdown_timeout = 500ms;
  troupe::Executor ex(rt, opts);
  if (rt.rank() == 0) {
    try {
      ex.shutdown();
      ADD_FAILURE() << "shutdown completed although no other rank called it";
    } catch (const troupe::TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("timed out waiting for rank"), std::string::npos) << e.what();
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_NO_THROW(ex.shutdown());
}
