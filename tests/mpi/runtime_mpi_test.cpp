// troupe::Runtime under mpiexec at 1, 2 and 4 ranks, and as a singleton.
// The harness (troupe_gtest_mpi_main) initialized MPI, so every Runtime here adopts it.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <string>

#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/detail/same_binary.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/runtime/topology.hpp"

#include "mpi_test_util.hpp"

using troupe_test::quiet;
using troupe_test::world_rank;
using troupe_test::world_size;

namespace {

// Sets an environment variable for one scope, restoring the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      had_ = true;
      old_ = old;
    }
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace

TEST(RuntimeMpi, TopologyAgreesWithMpi) {
  troupe::Runtime rt(quiet());
  EXPECT_EQ(rt.rank(), world_rank());
  EXPECT_EQ(rt.size(), world_size());
  EXPECT_GE(rt.node_size(), 1);
  EXPECT_LE(rt.node_size(), rt.size());
  EXPECT_GE(rt.node_rank(), 0);
  EXPECT_LT(rt.node_rank(), rt.node_size());
  EXPECT_FALSE(rt.host().empty());
  EXPECT_GE(rt.threads(), 1u);

  // Every rank of this test runs on one machine: the node is the world.
  int node_size_min = 0;
  int node_size = rt.node_size();
  MPI_Allreduce(&node_size, &node_size_min, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  EXPECT_EQ(node_size_min, world_size());

  // node ranks are a permutation of 0..node_size-1: their sum says so.
  int sum = 0;
  int nr = rt.node_rank();
  MPI_Allreduce(&nr, &sum, 1, MPI_INT, MPI_SUM, rt.node_comm());
  EXPECT_EQ(sum, rt.node_size() * (rt.node_size() - 1) / 2);
}

TEST(RuntimeMpi, CurrentIsSetWhileAlive) {
  EXPECT_EQ(troupe::Runtime::current(), nullptr);
  {
    troupe::Runtime rt(quiet());
    EXPECT_EQ(troupe::Runtime::current(), &rt);
    EXPECT_EQ(troupe::rank_tag(), "[rank " + std::to_string(world_rank()) + "/" + std::to_string(world_size()) + "]");
  }
  EXPECT_EQ(troupe::Runtime::current(), nullptr);
}

TEST(RuntimeMpi, OnlyOneAliveAtATime) {
  troupe::Runtime rt(quiet());
  EXPECT_THROW(troupe::Runtime second(quiet()), troupe::InvalidStateError);
  EXPECT_EQ(troupe::Runtime::current(), &rt);
}

TEST(RuntimeMpi, AdoptsAndNeverFinalizesHostMpi) {
  {
    troupe::Runtime rt(quiet());
    EXPECT_FALSE(rt.owns_mpi());
    EXPECT_FALSE(rt.info().owns_mpi);
  }
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  EXPECT_TRUE(initialized);
  EXPECT_FALSE(finalized);
  // The world communicator still works after the Runtime is gone.
  int one = 1, sum = 0;
  ASSERT_EQ(MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), MPI_SUCCESS);
  EXPECT_EQ(sum, world_size());
  // And a new Runtime can start again.
  troupe::Runtime again(quiet());
  EXPECT_EQ(again.size(), world_size());
}

TEST(RuntimeMpi, ReportsProvidedThreadLevel) {
  int level = 0;
  MPI_Query_thread(&level);
  troupe::Runtime rt(quiet());
  EXPECT_EQ(level, MPI_THREAD_MULTIPLE);  // the harness asked for it; Open MPI grants it
  EXPECT_EQ(rt.thread_level(), troupe::ThreadLevel::Multiple);
  EXPECT_EQ(rt.info().thread_level, "MPI_THREAD_MULTIPLE");
}

