// troupe::Executor when ranks share cores (issue 10, item 5): a map of 10^6 tasks of 5 µs
// each against its ideal time (tasks x 5 µs / the CPUs the ranks can use), at chunksize 1
// and with the automatic chunksize; each rank's CPU seconds and share of the tasks; then an
// idle serving rank's CPU after 100 ms of rest, and the round trip of a submit from idle.
// Root-driven (rank 0 submits); rank 0 prints
//   RESULT name=<key> unit=<unit> value=<median> reps=<n> min=<..> max=<..> n=<items> ranks=<P>
// Run: mpirun --oversubscribe -n 4 build/bench/troupe_oversub_bench [--reps N] [--tasks N]
//      [--task-us N] [--credits N (ExecutorOptions::credits_per_thread)] [--idle-seconds N]
//      (and -n 2 for the not-oversubscribed case)
#include <dirent.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/runtime/topology.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using bench::loadavg;
using bench::process_cpu_seconds;
using bench::seconds_since;

std::vector<double> cpu_of(const std::vector<int>& pids) {
  std::vector<double> c;
  for (int p : pids) c.push_back(process_cpu_seconds(p));
  return c;
}

// A task that keeps its core busy for @p us microseconds of wall time.
int busy(int us) {
  const auto until = Clock::now() + std::chrono::microseconds(us);
  long acc = us;
  while (Clock::now() < until) acc = acc * 3 + 1;
  return static_cast<int>(acc & 1);
}

}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  const int reps = bench::reps_arg(argc, argv, 3);
  const long n = bench::arg_long(argc, argv, "--tasks", 1'000'000);
  const int task_us = static_cast<int>(bench::arg_long(argc, argv, "--task-us", 5));
  const long idle_s = std::max(1L, bench::arg_long(argc, argv, "--idle-seconds", 1));
  int pid = static_cast<int>(getpid());
  std::vector<int> pids(static_cast<std::size_t>(rt.size()));
  MPI_Gather(&pid, 1, MPI_INT, pids.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  // The CPUs this node's ranks can use: the union of their affinity masks.
  const auto mine = troupe::affinity_cpus();
  std::vector<int> mask(troupe::online_cpu_count() + 64, 0);
  for (int c : mine) {
    if (static_cast<std::size_t>(c) < mask.size()) mask[static_cast<std::size_t>(c)] = 1;
  }
  MPI_Allreduce(MPI_IN_PLACE, mask.data(), static_cast<int>(mask.size()), MPI_INT, MPI_MAX, rt.node_comm());
  const long node_cpus = std::count(mask.begin(), mask.end(), 1);

  troupe::ExecutorOptions eo;
  if (const long c = bench::arg_long(argc, argv, "--credits", 0); c > 0)
    eo.credits_per_thread = static_cast<std::size_t>(c);
  const int P = rt.size();
  const bool root = rt.rank() == 0;
  if (root) {
    std::printf("# troupe oversub: %d ranks, %zu threads each, %ld CPUs usable on the node, shared_cores=%d, load %s\n",
                P, rt.threads(), node_cpus, rt.shared_cores() ? 1 : 0, loadavg().c_str());
  }
  std::vector<int> in(static_cast<std::size_t>(n), task_us);
  auto work = [](int us) { return busy(us); };

  for (std::size_t chunk : {std::size_t{1}, std::size_t{0}}) {
    const std::string name = chunk ? "map_5us_chunk1" : "map_5us_auto";
    std::vector<double> secs, raw, vs_raw, vs_ideal, efficiency;
    std::vector<std::vector<double>> rank_cpu(static_cast<std::size_t>(P));
    std::vector<std::vector<double>> rank_share(static_cast<std::size_t>(P));
    double ideal = 0;
    for (int r = 0; r < reps; ++r) {
      // The baseline, in the same run: every rank busy for its share of the tasks at once,
      // no troupe (what the CPUs the ranks get right now allow: the machine is shared).
      const long mine_n = n / P + (rt.rank() < n % P ? 1 : 0);
      const double raw_s = bench::slowest_seconds(MPI_COMM_WORLD, 1, mine_n, [&](long k) {
        for (long i = 0; i < k; ++i) (void)busy(task_us);
      })[0];
      troupe::Executor ex(rt, eo);
      if (ex.is_root()) {
        const double cores = static_cast<double>(std::min<long>(node_cpus, static_cast<long>(ex.workers())));
        ideal = static_cast<double>(n) * task_us * 1e-6 / cores;
        // Warm up: every rank has run tasks and every connection is up.
        (void)ex.map(work, std::vector<int>(static_cast<std::size_t>(P) * 16, 1), {.chunksize = 1}).to_vector();
        std::vector<std::uint64_t> served0(static_cast<std::size_t>(P), 0);
        for (int k = 1; k < P; ++k) {
          served0[static_cast<std::size_t>(k)] =
              ex.submit_to(k, [] { return troupe::this_executor().stats().served_remote; }).result();
        }
        const auto st0 = ex.stats();
        const auto c0 = cpu_of(pids);
        troupe::MapOptions o;
        if (chunk) o.chunksize = chunk;
        const auto t0 = Clock::now();
        auto out = ex.map(work, in, o).to_vector();
        const double s = seconds_since(t0);
        const auto c1 = cpu_of(pids);
        const auto st1 = ex.stats();
        if (out.size() != in.size()) std::printf("# WRONG map result\n");
        secs.push_back(s);
        raw.push_back(raw_s);
        vs_raw.push_back(s / raw_s);
        vs_ideal.push_back(s / ideal);
        const double tasks = static_cast<double>(st1.submitted - st0.submitted);
        double cpu_all = 0;
        for (int k = 0; k < P; ++k) {
          const auto K = static_cast<std::size_t>(k);
          rank_cpu[K].push_back(c1[K] - c0[K]);
          cpu_all += c1[K] - c0[K];
          std::uint64_t served = 0;
          if (k == 0) {
            served = st1.ran_here - st0.ran_here;
          } else {
            served = ex.submit_to(k, [] { return troupe::this_executor().stats().served_remote; }).result() -
                     served0[K] - 1;  // less the stats call itself
          }
          rank_share[K].push_back(tasks > 0 ? static_cast<double>(served) / tasks : 0.0);
        }
        efficiency.push_back(static_cast<double>(n) * task_us * 1e-6 / cpu_all);
      }
      ex.shutdown();
    }
    if (root) {
      bench::report(MPI_COMM_SELF, (name + "_seconds").c_str(), "s", secs, n);
      bench::report(MPI_COMM_SELF, (name + "_raw_parallel_seconds").c_str(), "s", raw, n);
      bench::report(MPI_COMM_SELF, (name + "_vs_raw_parallel").c_str(), "x", vs_raw, n);
      bench::report(MPI_COMM_SELF, (name + "_vs_ideal").c_str(), "x", vs_ideal, n);
      bench::report(MPI_COMM_SELF, (name + "_cpu_efficiency").c_str(), "x", efficiency, n);
      std::printf(
          "#   ideal %.3g s (%ld tasks x %d us / %ld CPUs); raw parallel: each rank busy for its share at "
          "once, no troupe; cpu_efficiency: task time / CPU seconds of all ranks\n",
          ideal, n, task_us, std::min<long>(node_cpus, P * static_cast<long>(rt.threads())));
      for (int k = 0; k < P; ++k) {
        const auto K = static_cast<std::size_t>(k);
        const std::string rk = name + "_rank" + std::to_string(k);
        bench::report(MPI_COMM_SELF, (rk + "_cpu").c_str(), "s", rank_cpu[K], n);
        bench::report(MPI_COMM_SELF, (rk + "_task_share").c_str(), "x", rank_share[K], n);
      }
    }
  }

  // Idle: after 100 ms without work, each serving rank's CPU over one second; then the
  // round trip of a submit that finds rank 1 idle, and warm.
  troupe::Executor ex(rt, eo);
  if (ex.is_root() && P > 1) {
    (void)ex.map(work, std::vector<int>(static_cast<std::size_t>(P) * 16, 1), {.chunksize = 1}).to_vector();
    std::this_thread::sleep_for(100ms);
    const auto c0 = cpu_of(pids);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(idle_s));
    const auto c1 = cpu_of(pids);
    const double el = seconds_since(t0);
    double worst = 0;
    for (int k = 1; k < P; ++k) {
      const auto K = static_cast<std::size_t>(k);
      worst = std::max(worst, (c1[K] - c0[K]) / el * 100.0);
      std::printf("#   idle rank %d: %.3f %%core\n", k, (c1[K] - c0[K]) / el * 100.0);
    }
    bench::report(MPI_COMM_SELF, "idle_cpu_worst_serving_rank", "%core", {worst}, 1);
    std::vector<double> us;
    for (int r = 0; r < 7; ++r) {
      std::this_thread::sleep_for(100ms);
      const auto t = Clock::now();
      (void)ex
          .submit_to(
              1, [](long x) { return x + 1; }, long{r})
          .result();
      us.push_back(seconds_since(t) * 1e6);
    }
    bench::report(MPI_COMM_SELF, "roundtrip_from_idle", "us", us, 1);
    std::vector<double> warm;
    for (int r = 0; r < reps; ++r) {
      const int k = 2000;
      const auto t = Clock::now();
      for (int i = 0; i < k; ++i)
        (void)ex
            .submit_to(
                1, [](long x) { return x + 1; }, long{i})
            .result();
      warm.push_back(seconds_since(t) / k * 1e6);
    }
    bench::report(MPI_COMM_SELF, "roundtrip_warm", "us", warm, 2000);
    std::printf("# load at the end: %s\n", loadavg().c_str());
  }
  ex.shutdown();
  return 0;
}
