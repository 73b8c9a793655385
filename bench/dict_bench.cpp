// troupe::Dict: updates per second over every rank, blocking update() (one call to the owner
// per update) against batched async_update() + flush() (YGM's model), on the same key space.
// Every rank updates keys spread over all owners ((P-1)/P of them remote); the figure of a rep
// is (updates of every rank) / (slowest rank's time), flush included. The sum of the values is
// checked against the number of updates after each figure. Rank 0 prints
//   RESULT name=<key> unit=updates/s value=<median> reps=<n> min=<..> max=<..> n=<per rank> ranks=<P>
//   RATIO name=dict.async_over_blocking value=<async / blocking> ranks=<P>
// Run: mpirun -n 2 build/bench/troupe_dict_bench [--reps 3]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "troupe/across/dict.hpp"
#include "troupe/runtime/runtime.hpp"

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

int g_rank = 0;
int g_size = 1;
MPI_Comm g_comm = MPI_COMM_NULL;
constexpr std::int64_t kKeys = 1 << 14;

std::int64_t key_of(long i) {
  // A scrambled walk over the key space, different per rank.
  return static_cast<std::int64_t>((static_cast<std::uint64_t>(i) * 2654435761u + static_cast<std::uint64_t>(g_rank)) %
                                   static_cast<std::uint64_t>(kKeys));
}

// Runs body(n) on every rank at once; returns updates/s of all ranks together per rep.
template <class Body>
std::vector<double> time_reps(int reps, long n, Body body) {
  auto v = bench::slowest_seconds(g_comm, reps, n, body);
  for (double& s : v) s = static_cast<double>(n) * g_size / s;
  return v;
}

double report(const char* name, const std::vector<double>& v, long n) {
  return bench::report(g_comm, name, "updates/s", v, n);
}

// Every value summed over every rank must equal the updates made.
bool check_sum(troupe::Dict<std::int64_t, long>& d, long expected) {
  long mine = 0;
  d.for_each([&](const std::int64_t&, long& v) { mine += v; });
  long all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_LONG, MPI_SUM, g_comm);
  if (all != expected && g_rank == 0) std::printf("CHECK FAILED: sum %ld, expected %ld\n", all, expected);
  return all == expected;
}

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(argc, argv, ro);
  const int reps = bench::reps_arg(argc, argv, 3);
  g_rank = rt.rank();
  g_size = rt.size();
  MPI_Comm_dup(rt.comm(), &g_comm);
  bool ok = true;
  long total = 0;  // updates made so far, over every rank

  troupe::Dict<std::int64_t, long> d(troupe::Scope::Ranks);
  const long nb = g_size == 1 ? 200'000 : 4'000;
  const double blocking = report("dict.update_blocking",
                                 time_reps(reps, nb,
                                           [&](long n) {
                                             for (long i = 0; i < n; ++i)
                                               d.update(key_of(i), [](long v) { return v + 1; });
                                           }),
                                 nb);
  total += nb * g_size * reps;
  ok = check_sum(d, total) && ok;

  const long na = 400'000;
  const double batched = report("dict.update_async_flush",
                                time_reps(reps, na,
                                          [&](long n) {
                                            for (long i = 0; i < n; ++i) {
                                              d.async_update(key_of(i), [](long v) { return v + 1; });
                                            }
                                            d.flush(120s);
                                          }),
                                na);
  total += na * g_size * reps;
  ok = check_sum(d, total) && ok;

  {
    troupe::Dict<std::int64_t, long> small(troupe::Scope::Ranks, troupe::DictOptions{.batch_bytes = 4096});
    report("dict.update_async_flush_4KiB_batches",
           time_reps(reps, na,
                     [&](long n) {
                       for (long i = 0; i < n; ++i) small.async_update(key_of(i), [](long v) { return v + 1; });
                       small.flush(120s);
                     }),
           na);
    ok = check_sum(small, na * g_size * reps) && ok;
  }
  {
    troupe::Dict<std::int64_t, long> ins(troupe::Scope::Ranks);
    report("dict.async_insert_flush",
           time_reps(reps, na,
                     [&](long n) {
                       for (long i = 0; i < n; ++i) ins.async_insert(key_of(i), 1);
                       ins.flush(120s);
                     }),
           na);
  }
  bench::ratio(g_comm, "dict.async_over_blocking", batched / blocking);
  d.flush(120s);
  MPI_Comm_free(&g_comm);
  return ok ? 0 : 1;
}