TEST(RuntimeMpi, WorksOnADuplicateOfWorld) {
  troupe::Runtime rt(quiet());
  int cmp = MPI_IDENT;
  ASSERT_EQ(MPI_Comm_compare(rt.comm(), MPI_COMM_WORLD, &cmp), MPI_SUCCESS);
  EXPECT_NE(cmp, MPI_IDENT);
  EXPECT_EQ(cmp, MPI_CONGRUENT);

  // Same source, same tag, different communicators: each receive gets its own message.
  if (rt.size() >= 2) {
    const int tag = 7;
    if (rt.rank() == 0) {
      int user = 111, lib = 222;
      ASSERT_EQ(MPI_Send(&user, 1, MPI_INT, 1, tag, MPI_COMM_WORLD), MPI_SUCCESS);
      ASSERT_EQ(MPI_Send(&lib, 1, MPI_INT, 1, tag, rt.comm()), MPI_SUCCESS);
    } else if (rt.rank() == 1) {
      int lib = 0, user = 0;
      // Receive the library's message first: it must not match the earlier user message.
      ASSERT_EQ(MPI_Recv(&lib, 1, MPI_INT, 0, tag, rt.comm(), MPI_STATUS_IGNORE), MPI_SUCCESS);
      ASSERT_EQ(MPI_Recv(&user, 1, MPI_INT, 0, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), MPI_SUCCESS);
      EXPECT_EQ(lib, 222);
      EXPECT_EQ(user, 111);
    }
  }
  char name[MPI_MAX_OBJECT_NAME] = {};
  int len = 0;
  MPI_Comm_get_name(rt.comm(), name, &len);
  EXPECT_STREQ(name, "troupe");
}

TEST(RuntimeMpi, MpiErrorsBecomeMpiErrorNamingTheCall) {
  troupe::Runtime rt(quiet());
  int value = 0;
  try {
    // Destination rank == size is invalid: with MPI_ERRORS_RETURN the code comes back.
    TROUPE_MPI_CHECK(MPI_Send(&value, 1, MPI_INT, rt.size(), 0, rt.comm()));
    FAIL() << "MPI_Send to rank " << rt.size() << " did not fail";
  } catch (const troupe::MpiError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("MPI_Send failed"), std::string::npos) << what;
    EXPECT_NE(what.find("[rank " + std::to_string(rt.rank()) + "/"), std::string::npos) << what;
    EXPECT_NE(what.find("runtime_mpi_test.cpp:"), std::string::npos) << what;
    EXPECT_NE(e.code(), MPI_SUCCESS);
    EXPECT_EQ(e.error_class(), MPI_ERR_RANK) << what;
  }
}

TEST(RuntimeMpi, AdoptsAGivenCommunicator) {
  MPI_Comm half = MPI_COMM_NULL;
  ASSERT_EQ(MPI_Comm_split(MPI_COMM_WORLD, world_rank() % 2, world_rank(), &half), MPI_SUCCESS);
  int half_size = 0;
  MPI_Comm_size(half, &half_size);
  {
    troupe::Runtime rt(half, quiet());
    EXPECT_EQ(rt.size(), half_size);
    EXPECT_EQ(rt.rank(), world_rank() / 2);
    int cmp = MPI_IDENT;
    MPI_Comm_compare(rt.comm(), half, &cmp);
    EXPECT_EQ(cmp, MPI_CONGRUENT);
  }
  // The user's communicator is still the user's: usable, and theirs to free.
  int one = 1, sum = 0;
  EXPECT_EQ(MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, half), MPI_SUCCESS);
  EXPECT_EQ(sum, half_size);
  EXPECT_EQ(MPI_Comm_free(&half), MPI_SUCCESS);
}

TEST(RuntimeMpi, ThreadCountFromOption) {
  troupe::RuntimeOptions o = quiet();
  o.threads = 3;
  troupe::Runtime rt(o);
  EXPECT_EQ(rt.threads(), 3u);
  EXPECT_EQ(rt.threads_source(), troupe::ThreadCountSource::Option);
  EXPECT_EQ(troupe::default_thread_count(), 3u);  // the pool follows the live Runtime
}

TEST(RuntimeMpi, ThreadCountFromTroupeThreadsBeatsSlurm) {
  ScopedEnv t("TROUPE_THREADS", "5");
  ScopedEnv s("SLURM_CPUS_PER_TASK", "7");
  troupe::Runtime rt(quiet());
  EXPECT_EQ(rt.threads(), 5u);
  EXPECT_EQ(rt.threads_source(), troupe::ThreadCountSource::TroupeThreads);
}

