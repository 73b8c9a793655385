// condition_abc: three parties print A, B, C in turn, several rounds, through one Condition.
//
// Python equivalent (threads of one process; troupe makes the same code span ranks):
//
//   import threading
//   cv = threading.Condition()
//   turn = 0
//   def party(p):
//       global turn
//       for _ in range(4):
//           with cv:
//               assert cv.wait_for(lambda: turn == p, timeout=30)
//               print("ABC"[p], end=" ")
//               turn = (p + 1) % 3
//               cv.notify_all()
//
// Party p runs on rank p % size (at 3 ranks one party per rank; at 4 the last rank only
// joins the collectives). The shared `turn` and the log of letters live in rank 0's memory
// (an MPI window), read and written only while holding the Condition's lock, which is what
// makes the plain reads and writes safe. Condition(Scope::Ranks) has its own RLock, like
// Python's; wait() registers the waiter before it releases the lock, so no notify is lost.
//
//   mpirun -n 3 build/examples/example_condition_abc
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <troupe/across/condition.hpp>
#include <troupe/runtime/runtime.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {
using example::check;
using example::failures;
constexpr int kRounds = 4;
}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  const int rank = rt.rank();
  const int size = rt.size();
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);

  troupe::Condition cv(troupe::Scope::Ranks);  // collective; its own RLock

  // Rank 0's memory: [0] whose turn, [1] letters written, [2..] the letters (0, 1, 2).
  constexpr int kCells = 2 + 3 * kRounds;
  std::int64_t* base = nullptr;
  MPI_Win win;
  MPI_Win_allocate(rank == 0 ? kCells * sizeof(std::int64_t) : 0, sizeof(std::int64_t), MPI_INFO_NULL, comm, &base,
                   &win);
  if (rank == 0) {
    for (int i = 0; i < kCells; ++i) base[i] = 0;
  }
  MPI_Barrier(comm);
  MPI_Win_lock_all(0, win);
  auto get = [&](int i) {
    std::int64_t v = 0;
    MPI_Get(&v, 1, MPI_INT64_T, 0, i, 1, MPI_INT64_T, win);
    MPI_Win_flush(0, win);
    return v;
  };
  auto put = [&](int i, std::int64_t v) {
    MPI_Put(&v, 1, MPI_INT64_T, 0, i, 1, MPI_INT64_T, win);
    MPI_Win_flush(0, win);
  };

  std::vector<std::thread> parties;
  for (int p = 0; p < 3; ++p) {
    if (p % size != rank) continue;
    parties.emplace_back([&, p] {
      for (int round = 0; round < kRounds; ++round) {
        std::unique_lock guard(cv);
        if (!cv.wait_for([&] { return get(0) == p; }, 30s)) {
          check(false, "a party's turn came within 30 s");
          return;
        }
        const auto n = get(1);
        put(2 + static_cast<int>(n), p);
        put(1, n + 1);
        std::printf("rank %d: %c\n", rank, "ABC"[p]);
        std::fflush(stdout);
        put(0, (p + 1) % 3);
        cv.notify_all();
      }
    });
  }
  for (auto& t : parties) t.join();
  MPI_Barrier(comm);
  if (rank == 0) {
    std::string log;
    for (int i = 0; i < 3 * kRounds; ++i) log += "ABC"[get(2 + i)];
    std::printf("condition_abc on %d rank(s): %s\n", size, log.c_str());
    std::string want;
    for (int r = 0; r < kRounds; ++r) want += "ABC";
    check(get(1) == 3 * kRounds, "every party wrote every round");
    check(log == want, "the letters came in turn: ABC ABC ...");
  }
  MPI_Barrier(comm);
  MPI_Win_unlock_all(win);
  MPI_Win_free(&win);
  MPI_Comm_free(&comm);
  return failures == 0 ? 0 : 1;
}
