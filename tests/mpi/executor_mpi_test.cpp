// The distributed executor at 1, 2 and 4 ranks: results, errors, cancellation, nesting,
// accounting, the Pool face and map_reduce. Every test builds an Executor on every rank
// (collective) and leaves through its collective shutdown.
#include "troupe/executor/executor.hpp"
#include "troupe/executor/detail/testing.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "troupe/runtime/runtime.hpp"
#include "troupe/sync/event.hpp"

#include "mpi_test_util.hpp"
#include "test_views.hpp"

using namespace std::chrono_literals;
using troupe::Executor;
using troupe::Future;
using troupe_test::quiet;
using troupe_test::world_rank;
using troupe_test::world_size;

namespace {

struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Unregistered : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int square(int x) { return x * x; }

long fib(int n) {
  if (n < 12) {
    long x = 0, y = 1;
    for (int i = 0; i < n; ++i) {
      const long t = x + y;
      x = y;
      y = t;
    }
    return x;
  }
  auto& ex = troupe::this_executor();
  auto left = ex.submit([](int k) { return fib(k); }, n - 1);
  auto right = ex.submit([](int k) { return fib(k); }, n - 2);
  return left.result(60s) + right.result(60s);
}

}  // namespace

TROUPE_REGISTER_EXCEPTION(ParseError);

TEST(Executor, SubmitRunsEverywhereAndReturnsValues) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  EXPECT_EQ(ex.size(), world_size());
  if (ex.is_root()) {
    std::vector<Future<std::pair<int, int>>> fs;
    for (int i = 0; i < 400; ++i) {
      fs.push_back(ex.submit(
          [](int x) {
            std::this_thread::sleep_for(100us);
            return std::pair<int, int>{troupe::this_executor().rank(), x * x};
          },
          i));
    }
    std::set<int> ranks;
    for (int i = 0; i < 400; ++i) {
      auto [r, v] = fs[static_cast<std::size_t>(i)].result(60s);
      EXPECT_EQ(v, i * i);
      ranks.insert(r);
    }
    EXPECT_EQ(static_cast<int>(ranks.size()), ex.size()) << "every rank ran some of the tasks";
    EXPECT_EQ(ex.submit(troupe::remote<&square>, 12).result(60s), 144);
  }
  ex.shutdown();
}

TEST(Executor, OrderedMapOfHundredThousandEqualsSerial) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    std::vector<long> in(100000);
    std::iota(in.begin(), in.end(), 0L);
    auto out = ex.map([](long x) { return 3 * x + 1; }, in).to_vector();
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], 3 * in[i] + 1);
    auto chunked = ex.map([](long x) { return x % 7; }, in, {.chunksize = 333}).to_vector();
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(chunked[i], in[i] % 7);
    auto unordered = ex.map_unordered([](long x) { return x * 2; }, in, {.chunksize = 1000}).to_vector();
    std::sort(unordered.begin(), unordered.end());
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(unordered[i], 2 * in[i]);
    auto star =
        ex.starmap([](int a, int b) { return a * b; }, std::vector<std::tuple<int, int>>{{2, 3}, {4, 5}}).to_vector();
    EXPECT_EQ(star, (std::vector<int>{6, 20}));
  }
  ex.shutdown();
}

TEST(Executor, RemoteExceptionsKeepTypeAndRank) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    const int last = ex.size() - 1;
    // Run on every rank: one task per worker thread, each throws.
    std::vector<Future<int>> fs;
    for (std::size_t i = 0; i < ex.workers() * 4; ++i) {
      fs.push_back(ex.submit([](int) -> int { throw std::invalid_argument("bad input 7"); }, 0));
    }
    std::set<std::string> where;
    for (auto& f : fs) {
      try {
        (void)f.result(60s);
        ADD_FAILURE() << "no exception";
      } catch (const std::invalid_argument& e) {
        const std::string w = e.what();
        EXPECT_NE(w.find("bad input 7"), std::string::npos) << w;
        // Every task's exception says where it ran, this rank's too (one rule).
        ASSERT_NE(w.find("[rank "), std::string::npos) << w;
        where.insert(w.substr(0, w.find('/')));
      }
    }
    if (ex.size() > 1) {
      EXPECT_GT(where.size(), 1u) << "every exception came from one rank";
    }
    (void)last;
    auto user = ex.submit([](int) -> int { throw ParseError("line 3"); }, 0);
    EXPECT_THROW((void)user.result(60s), ParseError);
  }
  ex.shutdown();
}