TEST(RuntimeMpi, ThreadCountFromSlurm) {
  ScopedEnv t("TROUPE_THREADS", nullptr);
  ScopedEnv s("SLURM_CPUS_PER_TASK", "4");
  troupe::Runtime rt(quiet());
  EXPECT_EQ(rt.threads(), 4u);
  EXPECT_EQ(rt.info().threads_source, "SLURM_CPUS_PER_TASK");
}

TEST(RuntimeMpi, ThreadCountFromAffinityMatchesTheRule) {
  ScopedEnv t("TROUPE_THREADS", nullptr);
  ScopedEnv s("SLURM_CPUS_PER_TASK", nullptr);
  troupe::Runtime rt(quiet());
  troupe::ThreadCountInputs in;
  in.affinity_cpus = troupe::affinity_cpus().size();
  in.node_cpus = troupe::online_cpu_count();
  in.node_ranks = static_cast<std::size_t>(rt.node_size());
  in.node_rank = static_cast<std::size_t>(rt.node_rank());
  EXPECT_EQ(rt.threads(), troupe::resolve_thread_count(in).count);
  EXPECT_EQ(rt.threads_source(), troupe::ThreadCountSource::Affinity);
  // All ranks of a node together never ask for more threads than the node has CPUs,
  // unless there are more ranks than CPUs (then each gets 1).
  unsigned long threads = rt.threads(), total = 0;
  MPI_Allreduce(&threads, &total, 1, MPI_UNSIGNED_LONG, MPI_SUM, rt.node_comm());
  EXPECT_LE(total, std::max<unsigned long>(troupe::online_cpu_count(), static_cast<unsigned long>(rt.node_size())));
}

