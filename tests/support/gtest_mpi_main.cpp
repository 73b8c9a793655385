// gtest main for multi-rank tests (target troupe_gtest_mpi_main).
//
// - Initializes MPI once (MPI_THREAD_MULTIPLE), so a troupe::Runtime inside a test takes
//   the adopt-an-initialized-MPI path, and finalizes it at the end.
// - Rank 0 prints gtest's normal output; the other ranks' printer and XML writer are
//   removed (they would interleave and overwrite the same XML file).
// - Every failed assertion, on every rank, is printed as
//   "[rank r/N] FAILED Suite.Test at file:line: message".
// - Fail fast: at the end of a failed test the failing rank calls MPI_Abort, so peers
//   blocked in a collective do not hang (set TROUPE_TEST_NO_ABORT=1 to run every test;
//   then each test's verdict is combined across ranks and rank 0 names the ranks that
//   failed — at the risk of a hang that the ctest timeout ends).
// - The exit code of every rank is the global verdict (MPI_Allreduce MAX).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

bool no_abort() {
  const char* v = std::getenv("TROUPE_TEST_NO_ABORT");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

class MpiListener : public ::testing::EmptyTestEventListener {
 public:
  explicit MpiListener(MPI_Comm verdict_comm) : comm_(verdict_comm), rank_(world_rank()), size_(world_size()) {}

 private:
  void OnTestStart(const ::testing::TestInfo& info) override {
    // Taken here: asking gtest for the current test inside OnTestPartResult deadlocks.
    name_ = std::string(info.test_suite_name()) + "." + info.name();
  }

  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d/%d] FAILED %s at %s:%d: %s\n", rank_, size_, name_.c_str(),
                 r.file_name() != nullptr ? r.file_name() : "?", r.line_number(), r.summary());
    std::fflush(stderr);
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    const bool failed = info.result()->Failed();
    if (!no_abort()) {
      if (failed) {
        std::fprintf(stderr,
                     "[rank %d/%d] test %s failed: calling MPI_Abort so that no rank hangs "
                     "(TROUPE_TEST_NO_ABORT=1 runs the remaining tests instead)\n",
                     rank_, size_, name_.c_str());
        std::fflush(stderr);
        std::fflush(stdout);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      return;
    }
    // NO_ABORT: combine this test's verdict; rank 0 names the failing ranks.
    int mine = failed ? 1 : 0;
    std::vector<int> all(static_cast<std::size_t>(size_));
    MPI_Gather(&mine, 1, MPI_INT, all.data(), 1, MPI_INT, 0, comm_);
    if (rank_ == 0) {
      std::string ranks;
      for (int r = 0; r < size_; ++r) {
        if (all[static_cast<std::size_t>(r)] == 0) continue;
        if (!ranks.empty()) ranks += ',';
        ranks += std::to_string(r);
      }
      if (!ranks.empty()) {
        std::fprintf(stderr, "[rank 0/%d] test %s failed on rank(s) %s\n", size_, name_.c_str(), ranks.c_str());
        std::fflush(stderr);
      }
    }
  }

  MPI_Comm comm_;
  int rank_;
  int size_;
  std::string name_;
};

}  // namespace

int main(int argc, char** argv) {
#ifdef OPEN_MPI
  // Same workaround as troupe::Runtime (Open MPI 4.1 osc/rdma compare-and-swap crash);
  // never overrides a value the user set. Open MPI only.
  ::setenv("OMPI_MCA_osc_rdma_priority", "0", 0);
#endif
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "gtest_mpi_main: MPI_Init_thread failed\n");
    return 2;
  }
  ::testing::InitGoogleTest(&argc, argv);

  // The harness's own collectives use their own communicator, never the tests' world.
  MPI_Comm verdict_comm = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &verdict_comm);

  const int rank = world_rank();
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) {
    delete listeners.Release(listeners.default_result_printer());
    delete listeners.Release(listeners.default_xml_generator());
  }
  listeners.Append(new MpiListener(verdict_comm));

  const int local = RUN_ALL_TESTS();
  int global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, verdict_comm);
  if (rank == 0 && global != 0 && local == 0) {
    std::fprintf(stderr, "[rank 0/%d] a test failed on another rank (see the [rank r/N] lines above)\n", world_size());
  }
  MPI_Comm_free(&verdict_comm);
  MPI_Finalize();
  return global != 0 ? 1 : 0;
}
