// The thread-count rule (troupe/runtime/topology.hpp) without MPI.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "troupe/core/config.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/topology.hpp"

using troupe::resolve_thread_count;
using troupe::ThreadCountInputs;
using troupe::ThreadCountSource;

namespace {
ThreadCountInputs node(std::size_t affinity, std::size_t cpus, std::size_t ranks = 1, std::size_t rank = 0) {
  ThreadCountInputs in;
  in.affinity_cpus = affinity;
  in.node_cpus = cpus;
  in.node_ranks = ranks;
  in.node_rank = rank;
  return in;
}
}  // namespace

TEST(RuntimeThreadCount, OptionWinsOverEverything) {
  auto in = node(8, 8);
  in.option = 3;
  in.troupe_threads = 5;
  in.slurm_cpus_per_task = "7";
  auto r = resolve_thread_count(in);
  EXPECT_EQ(r.count, 3u);
  EXPECT_EQ(r.source, ThreadCountSource::Option);
}

TEST(RuntimeThreadCount, TroupeThreadsBeatsSlurmAndAffinity) {
  auto in = node(8, 8);
  in.troupe_threads = 5;
  in.slurm_cpus_per_task = "7";
  auto r = resolve_thread_count(in);
  EXPECT_EQ(r.count, 5u);
  EXPECT_EQ(r.source, ThreadCountSource::TroupeThreads);
}

// A malformed TROUPE_THREADS is settings()'s ValueError: tests/unit/core/config_test.cpp.

TEST(RuntimeThreadCount, SlurmCpusPerTask) {
  auto in = node(8, 8, 4, 0);
  in.slurm_cpus_per_task = "2";
  auto r = resolve_thread_count(in);
  EXPECT_EQ(r.count, 2u);
  EXPECT_EQ(r.source, ThreadCountSource::SlurmCpusPerTask);
  in.slurm_cpus_per_task = "garbage";  // ignored, falls through to the mask
  EXPECT_EQ(resolve_thread_count(in).source, ThreadCountSource::Affinity);
}

TEST(RuntimeThreadCount, SingletonGetsTheWholeMask) {
  auto r = resolve_thread_count(node(2, 2));
  EXPECT_EQ(r.count, 2u);
  EXPECT_EQ(r.source, ThreadCountSource::Affinity);
  EXPECT_FALSE(r.bound_to_part_of_node);
}

TEST(RuntimeThreadCount, BoundRanksKeepTheirMaskUndivided) {
  // mpirun -n 2 on 2 cores: one core each; dividing again would give half a core.
  auto r = resolve_thread_count(node(1, 2, 2, 1));
  EXPECT_EQ(r.count, 1u);
  EXPECT_TRUE(r.bound_to_part_of_node);
  // --map-by slot:pe=4 on 16 cores, 4 ranks.
  r = resolve_thread_count(node(4, 16, 4, 2));
  EXPECT_EQ(r.count, 4u);
  EXPECT_TRUE(r.bound_to_part_of_node);
}

TEST(RuntimeThreadCount, UnboundRanksShareTheNode) {
  // --bind-to none: 2 ranks on 8 CPUs get 4 each.
  EXPECT_EQ(resolve_thread_count(node(8, 8, 2, 0)).count, 4u);
  EXPECT_EQ(resolve_thread_count(node(8, 8, 2, 1)).count, 4u);
  // 3 ranks on 8 CPUs: 3 + 3 + 2, using every CPU.
  EXPECT_EQ(resolve_thread_count(node(8, 8, 3, 0)).count, 3u);
  EXPECT_EQ(resolve_thread_count(node(8, 8, 3, 1)).count, 3u);
  EXPECT_EQ(resolve_thread_count(node(8, 8, 3, 2)).count, 2u);
  // Oversubscribed: 4 ranks on 2 CPUs get 1 each, never 0.
  for (std::size_t r = 0; r < 4; ++r) EXPECT_EQ(resolve_thread_count(node(2, 2, 4, r)).count, 1u);
  EXPECT_FALSE(resolve_thread_count(node(2, 2, 4, 0)).bound_to_part_of_node);
}

TEST(RuntimeThreadCount, NothingKnownMeansOne) {
  auto r = resolve_thread_count(ThreadCountInputs{});
  EXPECT_EQ(r.count, 1u);
  EXPECT_EQ(r.source, ThreadCountSource::Fallback);
}

TEST(RuntimeThreadCount, SourceNames) {
  EXPECT_EQ(troupe::to_string(ThreadCountSource::TroupeThreads), "TROUPE_THREADS");
  EXPECT_EQ(troupe::to_string(ThreadCountSource::Affinity), "affinity");
}

TEST(RuntimeAffinity, MaskIsReadable) {
  auto cpus = troupe::affinity_cpus();
  ASSERT_FALSE(cpus.empty());
  EXPECT_LE(cpus.size(), troupe::online_cpu_count() * 64);  // sanity, masks may list offline CPUs
  for (std::size_t i = 1; i < cpus.size(); ++i) EXPECT_LT(cpus[i - 1], cpus[i]);
}

