// spawn_workers: mpi4py.futures' MPIPoolExecutor(max_workers=N) from a plain `./app`.
//
// Python equivalent (run with `python prog.py`, no mpiexec):
//
//   from mpi4py.futures import MPIPoolExecutor
//   def square(x):
//       return x * x
//   if __name__ == "__main__":
//       with MPIPoolExecutor(max_workers=2) as ex:
//           print(sum(ex.map(square, range(1000))))
//
// Started alone (an MPI singleton), the Runtime spawns 2 worker processes: this same
// executable with the same arguments (MPI_Comm_spawn). Each worker runs this same main, its
// Runtime joins the parent instead of spawning, and it serves tasks in ex.shutdown(). The
// parent is rank 0. Under `mpirun -n 3` the request is ignored (one log line) and the 3
// launched ranks do the work: the program is the same both ways (docs/spawn.md).
//
//   build/examples/example_spawn_workers           # 1 parent + 2 spawned workers
//   TROUPE_SPAWN_WORKERS=4 build/examples/example_spawn_workers   # 1 parent + 4 workers
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <numeric>
#include <vector>

#include <troupe/core/config.hpp>
#include <troupe/executor/executor.hpp>
#include <troupe/runtime/runtime.hpp>

#include "example_check.hpp"

namespace {
using example::check;
using example::failures;

long square(long x) { return x * x; }
int my_rank(int) { return troupe::Runtime::current()->rank(); }
}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  // MPIPoolExecutor(max_workers=2), unless TROUPE_SPAWN_WORKERS says how many (the option,
  // when set, wins over the variable; left unset, the variable decides).
  if (troupe::settings().spawn_workers == 0) ro.spawn.workers = 2;
  troupe::Runtime rt(argc, argv, ro);
  troupe::Executor ex(rt);

  if (ex.is_root()) {
    std::printf("spawn_workers: %d rank(s): %zu spawned by this process (pid %ld), %zu worker thread(s) in all\n",
                ex.size(), rt.spawned_workers(), static_cast<long>(::getpid()), ex.workers());
    std::vector<long> xs(1000);
    std::iota(xs.begin(), xs.end(), 0L);
    const long total = ex.map_reduce(troupe::remote<&square>, std::plus<long>{}, xs);
    std::printf("sum of squares 0..999 = %ld\n", total);
    check(total == 332833500, "map_reduce: the sum of squares");

    // Every rank answers: the workers are ranks like any other.
    std::map<int, int> answered;
    for (int r = 0; r < ex.size(); ++r) ++answered[ex.submit_to(r, troupe::remote<&my_rank>, 0).result()];
    check(static_cast<int>(answered.size()) == ex.size(), "submit_to: every rank answered");
    std::printf("ranks that answered: %zu of %d\n", answered.size(), ex.size());
  } else if (rt.is_spawned_worker()) {
    std::printf("worker rank %d (pid %ld) joined its parent and serves\n", rt.rank(), static_cast<long>(::getpid()));
  }
  std::fflush(stdout);
  ex.shutdown();  // the workers serve until here, then leave with the parent
  return failures == 0 ? 0 : 1;
}
