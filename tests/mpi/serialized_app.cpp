// MpiMode::Serialized (issue 10, item 2): troupe at MPI_THREAD_SERIALIZED with progress
// threads, every MPI call of the process under one token, the program's own calls inside
// troupe::with_mpi. Its own main (the gtest MPI harness starts MPI at MULTIPLE), linked with
// troupe::mpi_check, whose MPI_* definitions check every call of the program and of troupe
// (a static library: its calls bind there) against the mode's rule. Run at 1, 2 and 4 ranks
// (tests/mpi/CMakeLists.txt).
//
// 1. the mode: Runtime::mpi_mode() is Serialized when MPI provides SERIALIZED;
// 2. progress threads: a task sent to another rank completes while the root's main thread
//    stays outside troupe (Future::done() polled; without a progress thread nothing moves);
// 3. troupe's own calls under load: a map over every rank, the program's with_mpi calls from
//    worker tasks and from two threads at once, GlobalArray fetch_add and Counter::next from
//    two threads per rank (RMA calls from several threads), async_mpi — exact results, and
//    mpi_check counts thousands of checked calls and zero violations;
// 4. with_mpi's deadline: while one thread holds the token, another's with_mpi(50 ms) raises
//    TimeoutError;
// 5. a violation is found: an MPI call from a thread without the token is counted, named.
//
// A failed check prints `[rank r] FAILED: ...` and calls MPI_Abort; every wait is bounded.
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <troupe/across/counter.hpp>
#include <troupe/executor/executor.hpp>
#include <troupe/runtime/mpi_token.hpp>
#include <troupe/runtime/runtime.hpp>
#include <troupe/window/global_array.hpp>

using namespace std::chrono_literals;

namespace {

int g_rank = 0;

void require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "[rank %d] FAILED: %s\n", g_rank, what.c_str());
  std::fflush(stderr);
  PMPI_Abort(MPI_COMM_WORLD, 1);
}

