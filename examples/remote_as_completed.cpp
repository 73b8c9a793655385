// remote_as_completed: as_completed over futures of tasks that run on other ranks.
//
// Python equivalent (run with `mpiexec -n 4 python -m mpi4py.futures prog.py`):
//
//   from mpi4py import MPI
//   from mpi4py.futures import MPIPoolExecutor, as_completed
//   import time
//   def job(i, millis):
//       time.sleep(millis / 1000)
//       if i == 7: raise KeyError(f"job {i}")
//       return MPI.COMM_WORLD.Get_rank(), MPI.Get_processor_name(), i * i
//   with MPIPoolExecutor() as ex:
//       futures = {ex.submit(job, i, 5 * (16 - i)): i for i in range(16)}
//       for f in as_completed(futures, timeout=30):
//           print(futures[f], f.exception() or f.result())
//
// Executor::submit returns the same troupe::Future a ThreadPool returns, so as_completed,
// wait, when_all and add_done_callback work on remote tasks unchanged. A result can be
// any serializable type: here a struct that lists its fields with TROUPE_FIELDS.
//
//   mpirun -n 4 build/examples/example_remote_as_completed
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <troupe/executor/executor.hpp>
#include <troupe/future/wait.hpp>
#include <troupe/runtime/runtime.hpp>
#include <troupe/wire/serialize.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;

// What a job sends back: where it ran and its value.
struct Report {
  int rank = -1;
  std::string host;
  long value = 0;
  TROUPE_FIELDS(rank, host, value)
};

Report job(int i, int millis) {
  std::this_thread::sleep_for(std::chrono::milliseconds(millis));
  if (i == 7) throw std::out_of_range("job " + std::to_string(i) + " has no input");
  return {troupe::Runtime::current()->rank(), troupe::Runtime::current()->host(), long{i} * i};
}
}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  troupe::Executor ex(rt);

  if (ex.is_root()) {
    std::printf("remote_as_completed on %d rank(s), %zu worker thread(s) in all\n", ex.size(), ex.workers());
    constexpr int kJobs = 16;
    // Later jobs are shorter, so completion order differs from submission order.
    std::vector<troupe::Future<Report>> futures;
    std::unordered_map<const void*, int> job_of;  // Python keys a dict by the future; Future::id() here
    for (int i = 0; i < kJobs; ++i) {
      auto f = ex.submit(troupe::remote<&job>, i, 5 * (kJobs - i));
      job_of[f.id()] = i;
      futures.push_back(f);
    }

    std::set<int> seen;
    std::map<int, int> per_rank;
    int errors = 0;
    for (auto& f : troupe::as_completed(futures, 30s)) {
      const int i = job_of.at(f.id());
      seen.insert(i);
      if (std::exception_ptr e = f.exception()) {  // returns the task's error, does not throw it
        try {
          std::rethrow_exception(e);
        } catch (const std::out_of_range& err) {
          std::printf("   job %2d  failed: %s\n", i, err.what());
          ++errors;
        }
        continue;
      }
      const Report& r = f.result();
      std::printf("   job %2d  = %3ld  ran on rank %d (%s)\n", i, r.value, r.rank, r.host.c_str());
      check(r.value == long{i} * i, "each result belongs to its job");
      ++per_rank[r.rank];
    }
    std::printf("jobs per rank:");
    for (auto [rank, n] : per_rank) std::printf(" rank %d: %d", rank, n);
    std::printf("\n");
    check(static_cast<int>(seen.size()) == kJobs, "as_completed yields every future exactly once");
    check(errors == 1, "job 7's exception arrives as itself");
    // Every rank has a worker, and jobs sleep long enough that all of them are busy.
    check(static_cast<int>(per_rank.size()) == ex.size(), "every rank ran some jobs");

    std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  }

  ex.shutdown();
  return failures == 0 ? 0 : 1;
}
