// Slurm's job facts (troupe/runtime/slurm.hpp): the start-up line and the tasks-per-node list.
#include "troupe/runtime/slurm.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "troupe/runtime/topology.hpp"

using troupe::describe_slurm_job;
using troupe::slurm_tasks_on_node;
using troupe::SlurmJobInputs;

namespace {
SlurmJobInputs job(const char* id, const char* step, const char* ntasks, const char* nodes, const char* cpus) {
  SlurmJobInputs in;
  in.job_id = id;
  in.step_id = step;
  in.ntasks = ntasks;
  in.nodelist = nodes;
  in.cpus_per_task = cpus;
  return in;
}
}  // namespace

TEST(SlurmJobLine, FullStep) {
  EXPECT_EQ(describe_slurm_job(job("123", "0", "4", "localhost", "1")),
            "slurm job 123 step 0: 4 tasks on nodes localhost, 1 CPUs per task");
  EXPECT_EQ(describe_slurm_job(job("77", "3", "16", "node[01-04]", "8")),
            "slurm job 77 step 3: 16 tasks on nodes node[01-04], 8 CPUs per task");
}

TEST(SlurmJobLine, EmptyOutsideSlurm) {
  EXPECT_EQ(describe_slurm_job(SlurmJobInputs{}), "");
  EXPECT_EQ(describe_slurm_job(job("", "0", "4", "vm", "1")), "");
  EXPECT_EQ(describe_slurm_job(job(nullptr, "0", "4", "vm", "1")), "");
}

TEST(SlurmJobLine, MissingValuesAreNamed) {
  // A batch script's own process: no step; srun without -c: no CPUs per task.
  EXPECT_EQ(describe_slurm_job(job("5", nullptr, "2", "vm", nullptr)),
            "slurm job 5: 2 tasks on nodes vm, CPUs per task not set");
  EXPECT_EQ(describe_slurm_job(job("5", "", nullptr, nullptr, "")),
            "slurm job 5: tasks not set on nodes not set, CPUs per task not set");
  EXPECT_EQ(describe_slurm_job(job("5", "0", "1", "vm", "2")),
            "slurm job 5 step 0: 1 task on nodes vm, 2 CPUs per task");
}

TEST(SlurmJobLine, ValuesCannotBreakTheLine) {
  EXPECT_EQ(describe_slurm_job(job("9\n[rank 0/1] fake", "0", "1", "a\tb", "1")),
            "slurm job 9?[rank 0/1] fake step 0: 1 task on nodes a?b, 1 CPUs per task");
  const std::string nodes(500, 'n');
  const std::string line = describe_slurm_job(job("9", "0", "1", nodes.c_str(), "1"));
  EXPECT_EQ(line, "slurm job 9 step 0: 1 task on nodes " + std::string(200, 'n') + "..., 1 CPUs per task");
}

TEST(SlurmJobLine, ReadsTheEnvironment) {
  ::setenv("SLURM_JOB_ID", "42", 1);
  ::setenv("SLURM_STEP_ID", "1", 1);
  ::setenv("SLURM_NTASKS", "8", 1);
  ::setenv("SLURM_STEP_NUM_TASKS", "4", 1);  // the step's count wins over the job's
  ::setenv("SLURM_JOB_NODELIST", "n[1-4]", 1);
  ::setenv("SLURM_STEP_NODELIST", "n[1-2]", 1);
  ::setenv("SLURM_CPUS_PER_TASK", "3", 1);
  EXPECT_EQ(describe_slurm_job(troupe::slurm_job_from_environment()),
            "slurm job 42 step 1: 4 tasks on nodes n[1-2], 3 CPUs per task");
  ::unsetenv("SLURM_STEP_NUM_TASKS");
  ::unsetenv("SLURM_STEP_NODELIST");
  EXPECT_EQ(describe_slurm_job(troupe::slurm_job_from_environment()),
            "slurm job 42 step 1: 8 tasks on nodes n[1-4], 3 CPUs per task");
  for (const char* v : {"SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_NTASKS", "SLURM_JOB_NODELIST", "SLURM_CPUS_PER_TASK"}) {
    ::unsetenv(v);
  }
  EXPECT_EQ(describe_slurm_job(troupe::slurm_job_from_environment()), "");
}

TEST(SlurmTasksOnNode, CompressedList) {
  EXPECT_EQ(slurm_tasks_on_node("4", 0), 4u);
  EXPECT_EQ(slurm_tasks_on_node("2(x3),1", 0), 2u);
  EXPECT_EQ(slurm_tasks_on_node("2(x3),1", 2), 2u);
  EXPECT_EQ(slurm_tasks_on_node("2(x3),1", 3), 1u);
  EXPECT_EQ(slurm_tasks_on_node("1,5(x2),3", 2), 5u);
  EXPECT_EQ(slurm_tasks_on_node("1,5(x2),3", 3), 3u);
}

TEST(SlurmTasksOnNode, RejectsMalformedOrShort) {
  EXPECT_FALSE(slurm_tasks_on_node(nullptr, 0));
  EXPECT_FALSE(slurm_tasks_on_node("", 0));
  EXPECT_FALSE(slurm_tasks_on_node("4", 1));            // one node only
  EXPECT_FALSE(slurm_tasks_on_node("2(x3),1", 4));      // past the end
  EXPECT_FALSE(slurm_tasks_on_node("0", 0));            // zero tasks
  EXPECT_FALSE(slurm_tasks_on_node("2(x0)", 0));        // zero repeat
  EXPECT_FALSE(slurm_tasks_on_node("2(3)", 0));         // no 'x'
  EXPECT_FALSE(slurm_tasks_on_node("2(x3", 0));         // unclosed
  EXPECT_FALSE(slurm_tasks_on_node("2,", 0));           // trailing comma
  EXPECT_FALSE(slurm_tasks_on_node("2,x", 0));          // junk after the answer
  EXPECT_FALSE(slurm_tasks_on_node("-2", 0));           // sign
  EXPECT_FALSE(slurm_tasks_on_node(" 2", 0));           // space
  EXPECT_FALSE(slurm_tasks_on_node("99999999999", 0));  // too large
}

// A pool made without a Runtime in a task of `srun -n 2K` (task/none: every task sees the whole
// node) takes its share of the node, as under mpirun.
TEST(SlurmTasksOnNode, SrunTasksShareAnUnboundNode) {
  const auto cpus = troupe::affinity_cpus().size();
  if (cpus < troupe::online_cpu_count()) GTEST_SKIP() << "this process is bound to part of the node";
  for (const char* v : {"TROUPE_THREADS", "SLURM_CPUS_PER_TASK", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                        "SLURM_NTASKS_PER_NODE"}) {
    if (std::getenv(v) != nullptr) GTEST_SKIP() << v << " is set";
  }
  ::setenv("SLURM_NODEID", "1", 1);
  ::setenv("SLURM_STEP_TASKS_PER_NODE", (std::string("1,") + std::to_string(cpus * 2)).c_str(), 1);
  ::setenv("SLURM_LOCALID", "0", 1);
  EXPECT_EQ(troupe::default_thread_count(), 1u);
  ::setenv("SLURM_STEP_TASKS_PER_NODE", "1(x2)", 1);  // alone on its node: all of it
  EXPECT_EQ(troupe::default_thread_count(), cpus);
  ::unsetenv("SLURM_NODEID");
  ::unsetenv("SLURM_STEP_TASKS_PER_NODE");
  ::unsetenv("SLURM_LOCALID");
}
