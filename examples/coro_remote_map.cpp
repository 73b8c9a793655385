// Coroutines: a remote map consumed by a coroutine. The root rank's task awaits
// Executor::map_async (the chunks run on every rank) while a sibling task awaits one
// remote call per rank (Executor::submit_to); neither holds a thread while it waits.
//
//   async def main(loop, ex):                           # the asyncio shape
//       squares, ranks = await asyncio.gather(
//           loop.run_in_executor(None, lambda: list(ex.map(square, range(20000)))),
//           asyncio.gather(*(loop.run_in_executor(ex, whoami) for r in ranks)))
//
//   mpirun -n 4 build/examples/example_coro_remote_map
#include <troupe/coro/coro.hpp>
#include <troupe/executor/executor.hpp>
#include <troupe/runtime/runtime.hpp>

#include <chrono>
#include <cstdio>
#include <numeric>
#include <set>
#include <vector>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {

long square(long x) { return x * x; }
int whoami(int /*unused*/) { return troupe::Runtime::current()->rank(); }

}  // namespace

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  troupe::Executor ex(rt);
  if (ex.is_root()) {
    constexpr long kItems = 20'000;
    troupe::ThreadPool pool(2);
    std::vector<long> items(kItems);  // 0 .. kItems-1 (std::views::iota: not with clang 14 + libstdc++ 12)
    std::iota(items.begin(), items.end(), 0L);
    auto squares = [&]() -> troupe::Task<std::vector<long>> {
      co_return co_await ex.map_async(troupe::remote<&square>, items, {.chunksize = 500, .timeout = 60s});
    };
    auto ranks = [&]() -> troupe::Task<std::vector<int>> {
      std::vector<troupe::Future<int>> calls;
      for (int r = 0; r < ex.size(); ++r) calls.push_back(ex.submit_to(r, troupe::remote<&whoami>, 0));
      std::vector<int> out;
      for (auto& f : calls) out.push_back(co_await f);
      co_return out;
    };
    auto both = [&]() -> troupe::Task<long> {
      auto [sq, who] = co_await troupe::gather(squares(), ranks());
      bool ok = sq.size() == static_cast<std::size_t>(kItems);
      for (long i = 0; ok && i < kItems; ++i) ok = sq[static_cast<std::size_t>(i)] == i * i;
      example::check(ok, "map_async: every square, in input order");
      for (int r = 0; r < ex.size(); ++r) {
        example::check(who[static_cast<std::size_t>(r)] == r, "submit_to(r) ran on rank r");
      }
      long sum = 0;
      for (long v : sq) sum += v;
      co_return sum;
    };
    const long sum = troupe::run(pool, both(), 120s);
    std::printf("coroutine consumed map(square, range(%ld)) over %d rank(s): sum %ld; one call per rank answered\n",
                kItems, ex.size(), sum);
    example::check(sum == (kItems - 1) * kItems * (2 * kItems - 1) / 6, "the sum of squares");
  }
  ex.shutdown();
  return example::failures == 0 ? 0 : 1;
}
