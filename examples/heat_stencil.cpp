// 1D heat equation on a troupe::GlobalArray: each rank updates its own block in place
// (local(), zero copy) and reads its two halo cells from the neighbouring blocks with a
// one-sided get; one collective fence per step makes the new values visible everywhere.
//
// Two arrays (u and next) swap roles every step. The ends of the rod are held at fixed
// temperatures. After the last step rank 0 reads the whole rod with one range get (one
// MPI_Get per owner) and compares it with a serial computation of the same steps: the same
// floating-point operations in the same order, so the two must agree exactly.
//   mpirun -n 4 ./heat_stencil
#include <troupe/runtime/runtime.hpp>
#include <troupe/window/global_array.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kN = 200;  // cells of the rod
constexpr int kSteps = 2000;
constexpr double kAlpha = 0.25;  // diffusion number (stable for <= 0.5)
constexpr double kLeft = 100.0;  // fixed end temperatures
constexpr double kRight = 20.0;

double initial(std::size_t i) {
  if (i == 0) return kLeft;
  if (i == kN - 1) return kRight;
  return (i > kN / 3 && i < kN / 2) ? 50.0 : 0.0;  // a warm patch in the middle
}

double update(double left, double self, double right) { return self + kAlpha * ((left - 2.0 * self) + right); }

std::vector<double> serial() {
  std::vector<double> u(kN), v(kN);
  for (std::size_t i = 0; i < kN; ++i) u[i] = initial(i);
  for (int s = 0; s < kSteps; ++s) {
    v[0] = u[0];
    v[kN - 1] = u[kN - 1];
    for (std::size_t i = 1; i + 1 < kN; ++i) v[i] = update(u[i - 1], u[i], u[i + 1]);
    std::swap(u, v);
  }
  return u;
}

}  // namespace

int main(int argc, char** argv) {
  troupe::RuntimeOptions ro;
  ro.quiet = true;
  troupe::Runtime rt(argc, argv, ro);

  troupe::GlobalArray<double> a(kN), b(kN);  // collective
  troupe::GlobalArray<double>* u = &a;
  troupe::GlobalArray<double>* next = &b;
  const auto [first, last] = a.local_range();
  for (std::size_t i = first; i < last; ++i) a.local()[i - first] = initial(i);
  a.fence(60s);

  const auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < kSteps; ++s) {
    auto mine = u->local();
    auto out = next->local();
    if (!mine.empty()) {
      // Halo cells from the neighbouring blocks: one-sided, the neighbours take no part.
      const double left = first > 0 ? u->get(first - 1) : 0.0;
      const double right = last < kN ? u->get(last) : 0.0;
      for (std::size_t i = first; i < last; ++i) {
        const std::size_t k = i - first;
        if (i == 0 || i == kN - 1) {
          out[k] = mine[k];  // fixed ends
          continue;
        }
        const double l = k == 0 ? left : mine[k - 1];
        const double r = k + 1 == mine.size() ? right : mine[k + 1];
        out[k] = update(l, mine[k], r);
      }
    }
    next->fence(60s);  // every rank's new block visible before anyone reads its halo
    std::swap(u, next);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (rt.rank() == 0) {
    const std::vector<double> rod = u->get(0, kN);  // one range get spanning every owner
    const std::vector<double> want = serial();
    double worst = 0.0;
    for (std::size_t i = 0; i < kN; ++i) worst = std::max(worst, std::fabs(rod[i] - want[i]));
    std::printf("%d steps of a %zu-cell rod on %d ranks in %.3f s; largest difference from the serial run %.3g\n",
                kSteps, kN, rt.size(), seconds, worst);
    std::printf("temperature at the quarter points: %.4f %.4f %.4f\n", rod[kN / 4], rod[kN / 2], rod[3 * kN / 4]);
    example::check(worst <= 1e-12, "the distributed rod must match the serial computation");
    example::check(rod[0] == kLeft && rod[kN - 1] == kRight, "the ends must keep their fixed temperatures");
  }
  u->fence(60s);  // rank 0's read finishes before anyone frees
  int failures = example::failures;
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  return failures == 0 ? 0 : 1;
}
