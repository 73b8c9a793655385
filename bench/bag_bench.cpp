// troupe::Bag under mpirun: an imbalanced workload balanced by the bag's stealing, against a
// static split of the same items and against the ideal (serial time / ranks), all measured
// in the same run. Printed by rank 0 as
//   RESULT name=<key> unit=<unit> value=<median> reps=<n> min=<..> max=<..> n=<items>
//
// The workload: kItems items; one in 16 (all of them among the first eighth of the indices)
// costs 2000 us, the others 20 us (a 100x spread; the heavy ones clustered, as the large
// subtrees of a search are). An item's cost is a busy-wait on the wall clock, so the figures
// measure how the work is spread, not how many cores the machine has (4 ranks on 2 cores
// still reach the ideal if the spread is right).
//   - serial: rank 0 runs every item (the "total work");
//   - static_block: rank r runs the contiguous block r of the items (no communication);
//   - static_cyclic: rank r runs items r, r+P, r+2P, ... (the best static split here);
//   - bag: rank 0 pushes every item into a troupe::Bag; every rank runs bag.run().
// The same comparison again with items that sleep (1000 items, 100 us or 10 ms: the RESULT
// names start with sleep_): latency-bound items, which 4 ranks on 2 cores can all run at once.
// Then the per-item overhead of the bag with empty items, one rank and across ranks.
// Run: mpirun -n 4 build/bench/troupe_bag_bench
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "troupe/across/bag.hpp"
#include "troupe/runtime/runtime.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using bench::seconds_since;
using bench::stat_of;

std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// The two workloads: busy-waits (CPU) or sleeps (latency-bound items: with 4 ranks on 2
// cores they measure only how the work is spread).
struct Workload {
  const char* prefix;
  std::int64_t items;
  std::chrono::microseconds light, heavy;
  bool sleep;
  std::chrono::microseconds cost(std::int64_t i) const {
    const bool is_heavy = i < items / 8 && mix(static_cast<std::uint64_t>(i)) % 2 == 0;
    return is_heavy ? heavy : light;
  }
  void work(std::int64_t i) const {
    if (sleep) {
      std::this_thread::sleep_for(cost(i));
      return;
    }
    const auto until = Clock::now() + cost(i);
    while (Clock::now() < until) {
    }
  }
};

// MPI_Barrier busy-polls: with 4 ranks on 2 cores, ranks that finished early would take the
// CPU from those still working.
using bench::quiet_barrier;

