// troupe::Bag — an irregular search over every rank, ended by the library: how many subsets
// of 26 weights add up to exactly a target? (A branch-and-bound tree: a branch whose sum is
// already over the target, or that cannot reach it any more, is cut.)
//
// Rank 0 pushes the root; each item (index, partial sum) pushes its two children (skip or
// take weight[index]) until the cut-off index, then counts its subtree serially. Subtrees
// differ wildly in size and all start on rank 0: idle ranks steal. Nobody counts items to
// know when to stop: bag.run() returns on every rank once no item is left anywhere. The
// count is then checked against the serial one.
//   mpirun -n 4 ./bag_search
#include <mpi.h>
#include <troupe/across/bag.hpp>
#include <troupe/runtime/runtime.hpp>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int kWeights = 26;
constexpr int kCutoff = 10;  // items above this index; serial counting below

struct Branch {
  std::int32_t index = 0;
  std::int64_t sum = 0;
};

struct Problem {
  std::vector<std::int64_t> w;      // the weights
  std::vector<std::int64_t> after;  // after[i] = w[i] + ... + w[n-1]
  std::int64_t target = 0;

  Problem() {
    std::uint64_t x = 12345;
    for (int i = 0; i < kWeights; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      w.push_back(static_cast<std::int64_t>(1 + (x >> 33) % 1000));
    }
    after.assign(w.size() + 1, 0);
    for (int i = kWeights - 1; i >= 0; --i) after[i] = after[i + 1] + w[i];
    target = after[0] / 3;
  }
  // A branch that can still reach the target exactly.
  bool alive(const Branch& b) const { return b.sum <= target && b.sum + after[b.index] >= target; }
  std::uint64_t count(Branch b) const {
    if (!alive(b)) return 0;
    if (b.index == kWeights) return b.sum == target ? 1 : 0;
    return count({b.index + 1, b.sum}) + count({b.index + 1, b.sum + w[b.index]});
  }
};

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(argc, argv, ro);
  const Problem p;

  troupe::Bag<Branch> bag(troupe::Scope::Ranks);  // collective: every rank builds it
  if (rt.rank() == 0) bag.push(Branch{});
  std::uint64_t found = 0;
  const std::uint64_t items = bag.run(
      [&](const Branch& b, troupe::Bag<Branch>& more) {
        if (!p.alive(b)) return;
        if (b.index < kCutoff) {
          more.push({b.index + 1, b.sum});                 // skip weight[index]
          more.push({b.index + 1, b.sum + p.w[b.index]});  // take it
        } else {
          found += p.count(b);
        }
      },
      120s);

  std::uint64_t total = 0;
  MPI_Allreduce(&found, &total, 1, MPI_UINT64_T, MPI_SUM, rt.comm());
  const auto st = bag.stats();
  std::printf("rank %d: %" PRIu64 " items processed here (%" PRIu64 " stolen in)\n", rt.rank(), items, st.received);
  if (rt.rank() == 0) {
    const std::uint64_t serial = p.count(Branch{});
    std::printf("subsets of %d weights adding up to %" PRId64 ": %" PRIu64 " (serial: %" PRIu64 ")\n", kWeights,
                p.target, total, serial);
    std::printf("items: %" PRIu64 " pushed, %" PRIu64 " processed over %d rank(s)\n", st.global_pushed,
                st.global_processed, rt.size());
    example::check(total == serial, "the bag's count equals the serial count");
    example::check(st.global_pushed == st.global_processed, "every pushed item was processed");
  }
  int failures = example::failures;
  MPI_Bcast(&failures, 1, MPI_INT, 0, rt.comm());
  return failures == 0 ? 0 : 1;
}