// One exception rule wherever a task ran (issue 7): an unregistered type is a RemoteError
// on every rank, the submitting one included, through submit, submit_to and map; a std::
// type arrives as itself and names the rank that ran it.
TEST(Executor, SameExceptionWhereverTheTaskRan) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    for (int r = 0; r < ex.size(); ++r) {
      auto other = ex.submit_to(
          r, [](int) -> int { throw Unregistered("mystery"); }, 0);
      try {
        (void)other.result(60s);
        ADD_FAILURE() << "no exception";
      } catch (const troupe::RemoteError& e) {
        EXPECT_NE(e.type_name().find("Unregistered"), std::string::npos) << e.type_name();
        EXPECT_EQ(e.message(), "mystery");
        EXPECT_EQ(e.rank(), r);
      } catch (...) {
        ADD_FAILURE() << "an unregistered exception from rank " << r << " did not arrive as RemoteError";
      }
      auto std_type = ex.submit_to(
          r, [](int) -> int { throw std::out_of_range("index 9"); }, 0);
      try {
        (void)std_type.result(60s);
        ADD_FAILURE() << "no exception";
      } catch (const std::out_of_range& e) {
        EXPECT_NE(std::string(e.what()).find("[rank " + std::to_string(r) + "/"), std::string::npos) << e.what();
      }
    }
    // A map whose chunks land on every rank (chunksize 1): each element's exception is the
    // same RemoteError, whichever rank ran its chunk.
    for (std::size_t i = 0; i < 4 * ex.workers(); ++i) {
      std::vector<int> in(4 * ex.workers(), 0);
      in[i] = 1;
      auto m = ex.map(
          [](int x) {
            if (x) throw Unregistered("element");
            return x;
          },
          in, troupe::MapOptions{.chunksize = 1});
      EXPECT_THROW((void)m.to_vector(), troupe::RemoteError) << "element " << i;
    }
  }
  ex.shutdown();
}

int never_registered(int x) { return x + 1; }

// The debug switch: with wire_local every task goes through the wire format even when it
// runs here, so what can only run locally (a function pointer nobody registered) fails at
// one rank as it would on another.
TEST(Executor, WireLocalSendsEveryTaskThroughTheWire) {
  troupe::Runtime rt(quiet());
  troupe::ExecutorOptions opts;
  opts.wire_local = true;
  Executor ex(rt, opts);
  if (ex.is_root()) {
    auto ok = ex.submit_to(
        ex.rank(), [](int x) { return std::string(static_cast<std::size_t>(x), 'z'); }, 3);
    EXPECT_EQ(ok.result(60s), "zzz");
    auto v = ex.map([](int x) { return x * 3; }, std::vector<int>{1, 2, 3}).to_vector();
    EXPECT_EQ(v, (std::vector<int>{3, 6, 9}));
    auto bad = ex.submit_to(
        ex.rank(), [](int) -> int { throw Unregistered("wired"); }, 0);
    EXPECT_THROW((void)bad.result(60s), troupe::RemoteError);
    auto fp = ex.submit_to(ex.rank(), &never_registered, 1);
    try {
      (void)fp.result(60s);
      ADD_FAILURE() << "an unregistered function pointer ran although every task goes through the wire";
    } catch (const troupe::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("not registered"), std::string::npos) << e.what();
    }
  }
  ex.shutdown();
  EXPECT_EQ(ex.stats().submitted, ex.stats().completed);
}

