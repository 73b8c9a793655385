// troupe::Executor under mpirun: the figures that scripts/compare-mpi4py.sh sets beside raw
// MPI and mpi4py.futures. Root-driven (rank 0 submits), printed by rank 0 as
//   RESULT name=<key> unit=<unit> value=<median> reps=<n> min=<..> max=<..> n=<items>
// Run: mpirun -n 2 build-bench/bench/troupe_executor_bench
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/runtime.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using bench::process_cpu_seconds;
using bench::seconds_since;
using bench::stat_of;

}  // namespace

int main(int argc, char** argv) {
  // --level=serialized: MpiMode::Serialized (progress threads at MPI_THREAD_SERIALIZED, one
  // MPI token); --level=funneled: MpiMode::Funneled; default MpiMode::Multiple.
  troupe::RuntimeOptions ro;
  ro.serialize_mpi = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--level=serialized") == 0) ro.thread_level = troupe::ThreadLevel::Serialized;
    if (std::strcmp(argv[i], "--level=funneled") == 0) ro.thread_level = troupe::ThreadLevel::Funneled;
  }
  troupe::Runtime rt(argc, argv, ro);
  // Process ids, so that rank 0 can read a serving rank's CPU time from /proc (same node).
  int pid = static_cast<int>(getpid());
  std::vector<int> pids(static_cast<std::size_t>(rt.size()));
  MPI_Gather(&pid, 1, MPI_INT, pids.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  troupe::Executor ex(rt);
  const int reps = 5;
  if (ex.is_root()) {
    std::printf("# troupe executor: %d ranks, %zu workers in all, %s\n", ex.size(), ex.workers(),
                std::string(troupe::to_string(rt.thread_level())).c_str());
    const int peer = ex.size() > 1 ? 1 : 0;

    // Round trip: one submit -> result at a time, to another rank (8-byte argument and result).
    {
      const int n = 5000;
      for (int i = 0; i < 500; ++i)
        (void)ex
            .submit_to(
                peer, [](long x) { return x + 1; }, long{i})
            .result();
      std::vector<double> us;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        for (int i = 0; i < n; ++i)
          (void)ex
              .submit_to(
                  peer, [](long x) { return x + 1; }, long{i})
              .result();
        us.push_back(seconds_since(t0) / n * 1e6);
      }
      bench::print_result_n("submit_roundtrip", "us", us, n, " bytes=8");
    }

    // Empty tasks, one task per submit (unchunked), all submitted then all awaited.
    {
      const int n = 200000;
      std::vector<double> rate;
      std::uint64_t remote_before = ex.stats().sent_remote;
      for (int r = 0; r < reps; ++r) {
        std::vector<troupe::Future<void>> fs;
        fs.reserve(n);
        const auto t0 = Clock::now();
        for (int i = 0; i < n; ++i) fs.push_back(ex.submit([](int) {}, i));
        for (auto& f : fs) f.result();
        rate.push_back(n / seconds_since(t0));
      }
      const double remote_share =
          static_cast<double>(ex.stats().sent_remote - remote_before) / (static_cast<double>(n) * reps);
      char extra[64];
      std::snprintf(extra, sizeof extra, " remote_share=%.2f", remote_share);
      bench::print_result_n("tasks_unchunked", "tasks/s", rate, n, extra);
    }

    // The same empty tasks, all placed on another rank (what crosses the network).
    if (ex.size() > 1) {
      const int n = 100000;
      std::vector<double> rate;
      for (int r = 0; r < reps; ++r) {
        std::vector<troupe::Future<void>> fs;
        fs.reserve(n);
        const auto t0 = Clock::now();
        for (int i = 0; i < n; ++i)
          fs.push_back(ex.submit_to(
              peer, [](int) {}, i));
        for (auto& f : fs) f.result();
        rate.push_back(n / seconds_since(t0));
      }
      bench::print_result_n("tasks_remote_unchunked", "tasks/s", rate, n);
    }

    // map of trivial elements at several chunk sizes, and with the automatic one.
    {
      const long n = 1'000'000;
      std::vector<int> in(static_cast<std::size_t>(n));
      std::iota(in.begin(), in.end(), 0);
      double best = 0;
      for (std::size_t chunk : {100u, 1000u, 10000u, 0u}) {
        std::vector<double> rate;
        for (int r = 0; r < reps; ++r) {
          troupe::MapOptions o;
          if (chunk) o.chunksize = chunk;
          const auto t0 = Clock::now();
          auto out = ex.map([](int x) { return 2 * x; }, in, o).to_vector();
          rate.push_back(static_cast<double>(n) / seconds_since(t0));
          if (out.size() != in.size() || out.back() != 2 * in.back()) std::printf("# WRONG map result\n");
        }
        const std::string name = chunk ? "map_chunk" + std::to_string(chunk) : "map_auto";
        bench::print_result_n(name.c_str(), "items/s", rate, n);
        if (chunk) best = std::max(best, stat_of(rate).median);
      }
      bench::print_result_n("map_chunk_best", "items/s", {best}, n);
      bench::print_result_n("tasks_chunked", "tasks/s", {best}, n);
    }

    // A map whose elements cost ~20 µs each: the work spreads over the ranks, and the rate
    // is compared with the ideal (all workers busy, no overhead).
    {
      const long n = 20000;
      std::vector<int> in(static_cast<std::size_t>(n), 1);
      auto work = [](int x) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
        long acc = x;
        while (std::chrono::steady_clock::now() < until) acc = acc * 3 + 1;
        return static_cast<int>(acc & 1);
      };
      std::vector<double> rate;
      const auto before = ex.stats();
      for (int r = 0; r < 3; ++r) {
        const auto t0 = Clock::now();
        auto out = ex.map(work, in).to_vector();
        rate.push_back(static_cast<double>(n) / seconds_since(t0));
      }
      const auto after = ex.stats();
      const double sent = static_cast<double>(after.sent_remote - before.sent_remote);
      const double tasks = static_cast<double>(after.submitted - before.submitted);
      const double ideal = static_cast<double>(ex.workers()) / 20e-6;
      char extra[96];
      std::snprintf(extra, sizeof extra, " remote_task_share=%.2f ideal=%.4g", tasks > 0 ? sent / tasks : 0.0, ideal);
      bench::print_result_n("map_20us_elements", "items/s", rate, n, extra);
    }

    // SCOOP's mapReduce seed with 10 ms per element, against the ideal elements x 10 ms / workers.
    {
      const int k = static_cast<int>(ex.workers()) * 10;
      std::vector<int> in(static_cast<std::size_t>(k), 1);
      std::vector<double> ratio;
      for (int r = 0; r < 3; ++r) {
        const auto t0 = Clock::now();
        const long s = ex.map_reduce(
            [](int a) {
              std::this_thread::sleep_for(10ms);
              return long(a);
            },
            [](long a, long b) { return a + b; }, in, {.initial = std::nullopt, .chunksize = 1});
        const double ideal = k * 0.010 / static_cast<double>(ex.workers());
        ratio.push_back(seconds_since(t0) / ideal);
        if (s != k) std::printf("# WRONG map_reduce result\n");
      }
      bench::print_result_n("scoop_10ms_vs_ideal", "x", ratio, k);
    }

    // Idle: the other ranks have been serving (inside shutdown()) all along; after 100 ms
    // without work, measure a serving rank's CPU over one second.
    std::this_thread::sleep_for(100ms);
    const int watched = pids[static_cast<std::size_t>(peer)];
    const double c0 = process_cpu_seconds(watched);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(1s);
    const double pct = (process_cpu_seconds(watched) - c0) / seconds_since(t0) * 100.0;
    bench::print_result_n("idle_cpu", "%core", {pct}, 1, " rank=" + std::to_string(peer));
    const auto st = ex.stats();
    std::printf("# root: submitted %llu, ran here %llu, sent to other ranks %llu\n",
                static_cast<unsigned long long>(st.submitted), static_cast<unsigned long long>(st.ran_here),
                static_cast<unsigned long long>(st.sent_remote));
  }
  ex.shutdown();
  return 0;
}