TEST(RuntimeMpi, SameBinaryCheckPasses) {
  troupe::RuntimeOptions o = quiet();
  o.callable_digest = 0x5eed;
  troupe::Runtime rt(o);
  EXPECT_NE(rt.executable_digest(), 0u);
  // Every rank computed the same executable digest.
  unsigned long long d = rt.executable_digest(), dmin = 0, dmax = 0;
  MPI_Allreduce(&d, &dmin, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&d, &dmax, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
  EXPECT_EQ(dmin, dmax);
  EXPECT_EQ(troupe::executable_digest(), rt.executable_digest());
}

TEST(RuntimeMpi, DifferentCallableTableFailsOnEveryRank) {
  if (world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  troupe::RuntimeOptions o = quiet();
  o.callable_digest = world_rank() == 1 ? 0xbad : 0x600d;
  try {
    troupe::Runtime rt(o);
    FAIL() << "the Runtime started although rank 1 has another callable table";
  } catch (const troupe::MpiError& e) {
    FAIL() << "unexpected MpiError: " << e.what();
  } catch (const troupe::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("ranks have different callable tables"), std::string::npos) << what;
    EXPECT_NE(what.find("on rank 1"), std::string::npos) << what;
    EXPECT_EQ(what.find("different executables"), std::string::npos) << what;
  }
  // Failing left nothing behind: no Runtime, MPI still up, and a good start works.
  EXPECT_EQ(troupe::Runtime::current(), nullptr);
  int finalized = 1;
  MPI_Finalized(&finalized);
  EXPECT_FALSE(finalized);
  troupe::Runtime ok(quiet());
  EXPECT_EQ(ok.size(), world_size());
}

TEST(RuntimeMpi, DifferentExecutableFailsOnEveryRankWithAClearMessage) {
  if (world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  // Rank 1 pretends to run another build.
  troupe::detail::set_executable_digest_override(world_rank() == 1 ? 0x1234 : 0);
  try {
    troupe::Runtime rt(quiet());
    troupe::detail::set_executable_digest_override(0);
    FAIL() << "the Runtime started although rank 1 runs another executable";
  } catch (const troupe::MpiError& e) {
    troupe::detail::set_executable_digest_override(0);
    FAIL() << "unexpected MpiError: " << e.what();
  } catch (const troupe::Error& e) {
    troupe::detail::set_executable_digest_override(0);
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("[rank ", 0), 0u) << what;
    EXPECT_NE(what.find("ranks run different executables"), std::string::npos) << what;
    EXPECT_NE(what.find("0x0000000000001234 on rank 1"), std::string::npos) << what;
    if (world_size() > 2) {
      EXPECT_NE(what.find("on ranks 0,2"), std::string::npos) << what;
    }
  }
  EXPECT_EQ(troupe::Runtime::current(), nullptr);
}

TEST(RuntimeMpi, CheckSameBinaryDirectly) {
  MPI_Comm comm = MPI_COMM_NULL;
  ASSERT_EQ(MPI_Comm_dup(MPI_COMM_WORLD, &comm), MPI_SUCCESS);
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  EXPECT_NO_THROW(troupe::detail::check_same_binary(comm, 1, 2));
  if (world_size() >= 2) {
    const std::uint64_t mine = world_rank() == world_size() - 1 ? 9 : 1;
    EXPECT_THROW(troupe::detail::check_same_binary(comm, mine, mine), troupe::Error);
  }
  MPI_Comm_free(&comm);
}

TEST(RuntimeMpi, InfoDescribesThisRank) {
  troupe::Runtime rt(quiet());
  const troupe::RuntimeInfo info = rt.info();
  EXPECT_EQ(info.rank, rt.rank());
  EXPECT_EQ(info.size, rt.size());
  EXPECT_EQ(info.node_rank, rt.node_rank());
  EXPECT_EQ(info.node_size, rt.node_size());
  EXPECT_EQ(info.threads, rt.threads());
  EXPECT_EQ(info.host, rt.host());
  EXPECT_GT(info.pid, 0);
  EXPECT_FALSE(info.affinity.empty());
  const std::string line = info.to_string();
  EXPECT_NE(line.find("rank=" + std::to_string(rt.rank()) + "/" + std::to_string(rt.size())), std::string::npos)
      << line;
  EXPECT_NE(line.find("level=MPI_THREAD_MULTIPLE"), std::string::npos) << line;
}

// Whether the node's ranks share cores: the Runtime's answer equals the rule applied to the
// masks and thread counts gathered here independently, and the wait policy follows it while
// the Runtime lives.
TEST(RuntimeMpi, SharedCoresFollowsTheNodesMasks) {
  ScopedEnv e("TROUPE_SHARED_CORES", nullptr);
  troupe::Runtime rt(quiet());
  const int width = static_cast<int>(troupe::online_cpu_count()) + 1024;
  std::vector<int> mask(static_cast<std::size_t>(width), 0);
  const auto mine = troupe::affinity_cpus();
  for (int c : mine) {
    if (c < width) mask[static_cast<std::size_t>(c)] = 1;
  }
  std::vector<int> per_cpu(mask.size(), 0);
  MPI_Allreduce(mask.data(), per_cpu.data(), width, MPI_INT, MPI_SUM, rt.node_comm());
  unsigned long threads = rt.threads(), total = 0;
  MPI_Allreduce(&threads, &total, 1, MPI_UNSIGNED_LONG, MPI_SUM, rt.node_comm());
  troupe::CoreSharingInputs in;
  in.affinity = mine;
  in.ranks_per_cpu = per_cpu;
  in.node_threads = total;
  EXPECT_EQ(rt.shared_cores(), troupe::resolve_shared_cores(in));
  EXPECT_EQ(troupe::detail::cores_shared(), rt.shared_cores());
  EXPECT_NE(rt.describe_settings().find(std::string("shared_cores=") + (rt.shared_cores() ? "1" : "0")),
            std::string::npos);
  if (rt.node_size() > static_cast<int>(troupe::online_cpu_count())) {
    EXPECT_TRUE(rt.shared_cores()) << "more ranks than CPUs on the node";
  }
}

TEST(RuntimeMpi, SharedCoresFromTheKnobWinsAndEndsWithTheRuntime) {
  {
    ScopedEnv e("TROUPE_SHARED_CORES", "1");
    {
      troupe::Runtime rt(quiet());
      EXPECT_TRUE(rt.shared_cores());
      EXPECT_TRUE(troupe::detail::cores_shared());
      EXPECT_NE(rt.describe_settings().find("shared_cores=1 (TROUPE_SHARED_CORES)"), std::string::npos);
    }
  }
  ScopedEnv e("TROUPE_SHARED_CORES", "0");
  troupe::Runtime rt(quiet());
  EXPECT_FALSE(rt.shared_cores());
  EXPECT_FALSE(troupe::detail::cores_shared());
}