TEST(Executor, CancelReachesQueuedTasksAndTimeoutsWork) {
  troupe::Runtime rt(quiet());
  troupe::ExecutorOptions opts;
  opts.credits_per_thread = 1;  // a small window: most tasks stay queued and cancellable
  Executor ex(rt, opts);
  if (ex.is_root()) {
    std::vector<Future<int>> blockers;
    for (std::size_t i = 0; i < ex.workers(); ++i) {
      blockers.push_back(ex.submit(
          [](int) {
            std::this_thread::sleep_for(300ms);
            return 1;
          },
          0));
    }
    std::vector<Future<int>> queued;
    for (int i = 0; i < 50; ++i) queued.push_back(ex.submit([](int x) { return x; }, i));
    int cancelled = 0;
    for (auto& q : queued) cancelled += q.cancel() ? 1 : 0;
    EXPECT_EQ(cancelled, 50) << "every task beyond the credit window was still queued";
    for (auto& q : queued) EXPECT_THROW((void)q.result(60s), troupe::CancelledError);
    EXPECT_THROW((void)blockers[0].result(1ms), troupe::TimeoutError);
    // result(timeout) on a slow task that runs on another rank (the last one).
    auto slow = ex.submit_to(
        ex.size() - 1,
        [](int) {
          std::this_thread::sleep_for(200ms);  // the work itself, not synchronization
          return 7;
        },
        0);
    EXPECT_THROW((void)slow.result(1ms), troupe::TimeoutError);
    EXPECT_EQ(slow.result(60s), 7) << "a timed-out wait leaves the task running";
    for (auto& b : blockers) EXPECT_EQ(b.result(60s), 1);
    EXPECT_FALSE(blockers[0].cancel()) << "a finished task cannot be cancelled";
  }
  ex.shutdown();
}

TEST(Executor, NestedTasksSpreadOverRanks) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    auto f = ex.submit([](int n) { return fib(n); }, 22);
    EXPECT_EQ(f.result(120s), 17711);
  }
  ex.shutdown();
  const auto st = ex.stats();
  long long served = static_cast<long long>(st.served_remote), all = 0;
  MPI_Allreduce(&served, &all, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (world_size() > 1) {
    EXPECT_GT(all, 0) << "some nested tasks ran on another rank";
  }
}

TEST(Executor, HundredThousandTasksOnePercentThrowEachEndExactlyOnce) {
  troupe::Runtime rt(quiet());
  constexpr int kTasks = 100000;
  // Declared before the executor so that they outlive every thread that completes a future
  // (a done-callback runs on the completing thread, possibly after the last result()).
  std::atomic<int> callbacks{0};
  troupe::Event all_called;
  Executor ex(rt);
  if (ex.is_root()) {
    std::vector<Future<int>> fs;
    fs.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      fs.push_back(ex.submit(
          [](int x) {
            if (x % 100 == 0) throw std::range_error("task " + std::to_string(x));
            return x;
          },
          i));
    }
    for (auto& f : fs) {
      f.add_done_callback([&] {
        if (callbacks.fetch_add(1, std::memory_order_acq_rel) + 1 == kTasks) all_called.set();
      });
    }
    int ok = 0, failed = 0, other = 0;
    for (int i = 0; i < kTasks; ++i) {
      try {
        EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(120s), i);
        ++ok;
      } catch (const std::range_error&) {
        ++failed;
      } catch (...) {
        ++other;
      }
    }
    EXPECT_EQ(ok, kTasks - kTasks / 100);
    EXPECT_EQ(failed, kTasks / 100);
    EXPECT_EQ(other, 0);
    // result() may return before the completing thread ran the callbacks: wait for the last.
    EXPECT_TRUE(all_called.wait(120s)) << callbacks.load() << " of " << kTasks << " callbacks ran";
  }
  ex.shutdown();
  const auto st = ex.stats();
  EXPECT_EQ(st.submitted, st.completed);
  // After shutdown every thread that could complete a future has stopped: a second call
  // of any callback would show here.
  if (ex.is_root()) {
    EXPECT_EQ(callbacks.load(), kTasks) << "every future completed exactly once";
  }
}

