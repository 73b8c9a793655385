// Spawned workers (issue 12, docs/spawn.md): run by ctest as a plain process, WITHOUT mpirun,
// so that the Runtime starts as an MPI singleton and spawns its workers itself. The workers
// are this same binary with the same arguments: they join the parent and serve in shutdown().
// Usage: test_mpi_spawn_app map|map_funneled|missing|notmpi|early
//   map      spawns 2 workers; submit_to, map, map_reduce and map_reduce_all prove 3 ranks
//   map_funneled  the same at MPI_THREAD_FUNNELED (no progress thread)
//   missing  SpawnOptions::command names a missing file: ValueError naming it, nothing spawned
//   notmpi   the workers are /bin/true (never call MPI_Init): TimeoutError within the timeout
//   early    worker rank 2 exits in its first task: the root's map raises BrokenExecutor
// The root prints "SPAWN ok: ..." lines and exits 0 only when everything held; a worker's
// exit status is not the test's (ctest sees the root's).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "troupe/core/error.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/runtime.hpp"

using namespace std::chrono_literals;

namespace {

int g_failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("SPAWN %s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  std::fflush(stdout);
  if (!ok) ++g_failures;
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

// Where a task ran: (rank, pid).
std::pair<int, long> where(long) {
  std::this_thread::sleep_for(2ms);  // stands in for work, so that every rank gets some
  return {troupe::Runtime::current()->rank(), static_cast<long>(::getpid())};
}

long square(long x) { return x * x; }

long square_or_leave(long x) {
  if (troupe::Runtime::current()->rank() == 2) {
    std::fflush(stdout);
    ::_exit(3);  // a worker that ends early: no MPI_Finalize, no goodbye
  }
  std::this_thread::sleep_for(2ms);
  return x * x;
}

troupe::RuntimeOptions spawning(std::size_t workers) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  ro.spawn.workers = workers;
  ro.spawn.timeout = 60s;
  return ro;
}

int run_map(troupe::ThreadLevel level) {
  troupe::RuntimeOptions ro = spawning(2);
  ro.thread_level = level;  // FUNNELED: the spawn runs on a helper thread while this one waits
  troupe::Runtime rt(ro);
  troupe::ExecutorOptions eo;
  eo.threads = 1;
  troupe::Executor ex(rt, eo);
  // Collective, on every rank: each contributes its own rank; the sum proves 3 ranks took part.
  const std::vector<long> mine{static_cast<long>(rt.rank())};
  const long rank_sum = ex.map_reduce_all([](long r) { return r; }, std::plus<long>{}, mine);
  if (ex.is_root()) {
    check(rt.thread_level() == level || level == troupe::ThreadLevel::Multiple,
          std::string("thread level ") + std::string(troupe::to_string(rt.thread_level())));
    check(rt.size() == 3, "the singleton parent and 2 workers make " + std::to_string(rt.size()) + " ranks");
    check(rt.spawned_workers() == 2 && !rt.is_spawned_worker(), "the parent is rank 0 and spawned 2 workers");
    check(rank_sum == 3, "map_reduce_all over the ranks: 0+1+2 = " + std::to_string(rank_sum));
    std::set<long> pids{static_cast<long>(::getpid())};
    for (int r = 1; r < rt.size(); ++r) {
      auto [rank, pid] = ex.submit_to(r, troupe::remote<&where>, 0L).result(60s);
      check(rank == r, "submit_to(" + std::to_string(r) + ") ran on rank " + std::to_string(rank));
      pids.insert(pid);
    }
    check(pids.size() == 3, "the 3 ranks are 3 processes (" + std::to_string(pids.size()) + " pids)");
    std::vector<long> in(300);
    std::iota(in.begin(), in.end(), 0L);
    const auto out = ex.map(troupe::remote<&square>, in, troupe::MapOptions{.chunksize = 7}).to_vector();
    bool exact = out.size() == in.size();
    for (std::size_t i = 0; exact && i < in.size(); ++i) exact = out[i] == in[i] * in[i];
    check(exact, "Executor::map of 300 squares is exact");
    std::set<int> ranks;
    for (auto [rank, pid] : ex.map(troupe::remote<&where>, in, troupe::MapOptions{.chunksize = 1}).to_vector()) {
      ranks.insert(rank);
    }
    std::printf("SPAWN info: map of 300 tasks ran on %zu rank(s)\n", ranks.size());
    const long total = ex.map_reduce(troupe::remote<&square>, std::plus<long>{}, in);
    check(total == 8955050, "Executor::map_reduce of 300 squares = " + std::to_string(total));
  } else {
    std::printf("SPAWN worker rank %d/%d (pid %ld) serves\n", rt.rank(), rt.size(), static_cast<long>(::getpid()));
    std::fflush(stdout);
  }
  ex.shutdown();
  return g_failures;
}

int run_missing() {
  troupe::RuntimeOptions ro = spawning(2);
  ro.spawn.command = "/nonexistent/troupe-worker";
  try {
    troupe::Runtime rt(ro);
    check(false, "a Runtime spawning a missing executable started");
  } catch (const troupe::ValueError& e) {
    check(contains(e.what(), "troupe::Runtime") && contains(e.what(), "/nonexistent/troupe-worker"),
          std::string("ValueError naming Runtime and the path: ") + e.what());
  }
  // The check comes before MPI_Comm_spawn: the Runtime let go of MPI cleanly, so a new one
  // cannot start (MPI_Init once per process) but nothing hangs at exit.
  return g_failures;
}

int run_notmpi() {
  troupe::RuntimeOptions ro = spawning(2);
  ro.spawn.command = "/bin/true";
  ro.spawn.args = std::vector<std::string>{};
  ro.spawn.timeout = 5s;
  const auto start = std::chrono::steady_clock::now();
  try {
    troupe::Runtime rt(ro);
    check(false, "a Runtime spawning /bin/true started");
  } catch (const troupe::TimeoutError& e) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    check(contains(e.what(), "troupe::Runtime") && contains(e.what(), "MPI_Comm_spawn") &&
              contains(e.what(), "/bin/true"),
          "TimeoutError after " + std::to_string(ms) + " ms: " + e.what());
  }
  return g_failures;
}

