// troupe_mandelbrot — the Mandelbrot set over all ranks x all threads, twice: with static
// and with dynamic scheduling, to show what dynamic load balancing buys on uneven work.
//
// A pixel costs one iteration of z -> z^2 + c until |z| > 2 or max_iter: pixels in the set
// cost max_iter, pixels far from it a handful. The default view is the upper half of the
// set (it is symmetric), so the rows near the real axis cost far more than the rows at the
// top of the image.
//
// - static:  the rows are cut into as many equal contiguous blocks as the executor has
//            workers (ranks x threads), one task per block (what a plain MPI program with a
//            block decomposition does). The block holding the heavy rows decides the time.
// - dynamic: one task per row (--chunk rows per task), Executor::imap_unordered; the
//            executor hands rows to whichever worker is free, and the rows come back in
//            completion order, each stored at its place in the image.
//
// Both images must be identical (the program fails otherwise); the dynamic one is written
// as a binary PGM. Python equivalent of the dynamic half:
//
//   with MPIPoolExecutor() as ex:
//       for y, row in ex.map(render_row, range(height), unordered=True): image[y] = row
//
//   mpirun -n 2 build/apps/mandelbrot/troupe_mandelbrot [OUTPUT.pgm] [--width W] [--height H]
//          [--max-iter N] [--chunk ROWS] [--repeat K]
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "troupe/core/error.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/wire/serialize.hpp"

using namespace std::chrono_literals;

namespace {

// What a task needs to render rows: trivially copyable, so lambdas capture it by value and
// it travels with them to any rank.
struct View {
  int width = 1600;
  int height = 800;
  int max_iter = 2000;
  // No padding: every byte of a View is a member with a value. A lambda capturing it travels
  // as raw bytes, and the wire refuses an 8-byte word that looks like an address of this
  // process; 4 bytes of padding here held whatever the stack held (0x00007f99 next to
  // max_iter 1000 read as 0x00007f99000003e8: "an address in this process's memory").
  int unused = 0;
  double x_min = -2.2, x_max = 0.8;  // real axis, left to right
  double y_min = -0.1, y_max = 1.4;  // imaginary axis, bottom to top (row 0 is y_max)
};

struct Args {
  View view;
  std::string output = "mandelbrot.pgm";
  int chunk = 1;
  int repeat = 1;
};

// Rows [first, first + rows) of the image, with what they cost and where they ran.
struct Rows {
  int first = 0;
  std::vector<std::uint8_t> pixels;  // rows x width, row-major
  std::int64_t iterations = 0;       // the work: total iterations of z -> z^2 + c
  int rank = -1;
  TROUPE_FIELDS(first, pixels, iterations, rank)
};

Rows render(const View& v, int first, int last) {
  Rows out;
  out.first = first;
  out.pixels.resize(static_cast<std::size_t>(last - first) * static_cast<std::size_t>(v.width));
  const double dx = (v.x_max - v.x_min) / v.width;
  const double dy = (v.y_max - v.y_min) / v.height;
  std::size_t k = 0;
  for (int row = first; row < last; ++row) {
    const double ci = v.y_max - (row + 0.5) * dy;
    for (int col = 0; col < v.width; ++col) {
      const double cr = v.x_min + (col + 0.5) * dx;
      double zr = 0, zi = 0;
      int n = 0;
      while (n < v.max_iter && zr * zr + zi * zi <= 4.0) {
        const double t = zr * zr - zi * zi + cr;
        zi = 2.0 * zr * zi + ci;
        zr = t;
        ++n;
      }
      out.iterations += n;
      // In the set: black. Outside: brighter the longer it took to escape (a glowing edge),
      // on a log scale so that the few-iteration background is not all black.
      const double shade = n >= v.max_iter ? 0.0 : std::log1p(n) / std::log1p(v.max_iter);
      out.pixels[k++] = static_cast<std::uint8_t>(std::lround(255.0 * shade));
    }
  }
  out.rank = troupe::Runtime::current()->rank();
  return out;
}

void place(std::vector<std::uint8_t>& image, const View& v, const Rows& r) {
  std::copy(r.pixels.begin(), r.pixels.end(),
            image.begin() + static_cast<std::ptrdiff_t>(r.first) * static_cast<std::ptrdiff_t>(v.width));
}

int parse_int(const std::string& flag, const char* text, int min) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > std::numeric_limits<int>::max()) {
    throw troupe::ValueError("troupe_mandelbrot: " + flag + " needs an integer >= " + std::to_string(min) + ", got '" +
                             text + "'");
  }
  return static_cast<int>(value);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw troupe::ValueError("troupe_mandelbrot: " + flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--width") {
      a.view.width = parse_int(flag, value(), 1);
    } else if (flag == "--height") {
      a.view.height = parse_int(flag, value(), 1);
    } else if (flag == "--max-iter") {
      a.view.max_iter = parse_int(flag, value(), 1);
    } else if (flag == "--chunk") {
      a.chunk = parse_int(flag, value(), 1);
    } else if (flag == "--repeat") {
      a.repeat = parse_int(flag, value(), 1);
    } else if (flag == "--output" || flag == "-o") {
      a.output = value();
    } else if (flag == "--help" || flag == "-h") {
      std::printf(
          "usage: troupe_mandelbrot [OUTPUT.pgm] [--width W] [--height H] [--max-iter N] [--chunk ROWS] [--repeat "
          "K]\n");
      std::exit(0);
    } else if (!flag.empty() && flag[0] != '-') {
      a.output = flag;
    } else {
      throw troupe::ValueError("troupe_mandelbrot: unknown argument '" + flag + "' (try --help)");
    }
  }
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Outcome {
  std::vector<std::uint8_t> image;
  double seconds = std::numeric_limits<double>::infinity();  // best of --repeat
  std::vector<Rows> blocks;                                  // static only: pixels dropped
  std::int64_t iterations = 0;
  int tasks = 0;
};

