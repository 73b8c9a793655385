// troupe_pi — Monte Carlo estimate of pi over all ranks x all threads.
//
// The samples are cut into blocks with independent random streams (block b is seeded from
// (seed, b)), so the count of hits — and the estimate — is the same whatever the number of
// ranks and threads. Each rank takes a contiguous run of blocks and folds them with its
// ThreadPool's parallel_reduce; one MPI_Allreduce on the Runtime's communicator adds the
// ranks' counts.
//
//   mpirun -n 2 build/apps/pi/troupe_pi [--samples N] [--blocks B] [--seed S] [--threads T] [--info]
#include <mpi.h>

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include "troupe/core/config.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/pool/thread_pool.hpp"
#include "troupe/runtime/detail/gather.hpp"
#include "troupe/runtime/runtime.hpp"

namespace {

struct Args {
  std::uint64_t samples = 1'000'000'000;
  std::uint64_t blocks = 16384;
  std::uint64_t seed = 20261123;
  std::size_t threads = 0;  // 0: the Runtime's rule (TROUPE_THREADS, affinity, ...)
  bool info = false;
};

std::uint64_t parse_u64(const char* flag, const char* text) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
    throw troupe::ValueError(std::string("troupe_pi: ") + flag + " needs a non-negative integer, got '" + text + "'");
  }
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw troupe::ValueError("troupe_pi: " + flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--samples") {
      a.samples = parse_u64("--samples", value());
    } else if (flag == "--blocks") {
      a.blocks = parse_u64("--blocks", value());
    } else if (flag == "--seed") {
      a.seed = parse_u64("--seed", value());
    } else if (flag == "--threads") {
      a.threads = static_cast<std::size_t>(parse_u64("--threads", value()));
    } else if (flag == "--info") {
      a.info = true;
    } else if (flag == "--help" || flag == "-h") {
      std::printf("usage: troupe_pi [--samples N] [--blocks B] [--seed S] [--threads T] [--info]\n");
      std::exit(0);
    } else {
      throw troupe::ValueError("troupe_pi: unknown argument '" + flag + "' (try --help)");
    }
  }
  if (a.samples == 0) throw troupe::ValueError("troupe_pi: --samples must be >= 1, got 0");
  if (a.blocks == 0) throw troupe::ValueError("troupe_pi: --blocks must be >= 1, got 0");
  if (a.blocks > a.samples) a.blocks = a.samples;
  return a;
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman & Vigna): fast, 2^256 period; one generator per block.
class Xoshiro256 {
 public:
  Xoshiro256(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t sm = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (auto& w : s_) w = splitmix64(sm);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// Hits inside the quarter circle among the samples of block b.
std::uint64_t block_hits(const Args& a, std::uint64_t b) {
  const std::uint64_t base = a.samples / a.blocks;
  const std::uint64_t n = base + (b < a.samples % a.blocks ? 1 : 0);
  Xoshiro256 rng(a.seed, b);
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const double x = rng.uniform();
    const double y = rng.uniform();
    hits += (x * x + y * y <= 1.0) ? 1 : 0;
  }
  return hits;
}

// Gathers every rank's info line to rank 0 (bounded: detail::gather_text), which prints
// them in rank order.
void print_info(const troupe::Runtime& rt) {
  const auto lines = troupe::detail::gather_text(
      rt.comm(), 0, rt.info().to_string(),
      troupe::Deadline::after(troupe::settings().startup_timeout, "troupe_pi --info"), "troupe_pi --info");
  for (std::size_t r = 0; r < lines.size(); ++r) std::printf("[rank %zu/%d] %s\n", r, rt.size(), lines[r].c_str());
}

int run(int argc, char** argv) {
  troupe::RuntimeOptions options;
  // Parse the thread count before the Runtime starts: it decides the pool size.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0)
      options.threads = static_cast<std::size_t>(parse_u64("--threads", argv[i + 1]));
  }
  troupe::Runtime rt(argc, argv, options);
  const Args a = parse(argc, argv);
  troupe::ThreadPool pool;  // rt.threads() workers

  if (a.info) print_info(rt);

  // This rank's contiguous run of blocks.
  const auto size = static_cast<std::uint64_t>(rt.size());
  const auto rank = static_cast<std::uint64_t>(rt.rank());
  const std::uint64_t first = a.blocks * rank / size;
  const std::uint64_t last = a.blocks * (rank + 1) / size;

  MPI_Barrier(rt.comm());
  const double t0 = MPI_Wtime();
  const std::uint64_t local_hits = pool.parallel_reduce(first, last, std::uint64_t{0}, std::plus<>{},
                                                        [&](std::uint64_t b) { return block_hits(a, b); });
  std::uint64_t hits = 0;
  MPI_Allreduce(&local_hits, &hits, 1, MPI_UINT64_T, MPI_SUM, rt.comm());
  const double seconds = MPI_Wtime() - t0;

  // Every rank must hold the same total (a cheap end-to-end check of the reduction).
  std::uint64_t hmin = 0, hmax = 0;
  MPI_Allreduce(&hits, &hmin, 1, MPI_UINT64_T, MPI_MIN, rt.comm());
  MPI_Allreduce(&hits, &hmax, 1, MPI_UINT64_T, MPI_MAX, rt.comm());

  const double n = static_cast<double>(a.samples);
  const double pi = 4.0 * static_cast<double>(hits) / n;
  const double err = pi - std::numbers::pi;
  const double p = std::numbers::pi / 4.0;
  const double sigma = 4.0 * std::sqrt(p * (1.0 - p) / n);  // standard error of the estimate
  const bool plausible = std::fabs(err) <= 6.0 * sigma && hmin == hmax;

  if (rt.rank() == 0) {
    std::printf("troupe_pi: %" PRIu64 " samples in %" PRIu64 " blocks on %d rank(s) x %zu thread(s)\n", a.samples,
                a.blocks, rt.size(), rt.threads());
    std::printf("pi       ~ %.10f\n", pi);
    std::printf("error    = %+.3e (%.2f standard errors; M_PI = %.10f)\n", err, err / sigma, std::numbers::pi);
    std::printf("time     = %.3f s\n", seconds);
    std::printf("rate     = %.3e samples/s (%.3e per thread)\n", n / seconds,
                n / seconds / static_cast<double>(rt.threads() * static_cast<std::size_t>(rt.size())));
    if (!plausible) std::printf("troupe_pi: FAILED: estimate implausible or ranks disagree\n");
    std::fflush(stdout);
  }
  return plausible ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    troupe::log(std::string("troupe_pi: ") + e.what());
    return 2;
  }
}