long square(long x) { return x * x; }

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.thread_level = troupe::ThreadLevel::Serialized;
  ro.serialize_mpi = true;
  ro.quiet = true;
  int done_rc = 0;
  {
    troupe::Runtime rt(argc, argv, ro);
    g_rank = rt.rank();
    const int size = rt.size();
    if (rt.thread_level() != troupe::ThreadLevel::Serialized) {
      // An MPI that provides more than it was asked: the mode is Multiple and there is
      // nothing to check here.
      if (g_rank == 0)
        std::printf("serialized_app: MPI provided %s; skipped\n", troupe::to_string(rt.thread_level()).data());
      return 0;
    }
    require(rt.mpi_mode() == troupe::MpiMode::Serialized,
            "mpi_mode() is not Serialized at SERIALIZED with serialize_mpi");
    require(rt.progress_threads(), "progress_threads() is false in MpiMode::Serialized");
    troupe::set_mpi_check_action(troupe::MpiCheckAction::Count);
    const auto before = troupe::mpi_check_report();

    MPI_Comm mine;  // the program's own communicator, used only inside with_mpi
    troupe::with_mpi([&] { MPI_Comm_dup(MPI_COMM_WORLD, &mine); });
    {
      troupe::Executor ex(rt);
      // 2. a progress thread serves: the root's main thread stays out of troupe.
      if (ex.is_root() && size > 1) {
        auto f = ex.submit_to(1, troupe::remote<&square>, 12L);
        const auto until = std::chrono::steady_clock::now() + 30s;
        while (!f.done() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        require(f.done(), "a task on rank 1 did not complete in 30 s while the root stayed outside troupe");
        require(f.result() == 144, "rank 1's square(12) is not 144");
      }
      // 3. a map over every rank; its tasks make the program's own MPI calls with with_mpi.
      if (ex.is_root()) {
        std::vector<long> in(2000);
        std::iota(in.begin(), in.end(), 0L);
        auto out = ex.map(
                         [](long x) {
                           int flag = 0;
                           troupe::with_mpi(
                               [&] { MPI_Iprobe(MPI_ANY_SOURCE, 4242, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE); });
                           return x * x + flag;
                         },
                         in, {.chunksize = 7})
                       .to_vector();
        for (long i = 0; i < 2000; ++i)
          require(out[static_cast<std::size_t>(i)] == i * i, "map result " + std::to_string(i));
      }
      // Two threads per rank make collective-free MPI calls at once, each under the token.
      {
        std::atomic<long> probes{0};
        auto probe = [&] {
          for (int k = 0; k < 500; ++k) {
            int flag = 0;
            troupe::with_mpi([&] { MPI_Iprobe(MPI_ANY_SOURCE, 4343, mine, &flag, MPI_STATUS_IGNORE); });
            probes.fetch_add(1 + flag);
          }
        };
        std::thread a(probe), b(probe);
        a.join();
        b.join();
        require(probes.load() == 1000, "with_mpi probes from two threads: " + std::to_string(probes.load()));
      }
      // async_mpi: a request of the program's own, tested by troupe's engine under the token.
      {
        const int peer = (g_rank + 1) % size, from = (g_rank + size - 1) % size;
        long out = g_rank, in = -1;
        MPI_Request rq[2];
        troupe::with_mpi([&] {
          MPI_Irecv(&in, 1, MPI_LONG, from, 7, mine, &rq[0]);
          MPI_Isend(&out, 1, MPI_LONG, peer, 7, mine, &rq[1]);
        });
        auto r0 = ex.async_mpi(rq[0]);
        auto r1 = ex.async_mpi(rq[1]);
        (void)r0.result(30s);
        (void)r1.result(30s);
        require(in == from, "async_mpi ring: got " + std::to_string(in));
      }
      ex.shutdown();
    }
    // RMA from two threads per rank (every troupe MPI call holds the token).
    {
      troupe::GlobalArray<long> ga(static_cast<std::size_t>(size) * 4);
      troupe::Counter counter(troupe::Scope::Ranks);
      std::atomic<long> taken{0};
      auto work = [&] {
        for (int k = 0; k < 200; ++k) {
          (void)ga.fetch_add(static_cast<std::size_t>(k) % ga.size(), 1L);
          (void)counter.next();
          taken.fetch_add(1);
        }
      };
      std::thread a(work), b(work);
      a.join();
      b.join();
      ga.fence(troupe::Deadline::after(60s, "serialized_app"));
      long total = 0;
      for (std::size_t i = 0; i < ga.size(); ++i) total += ga.get(i);
      require(total == 400L * size, "GlobalArray fetch_add total " + std::to_string(total));
      ga.fence(troupe::Deadline::after(60s, "serialized_app"));
      require(ga.free(troupe::Deadline::after(60s, "serialized_app")), "GlobalArray::free");
    }
    // 4. with_mpi's deadline.
    {
      std::latch held(1), release(1);
      std::thread holder([&] {
        troupe::with_mpi([&] {
          held.count_down();
          release.wait();
        });
      });
      held.wait();
      bool timed_out = false;
      try {
        troupe::with_mpi([] {}, 50ms);
      } catch (const troupe::TimeoutError&) {
        timed_out = true;
      }
      release.count_down();
      holder.join();
      require(timed_out, "with_mpi(50 ms) did not time out while another thread held the token");
    }
    const auto clean = troupe::mpi_check_report();
    require(clean.checked > before.checked + 100,
            "mpi_check saw only " + std::to_string(clean.checked - before.checked) + " calls (is it linked?)");
    require(clean.violations == before.violations, "troupe or this program broke the SERIALIZED rule: " + clean.last);
    // 5. a violation: a thread without the token calls MPI (nothing else runs MPI now).
    {
      std::thread rogue([&] {
        int flag = 0;
        MPI_Iprobe(MPI_ANY_SOURCE, 4444, mine, &flag, MPI_STATUS_IGNORE);
      });
      rogue.join();
      const auto found = troupe::mpi_check_report();
      require(found.violations == clean.violations + 1, "the call without the token was not counted");
      require(found.last.find("MPI_Iprobe") != std::string::npos && found.last.find("with_mpi") != std::string::npos,
              "the violation report does not name MPI_Iprobe and with_mpi: " + found.last);
    }
    troupe::with_mpi([&] { MPI_Comm_free(&mine); });
    if (g_rank == 0) {
      std::printf("serialized_app: %d ranks, %llu MPI calls checked, 0 violations by troupe\n", size,
                  static_cast<unsigned long long>(clean.checked - before.checked));
    }
  }
  return done_rc;
}
