// The cost of a troupe phase inside a plain-MPI host (issue 13): the host calls
// MPI_Init_thread itself (FUNNELED, or MULTIPLE with --multiple) and opens troupe phases on a
// sub-communicator from MPI_Comm_split. Rank 0 prints
//   RESULT name=host_phase_enter_exit_<level>      Runtime(sub) + Executor + shutdown + both destroyed, ms
//   RESULT name=host_phase_executor_only_<level>   Executor construct + shutdown + destroy, Runtime kept, ms
//   RESULT name=host_phase_map_<level>             a kept executor's map of 64 tiny tasks (for scale), ms
//   RESULT name=host_idle_cpu_<level>              CPU used by the process while the host sleeps 200 ms,
//                                                  a kept executor idle (percent of one core, worst rank)
//   RESULT name=host_idle_cpu_none_<level>         the same without troupe (the baseline)
//   RATIO  name=host_phase_enter_exit_over_5ms     the median over the 5 ms target
// Each time is the slowest rank's per repetition, median over --reps (default 60).
// Run: mpirun --oversubscribe -n 4 build/bench/troupe_host_phase_bench [--multiple] [--reps N]
#include <mpi.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/runtime.hpp"

using namespace std::chrono_literals;

namespace {

using bench::self_cpu_seconds;

// The process's CPU time over @p wall of host time spent outside troupe (a sleep: the host's
// own CPU is then ~0, so what is counted is troupe's and MPI's), as percent of one core; the
// worst rank, median over @p reps.
std::vector<double> idle_cpu_percent(int reps, std::chrono::milliseconds wall) {
  std::vector<double> out;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double c0 = self_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(wall);
    double pct = 100.0 * (self_cpu_seconds() - c0) /
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MPI_Allreduce(MPI_IN_PLACE, &pct, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    out.push_back(pct);
  }
  return out;
}

long tiny(long x) { return x + 1; }

}  // namespace

int main(int argc, char** argv) {
  bool multiple = false;
  for (int i = 1; i < argc; ++i) multiple = multiple || std::strcmp(argv[i], "--multiple") == 0;
  const int reps = bench::reps_arg(argc, argv, 60);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, multiple ? MPI_THREAD_MULTIPLE : MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::string level = multiple ? "multiple" : "funneled";
  auto name = [&](const char* base) { return std::string(base) + "_" + level; };

  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, 0, size - 1 - rank, &sub);
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::ExecutorOptions eo;
  eo.threads = 2;
  eo.shutdown_timeout = 60s;

  // 1. A whole phase: Runtime on the sub-communicator, Executor, shutdown, both destroyed.
  auto full = bench::slowest_seconds(MPI_COMM_WORLD, reps, 1, [&](long) {
    troupe::Runtime rt(sub, ro);
    troupe::Executor ex(rt, eo);
    ex.shutdown();
  });
  for (double& s : full) s *= 1e3;
  const double full_ms = bench::report(MPI_COMM_WORLD, name("host_phase_enter_exit").c_str(), "ms", full, 1);

  std::optional<troupe::Runtime> rt;
  rt.emplace(sub, ro);
  // 2. The Executor alone, the Runtime kept.
  auto exec_only = bench::slowest_seconds(MPI_COMM_WORLD, reps, 1, [&](long) {
    troupe::Executor ex(*rt, eo);
    ex.shutdown();
  });
  for (double& s : exec_only) s *= 1e3;
  const double exec_ms = bench::report(MPI_COMM_WORLD, name("host_phase_executor_only").c_str(), "ms", exec_only, 1);

  // 3. A kept executor: one map of 64 tiny tasks per phase (every rank maps), for scale, and
  //    then its idle CPU while the host sleeps.
  std::vector<long> in(64);
  for (long i = 0; i < 64; ++i) in[static_cast<std::size_t>(i)] = i;
  double idle_none = 0.0, idle_kept = 0.0;
  {
    const int idle_reps = std::max(3, reps / 10);
    idle_none = bench::report(MPI_COMM_WORLD, name("host_idle_cpu_none").c_str(), "percent",
                              idle_cpu_percent(idle_reps, 200ms), 200);
    troupe::Executor ex(*rt, eo);
    auto maps = bench::slowest_seconds(MPI_COMM_WORLD, reps, 64, [&](long) {
      (void)ex.map(troupe::remote<&tiny>, in, {.chunksize = 4, .timeout = 60s}).to_vector();
      (void)ex.map_reduce_all([](long x) { return x; }, [](long a, long b) { return a + b; }, std::vector<long>{1}, 0L);
    });
    for (double& s : maps) s *= 1e3;
    bench::report(MPI_COMM_WORLD, name("host_phase_map").c_str(), "ms", maps, 64);
    idle_kept = bench::report(MPI_COMM_WORLD, name("host_idle_cpu").c_str(), "percent",
                              idle_cpu_percent(idle_reps, 200ms), 200);
    ex.shutdown();
  }
  rt.reset();
  bench::ratio(MPI_COMM_WORLD, name("host_phase_enter_exit_over_5ms").c_str(), full_ms / 5.0);
  bench::ratio(MPI_COMM_WORLD, name("host_phase_enter_exit_over_executor_only").c_str(), full_ms / exec_ms);
  bench::ratio(MPI_COMM_WORLD, name("host_idle_cpu_minus_none_percent").c_str(), idle_kept - idle_none);
  if (rank == 0) {
    std::printf("# level provided %d (%s asked), %d ranks, executor threads %zu\n", provided,
                multiple ? "MULTIPLE" : "FUNNELED", size, eo.threads);
  }
  MPI_Comm_free(&sub);
  MPI_Finalize();
  return 0;
}