int run_early() {
  troupe::Runtime rt(spawning(2));
  troupe::ExecutorOptions eo;
  eo.threads = 1;
  eo.failure_timeout = 2000ms;
  eo.retries = 0;
  troupe::Executor ex(rt, eo);
  if (ex.is_root()) {
    std::vector<long> in(200);
    std::iota(in.begin(), in.end(), 0L);
    bool broke = false;
    try {
      auto out = ex.map(troupe::remote<&square_or_leave>, in, troupe::MapOptions{.chunksize = 1}).to_vector();
      std::printf("SPAWN info: the map completed (%zu results): rank 2 got none of its tasks\n", out.size());
    } catch (const troupe::BrokenExecutor& e) {
      broke = true;
      // "rank 2 was lost", or "rank 1 ..." when Open MPI ended the other worker first.
      check(contains(e.what(), "lost"), std::string("the map raised BrokenExecutor: ") + e.what());
    }
    if (!broke) {  // rank 2 ran none of the map's tasks: send it one
      try {
        (void)ex.submit_to(2, troupe::remote<&square_or_leave>, 1L).result(60s);
        check(false, "a task on rank 2 completed although rank 2 exits in it");
      } catch (const troupe::BrokenExecutor& e) {
        check(contains(e.what(), "lost"), std::string("submit_to(2) raised BrokenExecutor: ") + e.what());
      }
    }
    // Open MPI ends the other worker too (its job "exited with non-zero status"): later work
    // runs on the ranks left (the root), or fails with BrokenExecutor when a worker declared
    // the root lost first. Either way it ends: nothing hangs.
    try {
      const long y = ex.submit(troupe::remote<&square>, 12L).result(60s);
      check(y == 144, "a later submit runs on the ranks left");
    } catch (const troupe::BrokenExecutor& e) {
      std::printf("SPAWN info: a later submit raised BrokenExecutor: %s\n", e.what());
    }
  }
  ex.shutdown();
  if (ex.is_root()) check(true, "shutdown completed without the lost worker");
  return g_failures;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 2 ? argv[1] : "";
  int failures = 0;
  if (mode == "map") {
    failures = run_map(troupe::ThreadLevel::Multiple);
  } else if (mode == "map_funneled") {
    failures = run_map(troupe::ThreadLevel::Funneled);
  } else if (mode == "missing") {
    failures = run_missing();
  } else if (mode == "notmpi") {
    failures = run_notmpi();
  } else if (mode == "early") {
    failures = run_early();
  } else {
    std::fprintf(stderr, "usage: %s map|map_funneled|missing|notmpi|early\n", argv[0]);
    return 2;
  }
  return failures == 0 ? 0 : 1;
}