TEST(Executor, PoolFaceApplyAsyncImapInitializerTerminate) {
  troupe::Runtime rt(quiet());
  static std::atomic<int> inits{0};
  inits = 0;
  troupe::ExecutorOptions opts;
  opts.initializer = [] { inits.fetch_add(1); };
  // Declared before the executor: the callbacks run on its threads and may outlive result().
  std::atomic<int> got{0};
  std::atomic<int> errors{0};
  std::atomic<int> called{0};
  troupe::Event both_called;
  Executor ex(rt, opts);
  if (ex.is_root()) {
    EXPECT_EQ(ex.apply([](int a) { return a + 1; }, 41), 42);
    auto f = ex.apply_async([](int a) { return a * 2; }, std::tuple{21},
                            [&](int v) {
                              got = v;
                              if (called.fetch_add(1) + 1 == 2) both_called.set();
                            });
    auto g = ex.apply_async([](int) -> int { throw std::logic_error("no"); }, std::tuple{0}, nullptr,
                            [&](std::exception_ptr) {
                              errors.fetch_add(1);
                              if (called.fetch_add(1) + 1 == 2) both_called.set();
                            });
    // Callbacks run just after the future turns done: wait for them, not for the future.
    ASSERT_TRUE(both_called.wait(60s)) << "a callback of apply_async never ran";
    EXPECT_TRUE(f.done() && g.done());
    EXPECT_EQ(got.load(), 42);
    EXPECT_EQ(errors.load(), 1);
    int n = 0;
    for (int v : ex.imap_unordered([](int x) { return x; }, std::vector<int>(1000, 1), {.chunksize = 10})) n += v;
    EXPECT_EQ(n, 1000);
    auto all = ex.map_async([](int x) { return x + 1; }, std::vector<int>{1, 2, 3});
    EXPECT_EQ(all.result(60s), (std::vector<int>{2, 3, 4}));
    for (int i = 0; i < 100; ++i) (void)ex.submit([](int) { std::this_thread::sleep_for(1ms); }, i);
  }
  ex.terminate();  // cancels what was not dispatched; returns
  long long mine = inits.load(), total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, static_cast<long long>(ex.workers())) << "the initializer ran once per worker thread of every rank";
}

TEST(Executor, MapReduceScoopShapeAndEdgeCases) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    // SCOOP's example: sum over [[a]*a for a in range(1000)] = sum(a*a).
    std::vector<int> in(1000);
    std::iota(in.begin(), in.end(), 0);
    const long total = ex.map_reduce([](int a) { return long(a) * a; }, [](long x, long y) { return x + y; }, in);
    EXPECT_EQ(total, 332833500L);
    // Order is kept: string concatenation is associative, not commutative.
    std::vector<int> letters(26);
    std::iota(letters.begin(), letters.end(), 0);
    auto s = ex.map_reduce([](int i) { return std::string(1, char('a' + i)); },
                           [](std::string a, const std::string& b) { return a + b; }, letters, {.chunksize = 3});
    EXPECT_EQ(s, "abcdefghijklmnopqrstuvwxyz");
    EXPECT_EQ(ex.map_reduce([](int a) { return a; }, [](int a, int b) { return a + b; }, std::vector<int>{5}), 5);
    EXPECT_EQ(
        ex.map_reduce([](int a) { return a; }, [](int a, int b) { return a + b; }, std::vector<int>{}, {.initial = 7}),
        7);
    EXPECT_THROW(ex.map_reduce([](int a) { return a; }, [](int a, int b) { return a + b; }, std::vector<int>{}),
                 troupe::ValueError);
    EXPECT_THROW((void)ex.map([](int a) { return a; }, std::vector<int>{1}, {.chunksize = 0}), troupe::ValueError);
  }
  // SPMD: every rank contributes its own block; everyone gets the same answer.
  std::vector<int> mine(100);
  std::iota(mine.begin(), mine.end(), 100 * ex.rank());
  const long all = ex.map_reduce_all([](int x) { return long(x); }, [](long a, long b) { return a + b; }, mine);
  const long n = 100L * ex.size();
  EXPECT_EQ(all, n * (n - 1) / 2);
  ex.shutdown();
}

TEST(Executor, SerializableTypesRoundTripThroughRemoteCalls) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    using Big = std::tuple<std::string, std::vector<double>, std::map<std::string, int>, std::optional<int>,
                           std::variant<int, std::string>, std::array<char, 3>>;
    Big in{"héllo\0x", {1.5, -2.0}, {{"a", 1}, {"b", 2}}, 9, std::string("v"), {'x', 'y', 'z'}};
    for (std::size_t i = 0; i < ex.workers() * 2; ++i) {
      auto back = ex.submit([](Big b) { return b; }, in).result(60s);
      EXPECT_EQ(back, in);
    }
  }
  ex.shutdown();
}

