// pool_map_into: a parallel map into an array the caller owns, as numpy's `out=`.
//
// Python equivalent:
//
//   import numpy as np
//   xs = np.arange(1_000_000, dtype=np.float64)
//   ys = np.empty_like(xs)              # allocated once
//   for step in range(3):
//       np.sqrt(xs, out=ys)             # no new array per call
//
// ThreadPool::map_into(out, fn, inputs) writes fn(inputs[i]) into out[i] with map's chunks,
// run by the workers and the calling thread, and returns when all are written. Unlike
// map(...).to_vector(), it builds no new std::vector per call (whose elements C++ would
// value-initialize first). out.size() must equal the input's size.
//
//   build/examples/example_pool_map_into
#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <vector>

#include <troupe/pool/thread_pool.hpp>

#include "example_check.hpp"

int main() {
  using example::check;
  using example::failures;
  troupe::ThreadPool pool(2);

  std::vector<double> xs(1'000'000);
  std::iota(xs.begin(), xs.end(), 0.0);
  std::vector<double> ys(xs.size());  // allocated once, reused by every call
  for (int step = 0; step < 3; ++step)
    pool.map_into(
        ys, [](double x) { return std::sqrt(x); }, xs);
  std::printf("1. ys[144] = %.1f, ys[999999] = %.3f\n", ys[144], ys.back());
  check(ys[144] == 12.0, "ys[i] = sqrt(xs[i])");

  // A size mismatch is refused before anything runs.
  std::vector<double> small(10);
  try {
    pool.map_into(
        small, [](double x) { return x; }, xs);
    check(false, "a size mismatch is refused");
  } catch (const troupe::ValueError& e) {
    std::printf("2. %s\n", e.what());
  }

  // An element's exception comes back as itself; the chunks not started never run.
  try {
    pool.map_into(
        ys, [](double x) { return x == 500'000 ? throw std::domain_error("bad element") : x; }, xs);
    check(false, "the element's exception is rethrown");
  } catch (const std::domain_error& e) {
    std::printf("3. std::domain_error: %s\n", e.what());
  }

  std::printf(failures == 0 ? "OK\n" : "FAILED\n");
  return failures == 0 ? 0 : 1;
}
