// A Runtime that initializes MPI itself (no mpiexec, no host MPI): the singleton path.
// ctest runs each test in its own process (MPI can be initialized once per process).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <string>

#include "troupe/core/error.hpp"
#include "troupe/runtime/runtime.hpp"

TEST(RuntimeSingleton, InitializesAndFinalizesMpi) {
  ::unsetenv("OMPI_MCA_osc_rdma_priority");
  int initialized = 1;
  MPI_Initialized(&initialized);
  ASSERT_FALSE(initialized) << "run this test in its own process";
  {
    troupe::RuntimeOptions o;
    o.quiet = true;
    troupe::Runtime rt(o);
    EXPECT_TRUE(rt.owns_mpi());
    EXPECT_EQ(rt.size(), 1);
    EXPECT_EQ(rt.rank(), 0);
    EXPECT_EQ(rt.node_size(), 1);
    EXPECT_EQ(rt.thread_level(), troupe::ThreadLevel::Multiple);
    EXPECT_EQ(rt.threads(), troupe::default_thread_count());
    // The Open MPI 4.1 compare-and-swap workaround was set before MPI_Init.
    const char* osc = std::getenv("OMPI_MCA_osc_rdma_priority");
    ASSERT_NE(osc, nullptr);
    EXPECT_STREQ(osc, "0");
    MPI_Initialized(&initialized);
    EXPECT_TRUE(initialized);
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  EXPECT_TRUE(finalized);
  // MPI cannot start twice: a clear error, not a crash.
  EXPECT_THROW(troupe::Runtime again, troupe::InvalidStateError);
  EXPECT_EQ(troupe::Runtime::current(), nullptr);
}

TEST(RuntimeSingleton, KeepsTheUsersOscSetting) {
  int initialized = 1;
  MPI_Initialized(&initialized);
  if (initialized) GTEST_SKIP() << "MPI already used in this process; ctest runs this test alone";
  ::setenv("OMPI_MCA_osc_rdma_priority", "7", 1);
  troupe::RuntimeOptions o;
  o.quiet = true;
  o.thread_level = troupe::ThreadLevel::Funneled;
  troupe::Runtime rt(o);
  EXPECT_STREQ(std::getenv("OMPI_MCA_osc_rdma_priority"), "7");
  int level = 0;
  MPI_Query_thread(&level);
  EXPECT_EQ(rt.thread_level(), level == MPI_THREAD_FUNNELED ? troupe::ThreadLevel::Funneled : rt.thread_level());
  EXPECT_NE(rt.thread_level(), troupe::ThreadLevel::Single);
}

TEST(RuntimeSingleton, ComputesAnExecutableDigestWithoutMpi) {
  EXPECT_NE(troupe::executable_digest(), 0u);
  EXPECT_EQ(troupe::executable_digest(), troupe::executable_digest());
}