TEST(Executor, UseAfterShutdownAndBrokenRank) {
  troupe::Runtime rt(quiet());
  {
    Executor ex(rt);
    ex.shutdown();
    try {
      (void)ex.submit([](int x) { return x; }, 1);
      ADD_FAILURE();
    } catch (const troupe::InvalidStateError& e) {
      EXPECT_NE(std::string(e.what()).find("after shutdown"), std::string::npos);
    }
    // Every scheduling call names itself, not the submit it is built on (issue 7).
    auto error_of = [](auto&& call) -> std::string {
      try {
        call();
      } catch (const troupe::InvalidStateError& e) {
        return e.what();
      }
      return "no InvalidStateError";
    };
    const std::vector<int> in{1, 2, 3};
    auto twice = [](int x) { return 2 * x; };
    auto plus = [](int a, int b) { return a + b; };
    EXPECT_EQ(error_of([&] { (void)ex.map_reduce(twice, plus, in); }),
              "Executor::map_reduce: cannot schedule new tasks after shutdown");
    EXPECT_EQ(error_of([&] { (void)ex.map_scan(twice, plus, in); }),
              "Executor::map_scan: cannot schedule new tasks after shutdown");
    EXPECT_EQ(error_of([&] { (void)ex.map(twice, in); }), "Executor::map: cannot schedule new tasks after shutdown");
    EXPECT_EQ(error_of([&] { (void)ex.map_reduce_all(twice, plus, in); }),
              "Executor::map_reduce_all: cannot run after shutdown");
  }
  if (world_size() > 1) {
    Executor ex(rt);
    if (ex.is_root()) {
      troupe::detail::ExecutorTesting::break_rank(ex, 1);
      EXPECT_THROW((void)ex.submit([](int x) { return x; }, 1), troupe::BrokenExecutor);
    }
    ex.shutdown();
  }
}

TEST(Executor, BufferedMapConsumesEndlessInputLazily) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    // An endless input: only buffersize chunks are ever in flight.
    auto squares = ex.imap([](long x) { return x * x; }, troupe_test::iota(0L), {.chunksize = 10, .buffersize = 4});
    long i = 0;
    for (long v : squares) {
      ASSERT_EQ(v, i * i);
      if (++i == 5000) break;
    }
    auto st = ex.stats();
    EXPECT_LE(st.submitted, 5000u / 10 + 4 + 1) << "the input was not read ahead of the buffer";
    EXPECT_THROW((void)ex.map([](int x) { return x; }, std::vector<int>{1}, {.buffersize = 0}), troupe::ValueError);
    // Unordered with a buffer, over a sized input.
    auto u =
        ex.imap_unordered([](int x) { return x + 1; }, std::vector<int>(1000, 1), {.chunksize = 7, .buffersize = 3})
            .to_vector();
    EXPECT_EQ(u.size(), 1000u);
    EXPECT_EQ(std::count(u.begin(), u.end(), 2), 1000);
  }
  ex.shutdown();
}

TEST(Executor, MapExceptionSurfacesAtItsElementAndTimeout) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    std::vector<int> in(10);
    std::iota(in.begin(), in.end(), 0);
    for (std::size_t chunk : {1u, 3u, 10u}) {
      auto r = ex.map(
          [](int x) {
            if (x == 2) throw std::out_of_range("element 2");
            return x;
          },
          in, {.chunksize = chunk});
      EXPECT_EQ(r.next(), 0);
      EXPECT_EQ(r.next(), 1);
      EXPECT_THROW((void)r.next(), std::out_of_range) << "chunksize " << chunk;
      EXPECT_EQ(r.next(), std::nullopt);
    }
    auto slow = ex.map(
        [](int x) {
          std::this_thread::sleep_for(200ms);
          return x;
        },
        std::vector<int>{1}, {.timeout = 10ms});
    EXPECT_THROW((void)slow.next(), troupe::TimeoutError);
  }
  ex.shutdown();
}

