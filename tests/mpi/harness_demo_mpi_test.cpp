// Deliberately failing multi-rank tests: they prove that the MPI test harness
// (tests/support/gtest_mpi_main.cpp) turns a failure on one rank into a red ctest result.
// They are checked by expect_red.cmake (always registered) and, with
// -DTROUPE_FAILING_TESTS=ON, also registered as plain tests that must show up as failed.
#include <gtest/gtest.h>
#include <mpi.h>

namespace {
int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
}  // namespace

// The control: expect_red.cmake first checks that this passes, so a red result of the
// failing tests cannot come from a binary or a launcher that does not work at all.
TEST(HarnessDemo, PassesEverywhere) { EXPECT_EQ(MPI_Barrier(MPI_COMM_WORLD), MPI_SUCCESS); }

// Rank 1 fails while rank 0 waits in a barrier that rank 1 never enters: only the
// harness's MPI_Abort ends this test (fail fast).
TEST(HarnessDemo, FailsOnRank1BeforeBarrier) {
  ASSERT_NE(world_rank(), 1) << "deliberate failure on rank 1";
  MPI_Barrier(MPI_COMM_WORLD);
}

// Rank 1 fails after the last collective: with TROUPE_TEST_NO_ABORT=1 the run goes on
// and the global verdict (allreduce) must still be "failed" on every rank.
TEST(HarnessDemo, FailsOnRank1AfterBarrier) {
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_NE(world_rank(), 1) << "deliberate failure on rank 1";
}