// The slowest rank's time for one phase (every rank's clock starts after a barrier).
double timed(MPI_Comm comm, auto&& phase) {
  quiet_barrier(comm);
  const auto t0 = Clock::now();
  phase();
  double mine = seconds_since(t0), slowest = 0;
  quiet_barrier(comm);
  MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm);
  return slowest;
}

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(argc, argv, ro);
  MPI_Comm comm = rt.comm();
  const int P = rt.size();
  const int r = rt.rank();
  const int reps = 3;
  auto compare = [&](const Workload& w) {
    const std::int64_t kItems = w.items;
    auto work = [&w](std::int64_t i) { w.work(i); };
    auto cost = [&w](std::int64_t i) { return w.cost(i); };
    const std::string pre = w.prefix;
    if (r == 0) {
      std::printf("# troupe Bag (%s): %d ranks, %lld items, cost %lld us or %lld us (1 in 16, clustered)\n",
                  w.sleep ? "sleep" : "busy-wait", P, static_cast<long long>(kItems),
                  static_cast<long long>(w.light.count()), static_cast<long long>(w.heavy.count()));
    }

    std::vector<double> serial, block, cyclic, bag, bag_ratio, block_ratio, cyclic_ratio, bag_nominal;
    double nominal = 0;  // the sum of the busy-waits: the work itself, without any overhead
    for (std::int64_t i = 0; i < kItems; ++i) nominal += std::chrono::duration<double>(cost(i)).count();
    std::uint64_t min_items_on_a_rank = kItems;
    for (int rep = 0; rep < reps; ++rep) {
      const double ts = timed(comm, [&] {
        if (r == 0) {
          for (std::int64_t i = 0; i < kItems; ++i) work(i);
        }
      });
      const double ideal = ts / P;
      const double tb = timed(comm, [&] {
        for (std::int64_t i = kItems * r / P; i < kItems * (r + 1) / P; ++i) work(i);
      });
      const double tc = timed(comm, [&] {
        for (std::int64_t i = r; i < kItems; i += P) work(i);
      });
      std::uint64_t here = 0;
      const double tg = timed(comm, [&] {
        troupe::Bag<std::int64_t> b(troupe::Scope::Ranks);
        if (r == 0) {
          for (std::int64_t i = 0; i < kItems; ++i) b.push(i);
        }
        here = b.run([&work](std::int64_t i) { work(i); }, 300s);
      });
      std::uint64_t least = 0;
      MPI_Allreduce(&here, &least, 1, MPI_UINT64_T, MPI_MIN, comm);
      min_items_on_a_rank = std::min(min_items_on_a_rank, least);
      serial.push_back(ts);
      block.push_back(tb);
      cyclic.push_back(tc);
      bag.push_back(tg);
      block_ratio.push_back(tb / ideal);
      cyclic_ratio.push_back(tc / ideal);
      bag_ratio.push_back(tg / ideal);
      bag_nominal.push_back(tg / (nominal / P));
    }
    if (r == 0) {
      bench::print_result_n((pre + "serial").c_str(), "s", serial, kItems);
      bench::print_result_n((pre + "static_block").c_str(), "s", block, kItems);
      bench::print_result_n((pre + "static_cyclic").c_str(), "s", cyclic, kItems);
      bench::print_result_n((pre + "bag").c_str(), "s", bag, kItems,
                            " min_items_on_a_rank=" + std::to_string(min_items_on_a_rank));
      bench::print_result_n((pre + "static_block_vs_ideal").c_str(), "ratio", block_ratio, kItems);
      bench::print_result_n((pre + "static_cyclic_vs_ideal").c_str(), "ratio", cyclic_ratio, kItems);
      bench::print_result_n((pre + "bag_vs_ideal").c_str(), "ratio", bag_ratio, kItems, " target=1.2");
      bench::print_result_n((pre + "bag_vs_nominal_ideal").c_str(), "ratio", bag_nominal, kItems,
                            " nominal_serial_s=" + std::to_string(nominal));
    }
  };
  compare(Workload{"", 2000, 20us, 2000us, false});
  compare(Workload{"sleep_", 1000, 100us, 10000us, true});

  // Per-item overhead with empty items: push all, then run a no-op (items on every rank).
  {
    constexpr std::int64_t n = 200000;
    const std::int64_t kItems = n;
    (void)kItems;
    std::vector<double> local_ns, ranks_ns;
    for (int rep = 0; rep < reps; ++rep) {
      if (r == 0) {
        troupe::Bag<std::int64_t> b(troupe::Scope::Threads);
        const auto t0 = Clock::now();
        for (std::int64_t i = 0; i < n; ++i) b.push(i);
        (void)b.run([](std::int64_t) {}, 300s);
        local_ns.push_back(seconds_since(t0) / n * 1e9);
      }
      const double t = timed(comm, [&] {
        troupe::Bag<std::int64_t> b(troupe::Scope::Ranks);
        for (std::int64_t i = 0; i < n / P; ++i) b.push(i);
        (void)b.run([](std::int64_t) {}, 300s);
      });
      ranks_ns.push_back(t / static_cast<double>(n / P) * 1e9);
    }
    if (r == 0) {
      bench::print_result_n("push_pop_scope_threads", "ns/item", local_ns, n);
      bench::print_result_n("push_pop_scope_ranks", "ns/item_per_rank", ranks_ns, n);
    }
  }
  return 0;
}