TEST(Executor, SubmitToAndUnknownCallableIdentity) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    for (int r = 0; r < ex.size(); ++r) {
      EXPECT_EQ(ex.submit_to(
                      r, [](int) { return troupe::this_executor().rank(); }, 0)
                    .result(60s),
                r);
    }
    EXPECT_THROW((void)ex.submit_to(
                     ex.size(), [](int x) { return x; }, 0),
                 troupe::ValueError);
    // A call naming a callable id that no rank has: the receiving rank reports it, the
    // future fails with a clear message, nothing is executed.
    const int target = ex.size() - 1;
    troupe::wire::Writer w;
    w.write(std::uint32_t{0xFFFFFFF0u});
    auto bad = troupe::detail::ExecutorTesting::submit_raw(ex, target, w.take());
    try {
      (void)bad.result(60s);
      ADD_FAILURE() << "an unknown callable id was accepted";
    } catch (const std::exception& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("unknown callable id"), std::string::npos) << what;
    }
    // Truncated call bytes: a decode error, also reported, not a crash.
    troupe::wire::Writer t;
    t.write(std::uint32_t{0});
    auto cut = troupe::detail::ExecutorTesting::submit_raw(ex, target, t.take());
    EXPECT_ANY_THROW((void)cut.result(60s));
  }
  ex.shutdown();
}

TEST(Executor, WithoutProgressThreadTheMainThreadsDriveMpi) {
  // MPI_THREAD_FUNNELED style: no progress thread; each rank's main thread makes the MPI
  // calls while it waits (for results, in shutdown, in collectives).
  troupe::Runtime rt(quiet());
  troupe::ExecutorOptions opts;
  opts.progress_thread = false;
  Executor ex(rt, opts);
  if (ex.is_root()) {
    std::vector<Future<int>> fs;
    for (int i = 0; i < 200; ++i)
      fs.push_back(ex.submit_to(
          i % ex.size(), [](int x) { return x + 1; }, i));
    for (int i = 0; i < 200; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(60s), i + 1);
  }
  std::vector<int> mine{ex.rank()};
  EXPECT_EQ(ex.map_reduce_all([](int x) { return x; }, [](int a, int b) { return a + b; }, mine),
            ex.size() * (ex.size() - 1) / 2);
  ex.shutdown();
}

TEST(Executor, AsyncMpiTurnsAUserRequestIntoAFuture) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  MPI_Comm user;
  MPI_Comm_dup(MPI_COMM_WORLD, &user);
  const int right = (ex.rank() + 1) % ex.size(), left = (ex.rank() + ex.size() - 1) % ex.size();
  int got = -1;
  MPI_Request req;
  MPI_Irecv(&got, 1, MPI_INT, left, 5, user, &req);
  auto f = ex.async_mpi(req);
  const int mine = 1000 + ex.rank();
  MPI_Send(&mine, 1, MPI_INT, right, 5, user);
  const MPI_Status st = f.result(60s);
  EXPECT_EQ(st.MPI_SOURCE, left);
  EXPECT_EQ(got, 1000 + left);
  EXPECT_THROW((void)ex.async_mpi(MPI_REQUEST_NULL), troupe::ValueError);
  MPI_Comm_free(&user);
  ex.shutdown();
}

TEST(Executor, MapReduceAllKeepsRankOrderAcrossTheTree) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  // Rank r contributes the letters of its block; odd ranks contribute nothing.
  std::vector<int> mine;
  if (ex.rank() % 2 == 0) {
    for (int i = 0; i < 3; ++i) mine.push_back(3 * ex.rank() + i);
  }
  const auto s = ex.map_reduce_all([](int i) { return std::string(1, char('a' + i % 26)); },
                                   [](std::string a, const std::string& b) { return a + b; }, mine, std::string(">"));
  std::string expect = ">";
  for (int r = 0; r < ex.size(); r += 2) {
    for (int i = 0; i < 3; ++i) expect += char('a' + (3 * r + i) % 26);
  }
  EXPECT_EQ(s, expect);
  std::vector<int> none;
  EXPECT_THROW((void)ex.map_reduce_all([](int i) { return i; }, [](int a, int b) { return a + b; }, none),
               troupe::ValueError);
  ex.shutdown();
}