TEST(RuntimeAffinity, FormatCpuList) {
  EXPECT_EQ(troupe::format_cpu_list({}), "");
  EXPECT_EQ(troupe::format_cpu_list({3}), "3");
  EXPECT_EQ(troupe::format_cpu_list({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
}

// ctest runs this test also with TROUPE_THREADS=6 and with SLURM_CPUS_PER_TASK=3 in the
// environment (tests/unit/runtime/CMakeLists.txt): settings() reads the environment once.
TEST(RuntimeDefaultThreadCount, FollowsEnvironmentWithoutRuntimeOrMpi) {
  const auto n = troupe::default_thread_count();
  if (const auto t = troupe::detail::parse_count(std::getenv("TROUPE_THREADS"))) {
    EXPECT_EQ(n, *t);
  } else if (const auto c = troupe::detail::parse_count(std::getenv("SLURM_CPUS_PER_TASK"))) {
    EXPECT_EQ(n, *c);
  } else {
    EXPECT_GE(n, 1u);
    EXPECT_LE(n, troupe::affinity_cpus().size());
  }
}

TEST(RuntimeDefaultThreadCount, LauncherRanksShareAnUnboundNode) {
  const auto cpus = troupe::affinity_cpus().size();
  if (cpus < troupe::online_cpu_count()) GTEST_SKIP() << "this process is bound to part of the node";
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", std::to_string(cpus * 2).c_str(), 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "0", 1);
  EXPECT_EQ(troupe::default_thread_count(), 1u);
  ::unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  ::unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
}

TEST(RuntimeLog, RankTagFromEnvironment) {
  ::setenv("OMPI_COMM_WORLD_RANK", "3", 1);
  ::setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  EXPECT_EQ(troupe::rank_tag(), "[rank 3/4]");
  ::unsetenv("OMPI_COMM_WORLD_RANK");
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::unsetenv("PMI_RANK");
  ::unsetenv("PMIX_RANK");
  ::unsetenv("SLURM_PROCID");
  EXPECT_EQ(troupe::rank_tag(), "[rank 0/1]");
}

// Whether the node's ranks share cores (resolve_shared_cores): the setting, else overlapping
// masks and more worker threads on the node than the CPUs the masks cover.
namespace {
troupe::CoreSharingInputs sharing(std::vector<int> mine, std::vector<int> ranks_per_cpu, std::size_t node_threads) {
  troupe::CoreSharingInputs in;
  in.affinity = std::move(mine);
  in.ranks_per_cpu = std::move(ranks_per_cpu);
  in.node_threads = node_threads;
  return in;
}
}  // namespace

TEST(RuntimeSharedCores, FourUnboundRanksOnTwoCpusShare) {
  EXPECT_TRUE(troupe::resolve_shared_cores(sharing({0, 1}, {4, 4}, 4)));
}

TEST(RuntimeSharedCores, TwoUnboundRanksOfOneThreadOnTwoCpusDoNot) {
  EXPECT_FALSE(troupe::resolve_shared_cores(sharing({0, 1}, {2, 2}, 2)));
}

TEST(RuntimeSharedCores, RanksBoundToTheirOwnCoresNeverShareWhateverTheirThreads) {
  EXPECT_FALSE(troupe::resolve_shared_cores(sharing({0}, {1, 1}, 2)));
  EXPECT_FALSE(troupe::resolve_shared_cores(sharing({1}, {1, 1}, 16)));
}

TEST(RuntimeSharedCores, TwoRanksBoundToOneCoreShare) {
  // --bind-to core --oversubscribe: ranks 0 and 2 on CPU 0, 1 and 3 on CPU 1.
  EXPECT_TRUE(troupe::resolve_shared_cores(sharing({0}, {2, 2}, 4)));
}

TEST(RuntimeSharedCores, ASingletonNeverShares) {
  EXPECT_FALSE(troupe::resolve_shared_cores(sharing({0, 1, 2, 3}, {1, 1, 1, 1}, 8)));
  EXPECT_FALSE(troupe::resolve_shared_cores(troupe::CoreSharingInputs{}));  // nothing known
}

TEST(RuntimeSharedCores, TheSettingWinsOverDetection) {
  auto on = sharing({0}, {1, 1}, 2);
  on.setting = 1;
  EXPECT_TRUE(troupe::resolve_shared_cores(on));
  auto off = sharing({0, 1}, {4, 4}, 4);
  off.setting = 0;
  EXPECT_FALSE(troupe::resolve_shared_cores(off));
}

TEST(RuntimeSharedCores, CpuIdsOutsideTheCountsAreIgnored) {
  EXPECT_FALSE(troupe::resolve_shared_cores(sharing({5, -1}, {4, 4}, 4)));
}