// Static: as many equal contiguous blocks of rows as there are workers, one task each.
// One pass; @p o keeps the best time.
void run_static(troupe::Executor& ex, const Args& a, Outcome& o) {
  const View v = a.view;
  const int nblocks = static_cast<int>(std::min<std::size_t>(ex.workers(), static_cast<std::size_t>(v.height)));
  o.tasks = nblocks;
  {
    std::vector<std::uint8_t> image(static_cast<std::size_t>(v.width) * static_cast<std::size_t>(v.height));
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<troupe::Future<Rows>> parts;
    for (int b = 0; b < nblocks; ++b) {
      const int first = static_cast<int>(std::int64_t{v.height} * b / nblocks);
      const int last = static_cast<int>(std::int64_t{v.height} * (b + 1) / nblocks);
      parts.push_back(ex.submit([v](int lo, int hi) { return render(v, lo, hi); }, first, last));
    }
    std::vector<Rows> blocks;
    for (auto& f : parts) {
      blocks.push_back(f.result(600s));
      place(image, v, blocks.back());
    }
    const double s = seconds_since(t0);
    if (s < o.seconds) o.seconds = s;
    o.image = std::move(image);
    o.iterations = 0;
    o.blocks.clear();
    for (auto& r : blocks) {
      o.iterations += r.iterations;
      r.pixels.clear();
      o.blocks.push_back(std::move(r));
    }
  }
}

// Dynamic: one task per --chunk rows, results taken in completion order. One pass; @p o
// keeps the best time.
void run_dynamic(troupe::Executor& ex, const Args& a, Outcome& o) {
  const View v = a.view;
  o.tasks = (v.height + a.chunk - 1) / a.chunk;
  {
    std::vector<std::uint8_t> image(static_cast<std::size_t>(v.width) * static_cast<std::size_t>(v.height));
    std::int64_t iterations = 0;
    const auto t0 = std::chrono::steady_clock::now();
    // The row numbers (std::views::iota would do, but clang 14 cannot compile libstdc++ 12's views).
    std::vector<int> row_numbers(static_cast<std::size_t>(v.height));
    std::iota(row_numbers.begin(), row_numbers.end(), 0);
    auto rows = ex.imap_unordered([v](int row) { return render(v, row, row + 1); }, row_numbers,
                                  {.chunksize = static_cast<std::size_t>(a.chunk), .timeout = 600s});
    for (const Rows& r : rows) {
      place(image, v, r);
      iterations += r.iterations;
    }
    const double s = seconds_since(t0);
    if (s < o.seconds) o.seconds = s;
    o.image = std::move(image);
    o.iterations = iterations;
  }
}

void write_pgm(const std::string& path, const View& v, const std::vector<std::uint8_t>& image) {
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << v.width << ' ' << v.height << "\n255\n";
  out.write(reinterpret_cast<const char*>(image.data()), static_cast<std::streamsize>(image.size()));
  if (!out) throw troupe::Error("troupe_mandelbrot: cannot write " + path);
}

int run(int argc, char** argv) {
  troupe::Runtime rt(argc, argv);
  const Args a = parse(argc, argv);  // every rank parses the same arguments
  troupe::Executor ex(rt);           // collective
  bool ok = true;

  if (ex.is_root()) {
    const View& v = a.view;
    std::printf("troupe_mandelbrot: %dx%d, max_iter %d, on %d rank(s) x %zu thread(s) = %zu worker(s)\n", v.width,
                v.height, v.max_iter, ex.size(), rt.threads(), ex.workers());
    // Warm-up: start every worker and connection before timing anything.
    (void)ex.map([](int x) { return x; }, std::vector<int>(4 * ex.workers(), 0), {.chunksize = 1}).to_vector();

    // --repeat K: the best of K runs of each, interleaved so that a noisy machine hits both.
    Outcome st, dy;
    for (int rep = 0; rep < a.repeat; ++rep) {
      run_static(ex, a, st);
      run_dynamic(ex, a, dy);
    }

    std::printf("static : %8.3f s  (%d equal blocks of rows, one task per worker)\n", st.seconds, st.tasks);
    if (st.blocks.size() <= 16 && st.iterations > 0) {
      for (const Rows& b : st.blocks) {
        std::printf("         block at row %5d ran on rank %d: %5.1f%% of the work\n", b.first, b.rank,
                    100.0 * static_cast<double>(b.iterations) / static_cast<double>(st.iterations));
      }
    }
    std::printf("dynamic: %8.3f s  (%d tasks of %d row(s), imap_unordered)\n", dy.seconds, dy.tasks, a.chunk);
    std::printf("static / dynamic = %.2fx\n", st.seconds / dy.seconds);
    std::printf("work   : %.3e iterations (%.3e per second dynamic)\n", static_cast<double>(dy.iterations),
                static_cast<double>(dy.iterations) / dy.seconds);

    const bool same = st.image == dy.image && st.iterations == dy.iterations;
    std::printf("images identical: %s\n", same ? "yes" : "NO");
    ok = same;
    write_pgm(a.output, v, dy.image);
    std::printf("wrote %s (%dx%d PGM)\n", a.output.c_str(), v.width, v.height);
    if (!ok) std::printf("troupe_mandelbrot: FAILED: the static and dynamic images differ\n");
    std::fflush(stdout);
  }

  ex.shutdown();  // collective: the serving ranks wait here for the root
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    troupe::log(std::string("troupe_mandelbrot: ") + e.what());
    return 2;
  }
}