TEST(Executor, MapScanIsCorrectForEveryLength) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    for (int n : {0, 1, 2, 3, 7, 100, 1001}) {
      std::vector<int> in(static_cast<std::size_t>(n));
      std::iota(in.begin(), in.end(), 1);
      for (std::size_t chunk : {1u, 4u, 64u}) {
        auto out = ex.map_scan([](int x) { return long(x) * x; }, [](long a, long b) { return a + b; }, in,
                               {.chunksize = chunk});
        ASSERT_EQ(out.size(), in.size());
        long acc = 0;
        for (int i = 0; i < n; ++i) {
          acc += long(in[static_cast<std::size_t>(i)]) * in[static_cast<std::size_t>(i)];
          ASSERT_EQ(out[static_cast<std::size_t>(i)], acc) << "n=" << n << " chunk=" << chunk << " i=" << i;
        }
      }
    }
    // Not commutative: prefixes of a concatenation.
    auto words = ex.map_scan([](int i) { return std::string(1, char('a' + i)); },
                             [](const std::string& a, const std::string& b) { return a + b; },
                             std::vector<int>{0, 1, 2, 3}, {.chunksize = 3});
    EXPECT_EQ(words, (std::vector<std::string>{"a", "ab", "abc", "abcd"}));
  }
  ex.shutdown();
}

TEST(Executor, TerminateReachesTasksQueuedOnOtherRanks) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  std::vector<Future<int>> queued;
  if (ex.is_root() && ex.size() > 1) {
    // Keep every worker of every other rank busy, then queue more tasks there.
    for (int r = 1; r < ex.size(); ++r) {
      for (int k = 0; k < 2; ++k) {
        (void)ex.submit_to(
            r,
            [](int) {
              std::this_thread::sleep_for(300ms);
              return 0;
            },
            0);
      }
      for (int i = 0; i < 50; ++i)
        queued.push_back(ex.submit_to(
            r, [](int x) { return x; }, i));
    }
  }
  ex.terminate();  // collective; cancels what no rank has started
  int cancelled = 0, ran = 0;
  for (auto& f : queued) {
    ASSERT_TRUE(f.done()) << "terminate returned with a task unaccounted for";
    try {
      (void)f.result();
      ++ran;
    } catch (const troupe::CancelledError&) {
      ++cancelled;
    }
  }
  if (ex.is_root() && ex.size() > 1) {
    EXPECT_GT(cancelled, 0) << "tasks queued on other ranks were cancelled";
    EXPECT_EQ(cancelled + ran, static_cast<int>(queued.size()));
  }
  const auto st = ex.stats();
  EXPECT_EQ(st.submitted, st.completed);
}

namespace {
// Waits (bounded) until this rank's executor has seen a protocol fault; returns whether it did.
bool saw_fault(Executor& ex) {
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (troupe::detail::ExecutorTesting::messenger(ex).stats().bad_records == 0) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

// Injects @p record of kind @p kind from the root into rank 1 while a task placed there is
// pending; that task's future must end with BrokenExecutor naming the cause, later submits
// must raise, and shutdown must still end on every rank.
void inject_and_expect_broken(std::uint16_t kind, std::vector<std::byte> record, const std::string& cause) {
  troupe::Runtime rt(quiet());
  Executor ex(rt);
  if (ex.is_root()) {
    // The task can only end once rank 1 has seen the fault (so it is pending when the fault
    // happens, and its result travels behind rank 1's error notice).
    auto pending = ex.submit_to(
        1, [](int) { return saw_fault(troupe::this_executor()) ? 1 : 0; }, 0);
    troupe::detail::ExecutorTesting::messenger(ex).send_raw(1, kind, record);
    try {
      (void)pending.result(60s);
      ADD_FAILURE() << "the task on the rank that found the fault completed normally";
    } catch (const troupe::BrokenExecutor& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("rank 1"), std::string::npos) << what;
      EXPECT_NE(what.find(cause), std::string::npos) << what;
    }
    try {
      (void)ex.submit([](int x) { return x; }, 1);
      ADD_FAILURE() << "a broken executor accepted a task";
    } catch (const troupe::BrokenExecutor& e) {
      EXPECT_NE(std::string(e.what()).find(cause), std::string::npos) << e.what();
    }
  }
  ex.shutdown();
  EXPECT_EQ(ex.stats().bad_records, ex.rank() == 1 ? 1u : 0u);
}
}  // namespace

