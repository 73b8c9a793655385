// A Runtime that initializes MPI itself (no mpiexec, no host MPI): the singleton path.
// ctest runs each test in its own process (MPI can be initialized once per process).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <string>

#include "troupe/core/config.hpp"
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
    const char* osc = std::getenv("OMPI_MCA_osc_rdma_priority");
#ifdef OPEN_MPI
    // The Open MPI 4.1 compare-and-swap workaround was set before MPI_Init.
    ASSERT_NE(osc, nullptr);
    EXPECT_STREQ(osc, "0");
#else
    // Another implementation (MPICH): the Open MPI setting is not applied.
    EXPECT_EQ(osc, nullptr) << osc;
#endif
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
  // MPI may provide more than asked for, never less (Open MPI gives exactly FUNNELED).
  EXPECT_GE(level, MPI_THREAD_FUNNELED);
  const troupe::ThreadLevel expected = level == MPI_THREAD_FUNNELED     ? troupe::ThreadLevel::Funneled
                                       : level == MPI_THREAD_SERIALIZED ? troupe::ThreadLevel::Serialized
                                                                        : troupe::ThreadLevel::Multiple;
  EXPECT_EQ(rt.thread_level(), expected);
}

TEST(RuntimeSingleton, ComputesAnExecutableDigestWithoutMpi) {
  EXPECT_NE(troupe::executable_digest(), 0u);
  EXPECT_EQ(troupe::executable_digest(), troupe::executable_digest());
}

TEST(RuntimeSingleton, DestructionAfterTheHostFinalizedMpiDoesNothing) {
  int initialized = 1;
  MPI_Initialized(&initialized);
  if (initialized) GTEST_SKIP() << "MPI already used in this process; ctest runs this test alone";
  int provided = 0;
  ASSERT_EQ(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), MPI_SUCCESS);
  {
    troupe::RuntimeOptions o;
    o.quiet = true;
    troupe::Runtime rt(o);
    EXPECT_FALSE(rt.owns_mpi());
    // The host finalizes MPI while the Runtime is still alive (an ordering bug in the
    // host program): the Runtime's destructor must neither free nor finalize anything.
    ASSERT_EQ(MPI_Finalize(), MPI_SUCCESS);
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  EXPECT_TRUE(finalized);
  EXPECT_EQ(troupe::Runtime::current(), nullptr);
}

TEST(RuntimeSingleton, PrintsItsSettingsWhenAsked) {
  int initialized = 1;
  MPI_Initialized(&initialized);
  if (initialized) GTEST_SKIP() << "MPI already used in this process; ctest runs this test alone";
  (void)troupe::settings();  // cached before the variable is set: the Runtime reads again
  ::setenv("TROUPE_PRINT_SETTINGS", "1", 1);
  ::setenv("TROUPE_SPIN_US", "7", 1);
  troupe::RuntimeOptions o;
  o.quiet = true;
  testing::internal::CaptureStderr();
  std::string described;
  {
    troupe::Runtime rt(o);
    described = rt.describe_settings();
    EXPECT_NE(described.find("threads=" + std::to_string(rt.threads()) + " (from "), std::string::npos) << described;
  }
  const std::string printed = testing::internal::GetCapturedStderr();
  ::unsetenv("TROUPE_PRINT_SETTINGS");
  ::unsetenv("TROUPE_SPIN_US");
  EXPECT_NE(described.find("thread_level=MPI_THREAD_"), std::string::npos) << described;
  EXPECT_NE(described.find("\ncpus="), std::string::npos) << described;
  EXPECT_NE(described.find("TROUPE_SPIN_US=7 (default 50, from env)"), std::string::npos) << described;
  EXPECT_NE(described.find("TROUPE_PRINT_SETTINGS=1 (default 0, from env)"), std::string::npos) << described;
  EXPECT_NE(printed.find("[rank 0/1] troupe settings:\n" + described), std::string::npos) << printed;
  EXPECT_EQ(printed.find("\n\n"), std::string::npos) << printed;
  EXPECT_EQ(troupe::settings().pool_spin, std::chrono::microseconds(7));
}

TEST(RuntimeSingleton, RejectsABadKnobBeforeTouchingMpi) {
  int initialized = 1;
  MPI_Initialized(&initialized);
  if (initialized) GTEST_SKIP() << "MPI already used in this process; ctest runs this test alone";
  ::setenv("TROUPE_SPIN_US", "soon", 1);
  try {
    troupe::Runtime rt;
    ADD_FAILURE() << "the Runtime accepted TROUPE_SPIN_US=soon";
  } catch (const troupe::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("TROUPE_SPIN_US"), std::string::npos) << e.what();
  }
  ::unsetenv("TROUPE_SPIN_US");
  MPI_Initialized(&initialized);
  EXPECT_FALSE(initialized);
  EXPECT_EQ(troupe::Runtime::current(), nullptr);
}
