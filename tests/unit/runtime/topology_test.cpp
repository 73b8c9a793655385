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

// The binding traps (check_binding): the one check behind the start-up note and troupe-info.
namespace {
troupe::BindingFacts placement(std::size_t mask, std::size_t node, std::size_t threads, ThreadCountSource source) {
  troupe::BindingFacts f;
  f.mask_cpus = mask;
  f.node_cpus = node;
  f.threads = threads;
  f.threads_source = source;
  f.node_ranks = 1;
  f.node_threads = threads;
  f.node_covered_cpus = mask;
  return f;
}

std::vector<troupe::BindingTrap> traps(const troupe::BindingFacts& f) {
  std::vector<troupe::BindingTrap> out;
  for (const auto& w : troupe::check_binding(f)) {
    EXPECT_FALSE(w.message.empty());
    out.push_back(w.trap);
  }
  return out;
}
}  // namespace

TEST(RuntimeBindingCheck, NoTrapForAWholeNodeOrAFairShare) {
  EXPECT_TRUE(traps(placement(16, 16, 16, ThreadCountSource::Affinity)).empty());  // singleton
  EXPECT_TRUE(traps(placement(4, 16, 4, ThreadCountSource::Affinity)).empty());    // --map-by slot:pe=4
  EXPECT_TRUE(traps(placement(2, 16, 2, ThreadCountSource::SlurmCpusPerTask)).empty());
  EXPECT_TRUE(traps(placement(0, 0, 1, ThreadCountSource::Fallback)).empty());  // nothing known
  EXPECT_TRUE(traps(placement(1, 1, 1, ThreadCountSource::Affinity)).empty());  // a 1-CPU machine
}

TEST(RuntimeBindingCheck, OneCoreOfABiggerNode) {
  const auto f = placement(1, 64, 1, ThreadCountSource::Affinity);  // mpirun -n 1 binds to a core
  EXPECT_EQ(traps(f), std::vector{troupe::BindingTrap::OneCoreOfNode});
  const auto w = troupe::check_binding(f);
  EXPECT_NE(w[0].message.find("1 of the 64 CPUs"), std::string::npos) << w[0].message;
  EXPECT_NE(w[0].message.find("--bind-to none"), std::string::npos) << w[0].message;
  EXPECT_NE(w[0].message.find("srun -c N"), std::string::npos) << w[0].message;
  // A count the user chose is not this trap (1 thread asked for) ...
  EXPECT_TRUE(traps(placement(1, 64, 1, ThreadCountSource::TroupeThreads)).empty());
  // ... but more threads than the one CPU is the next one.
  EXPECT_EQ(traps(placement(1, 64, 8, ThreadCountSource::TroupeThreads)),
            std::vector{troupe::BindingTrap::ThreadsOverMask});
}

TEST(RuntimeBindingCheck, MoreThreadsThanTheMask) {
  const auto w = troupe::check_binding(placement(2, 8, 6, ThreadCountSource::Option));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].trap, troupe::BindingTrap::ThreadsOverMask);
  EXPECT_NE(w[0].message.find("6 threads (from option) on the 2 CPU(s)"), std::string::npos) << w[0].message;
  EXPECT_TRUE(traps(placement(2, 8, 2, ThreadCountSource::Option)).empty());
  EXPECT_EQ(troupe::to_string(troupe::BindingTrap::ThreadsOverMask), "threads_over_mask");
}

TEST(RuntimeBindingCheck, RanksBoundToTheSameCpus) {
  auto f = placement(2, 16, 2, ThreadCountSource::Affinity);
  f.node_ranks = 2;
  f.shared_mask_cpus = 2;  // the other rank is bound to the same two CPUs
  f.node_threads = 4;
  f.node_covered_cpus = 2;
  EXPECT_EQ(traps(f), (std::vector{troupe::BindingTrap::OverlappingBinding, troupe::BindingTrap::SharedCores}));
  f.node_threads = 2;  // overlapping, but not more threads than CPUs: only the overlap
  EXPECT_EQ(traps(f), std::vector{troupe::BindingTrap::OverlappingBinding});
}

TEST(RuntimeBindingCheck, OversubscribedNode) {
  // mpirun --oversubscribe -n 4 on 2 CPUs: every rank may run on both, 1 thread each.
  auto f = placement(2, 2, 1, ThreadCountSource::Affinity);
  f.node_ranks = 4;
  f.shared_mask_cpus = 2;
  f.node_threads = 4;
  f.node_covered_cpus = 2;
  const auto w = troupe::check_binding(f);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].trap, troupe::BindingTrap::SharedCores);
  EXPECT_NE(w[0].message.find("4 ranks of this node run 4 worker threads on 2 CPU(s)"), std::string::npos)
      << w[0].message;
  // 2 unbound ranks of 1 thread on 2 CPUs: masks overlap, but each thread has a CPU.
  f.node_ranks = 2;
  f.node_threads = 2;
  EXPECT_TRUE(traps(f).empty());
}