TEST(Executor, MalformedTaskRecordBreaksTheExecutorWithoutAHang) {
  if (world_size() < 2) GTEST_SKIP() << "needs a second rank to receive the record";
  inject_and_expect_broken(static_cast<std::uint16_t>(troupe::messaging::Kind::kTask), std::vector<std::byte>(3),
                           "bad task record");
}

TEST(Executor, FrameOfUnknownKindBreaksTheExecutorWithoutAHang) {
  if (world_size() < 2) GTEST_SKIP() << "needs a second rank to receive the frame";
  inject_and_expect_broken(999, std::vector<std::byte>(5), "unknown kind 999");
}

TEST(Executor, TwoExecutorsAtOnceOnTheWorldAndOnASplit) {
  troupe::Runtime rt(quiet());
  const int rank = world_rank();
  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
  {
    Executor all(rt);
    troupe::ExecutorOptions opts;
    opts.comm = half;
    Executor part(rt, opts);
    int half_size = 0;
    MPI_Comm_size(half, &half_size);
    EXPECT_EQ(part.size(), half_size);
    // Both root-driven at once; a task finds its own executor through this_executor().
    std::vector<Future<int>> fa, fp;
    if (all.is_root()) {
      for (int i = 0; i < 200; ++i) {
        fa.push_back(all.submit([](int x) { return troupe::this_executor().size() * 1000 + x; }, i));
      }
    }
    if (part.is_root()) {
      for (int i = 0; i < 200; ++i) {
        fp.push_back(part.submit([](int x) { return troupe::this_executor().size() * 1000 + x; }, i));
      }
    }
    for (int i = 0; i < static_cast<int>(fa.size()); ++i)
      EXPECT_EQ(fa[static_cast<std::size_t>(i)].result(60s), all.size() * 1000 + i);
    for (int i = 0; i < static_cast<int>(fp.size()); ++i)
      EXPECT_EQ(fp[static_cast<std::size_t>(i)].result(60s), part.size() * 1000 + i);
    // Collectives of each run on its own ranks.
    std::vector<int> one{1};
    EXPECT_EQ(part.map_reduce_all([](int x) { return x; }, [](int a, int b) { return a + b; }, one), half_size);
    EXPECT_EQ(all.map_reduce_all([](int x) { return x; }, [](int a, int b) { return a + b; }, one), all.size());
    EXPECT_THROW((void)troupe::this_executor(), troupe::InvalidStateError)
        << "two exist: the main thread must say which";
    part.shutdown();
    all.shutdown();
  }
  MPI_Comm_free(&half);
}

// Where ranks share cores (forced here with TROUPE_SHARED_CORES=1 on every rank), waits sleep
// instead of spinning and every rank gets a deeper credit window: a chunksize-1 map is still
// complete, in order, and reaches every rank.
TEST(Executor, ChunksizeOneMapSpreadsWhenCoresAreShared) {
  struct Env {
    Env() { ::setenv("TROUPE_SHARED_CORES", "1", 1); }
    ~Env() { ::unsetenv("TROUPE_SHARED_CORES"); }
  } env;
  troupe::Runtime rt(quiet());
  ASSERT_TRUE(rt.shared_cores());
  Executor ex(rt);
  if (ex.is_root()) {
    std::vector<int> in(4000);
    std::iota(in.begin(), in.end(), 0);
    auto out = ex.map([](int x) { return 3 * x; }, in, {.chunksize = 1, .timeout = 120s}).to_vector();
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], 3 * in[i]) << i;
    for (int r = 1; r < ex.size(); ++r) {
      EXPECT_GT(ex.submit_to(r, [] { return troupe::this_executor().stats().served_remote; }).result(60s), 0u)
          << "rank " << r << " ran none of the map";
    }
  }
  ex.shutdown();
}
