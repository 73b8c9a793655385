// troupe_nqueens — counts the solutions of the N-queens puzzle with a troupe::Bag.
//
// An item is a board prefix: the queens of the first rows, as three bit masks (columns and
// the two diagonals under attack). Rank 0 pushes the empty board; a prefix shorter than the
// cut-off depth pushes one child per free column, a prefix at the cut-off is counted to the
// end serially. The subtrees differ in size by orders of magnitude, and all the work starts
// on rank 0: idle ranks steal it (troupe::Bag, docs/bag.md). Nobody counts items to know when
// to stop: bag.run() returns on every rank once the whole search has ended.
//
// The program also counts serially on rank 0 (same code, one thread), checks the two counts
// against each other and against the known ones, prints the speedup, and exits 1 when a
// count is wrong.
//
//   mpirun -n 4 build/apps/nqueens/troupe_nqueens [--n 12] [--depth D] [--threads T]
//                                                 [--timeout-s S] [--info]
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "troupe/across/bag.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/runtime.hpp"

namespace {

struct Args {
  int n = 12;
  int depth = -1;  // -1: min(n - 1, 4)
  int threads = 1;
  double timeout_s = 600;
  bool info = false;
};

long parse_long(const std::string& flag, const char* text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    throw troupe::ValueError("troupe_nqueens: " + flag + " needs an integer in [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + "], got '" + text + "'");
  }
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw troupe::ValueError("troupe_nqueens: " + flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--n") {
      a.n = static_cast<int>(parse_long(flag, value(), 1, 20));
    } else if (flag == "--depth") {
      a.depth = static_cast<int>(parse_long(flag, value(), 0, 20));
    } else if (flag == "--threads") {
      a.threads = static_cast<int>(parse_long(flag, value(), 1, 256));
    } else if (flag == "--timeout-s") {
      a.timeout_s = static_cast<double>(parse_long(flag, value(), 1, 86'400));
    } else if (flag == "--info") {
      a.info = true;
    } else if (flag == "--help" || flag == "-h") {
      std::printf("usage: troupe_nqueens [--n N (1..20)] [--depth D] [--threads T] [--timeout-s S] [--info]\n");
      std::exit(0);
    } else {
      throw troupe::ValueError("troupe_nqueens: unknown argument '" + flag + "' (try --help)");
    }
  }
  if (a.depth < 0) a.depth = std::min(a.n - 1, 4);
  if (a.depth > a.n) throw troupe::ValueError("troupe_nqueens: --depth must be <= --n");
  return a;
}

// A board prefix: `row` queens placed; the masks hold the attacked columns of the next row.
struct Prefix {
  std::int32_t row = 0;
  std::uint32_t cols = 0, left = 0, right = 0;
};

// Solutions below a prefix (the classic bit-mask search).
std::uint64_t count_from(std::uint32_t all, std::uint32_t cols, std::uint32_t left, std::uint32_t right) {
  if (cols == all) return 1;
  std::uint64_t total = 0;
  std::uint32_t free = all & ~(cols | left | right);
  while (free != 0) {
    const std::uint32_t bit = free & (0u - free);
    free ^= bit;
    total += count_from(all, cols | bit, ((left | bit) << 1) & all, (right | bit) >> 1);
  }
  return total;
}

// The known counts (OEIS A000170), N = 0..20.
constexpr std::uint64_t kKnown[] = {1,      1,       0,        0,        2,         10,         4,
                                    40,     92,      352,      724,      2680,      14200,      73712,
                                    365596, 2279184, 14772512, 95815104, 666090624, 4968057848, 39029188884};

}  // namespace

int run(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  const Args a = parse(argc, argv);
  const std::uint32_t all = (a.n >= 32) ? ~0u : ((1u << a.n) - 1u);

  // The serial count, on rank 0 alone.
  std::uint64_t serial = 0;
  double t_serial = 0;
  if (rt.rank() == 0) {
    const double t0 = MPI_Wtime();
    serial = count_from(all, 0, 0, 0);
    t_serial = MPI_Wtime() - t0;
  }

  // The same count with a Bag over every rank (and --threads consumers per rank).
  const troupe::Scope scope = a.threads > 1 ? troupe::Scope::RanksAndThreads : troupe::Scope::Ranks;
  troupe::Bag<Prefix> bag(scope, a.threads);
  std::atomic<std::uint64_t> found{0};
  MPI_Barrier(rt.comm());
  const double t0 = MPI_Wtime();
  if (rt.rank() == 0) bag.push(Prefix{});
  const std::uint64_t items_here = bag.run(
      [&](const Prefix& p, troupe::Bag<Prefix>& b) {
        if (p.row < a.depth && p.cols != all) {
          std::uint32_t free = all & ~(p.cols | p.left | p.right);
          while (free != 0) {
            const std::uint32_t bit = free & (0u - free);
            free ^= bit;
            b.push(Prefix{p.row + 1, p.cols | bit, ((p.left | bit) << 1) & all, (p.right | bit) >> 1});
          }
        } else {
          found.fetch_add(count_from(all, p.cols, p.left, p.right), std::memory_order_relaxed);
        }
      },
      std::chrono::duration<double>(a.timeout_s));
  const std::uint64_t mine = found.load();
  std::uint64_t total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, rt.comm());
  const double t_bag = MPI_Wtime() - t0;

  const auto st = bag.stats();
  if (a.info) {
    std::vector<std::uint64_t> row = {items_here, st.received, st.given, st.steal_requests, mine};
    std::vector<std::uint64_t> rows(row.size() * static_cast<std::size_t>(rt.size()));
    MPI_Gather(row.data(), static_cast<int>(row.size()), MPI_UINT64_T, rows.data(), static_cast<int>(row.size()),
               MPI_UINT64_T, 0, rt.comm());
    if (rt.rank() == 0) {
      for (int r = 0; r < rt.size(); ++r) {
        const auto* x = &rows[static_cast<std::size_t>(r) * row.size()];
        std::printf("[rank %d/%d] items %" PRIu64 ", stolen in %" PRIu64 ", given %" PRIu64 ", steal requests %" PRIu64
                    ", solutions %" PRIu64 "\n",
                    r, rt.size(), x[0], x[1], x[2], x[3], x[4]);
      }
    }
  }

  bool ok = true;
  if (rt.rank() == 0) {
    const std::uint64_t known = kKnown[a.n];
    ok = total == serial && serial == known && st.global_pushed == st.global_processed;
    std::printf("troupe_nqueens: N=%d, cut-off depth %d, %d rank(s) x %d consumer(s)\n", a.n, a.depth, rt.size(),
                a.threads);
    std::printf("solutions = %" PRIu64 " (serial %" PRIu64 ", known %" PRIu64 ")\n", total, serial, known);
    std::printf("items     = %" PRIu64 " pushed, %" PRIu64 " processed, %" PRIu64 " termination waves\n",
                st.global_pushed, st.global_processed, st.waves);
    std::printf("time      = serial %.3f s, bag %.3f s, speedup %.2fx\n", t_serial, t_bag,
                t_bag > 0 ? t_serial / t_bag : 0.0);
    if (!ok) std::printf("troupe_nqueens: FAILED: the counts disagree\n");
    std::fflush(stdout);
  }
  int ok_int = ok ? 1 : 0;
  MPI_Bcast(&ok_int, 1, MPI_INT, 0, rt.comm());
  return ok_int != 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    troupe::log(std::string("troupe_nqueens: ") + e.what());
    return 2;
  }
}
