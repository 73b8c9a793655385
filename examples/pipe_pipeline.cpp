// A three-stage pipeline over two troupe::Pipes, one stage per rank:
//   rank 0: create 1..N  ->  rank 1: square  ->  rank 2: print and sum
// Each stage stops when its input pipe reports end of file (troupe::EOFError, as Python's
// Connection.recv raises EOFError), then closes its output so the next stage stops too.
//
//   mpirun -n 3 build/examples/pipe_pipeline
//
// (At 2 ranks the last stage runs on rank 0; extra ranks hold inactive pipe ends.)
#include <troupe/across/pipe.hpp>
#include <troupe/runtime/runtime.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "example_check.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  if (rt.size() < 2) {
    if (rt.rank() == 0) std::printf("pipe_pipeline: needs 2 or more ranks (3 is the story)\n");
    return 0;
  }
  constexpr std::int64_t kN = 1000;
  const int printer = 2 % rt.size();
  // Collective: every rank builds both pipes, in the same order (one-way pipes).
  troupe::Pipe<std::int64_t> created(0, 1, /*duplex=*/false);
  troupe::Pipe<std::int64_t> squared(1, printer, /*duplex=*/false);

  std::thread create;
  if (rt.rank() == 0) {
    create = std::thread([&] {
      for (std::int64_t i = 1; i <= kN; ++i) created.send(i, 60s);
      created.close();  // end of file for rank 1
    });
  }
  if (rt.rank() == 1) {
    try {
      for (;;) {
        const std::int64_t x = created.recv(60s);
        squared.send(x * x, 60s);
      }
    } catch (const troupe::EOFError&) {
    }
    squared.close();
  }
  if (rt.rank() == printer) {
    std::int64_t count = 0, sum = 0, last = 0;
    bool ordered = true;
    try {
      for (;;) {
        const std::int64_t y = squared.recv(60s);
        if (count < 5) std::printf("rank %d got %lld\n", rt.rank(), static_cast<long long>(y));
        ordered = ordered && y > last;
        last = y;
        sum += y;
        ++count;
      }
    } catch (const troupe::EOFError&) {
      std::printf("rank %d: end of file after %lld items, sum %lld\n", rt.rank(), static_cast<long long>(count),
                  static_cast<long long>(sum));
    }
    example::check(count == kN, "every item arrived");
    example::check(ordered, "items arrived in order");
    example::check(sum == kN * (kN + 1) * (2 * kN + 1) / 6, "sum of the squares of 1..N");
  }
  if (create.joinable()) create.join();
  return example::failures == 0 ? 0 : 1;
}
