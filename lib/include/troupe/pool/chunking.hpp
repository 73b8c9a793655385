#pragma once
/// @file
/// @brief troupe::MapOptions and the one chunking rule of every map (ThreadPool and Executor).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <limits>
#include <optional>
#include <ranges>
#include <string>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"

namespace troupe {

/// @brief Options of every map: ThreadPool::map / map_unordered / starmap and
/// Executor::map / map_unordered / imap / imap_unordered / starmap / map_async / map_scan.
/// @brief Whether a map draws a progress bar (MapOptions::progress, `TROUPE_PROGRESS`):
/// items done of the total, rate and ETA on stderr of the rank that calls it (docs/tracing.md).
enum class Progress : unsigned char {
  off = 0,       ///< no bar (the default)
  terminal = 1,  ///< a bar when stderr is a terminal, nothing in a log file or a pipe
  always = 2,    ///< a bar in any case (logs, tests): a line per redraw, ended by '\r'
};

struct MapOptions {
  /// Elements per task; nullopt: the automatic rule of detail::Chunking. 0 is a ValueError;
  /// a value larger than the input (SIZE_MAX included) means one chunk of the whole input.
  std::optional<std::size_t> chunksize = std::nullopt;
  /// Deadline of the whole iteration, counted from the call (Python's map timeout).
  std::optional<std::chrono::duration<double>> timeout = std::nullopt;
  /// At most this many chunks in flight; the input is then read lazily, as results are
  /// taken (huge or endless inputs). nullopt: every chunk is submitted at once. 0 is a ValueError.
  std::optional<std::size_t> buffersize = std::nullopt;
  /// A progress bar on stderr while the results come (docs/tracing.md); nullopt: the
  /// `TROUPE_PROGRESS` knob (default off). An Executor's map draws on the root, a
  /// ThreadPool's on rank 0 (or in a program without a Runtime).
  std::optional<Progress> progress = std::nullopt;
};

namespace detail {

/// @brief Throws `api: what must be >= 1, got 0` for a given 0 (every map's chunksize,
/// buffersize and grain go through here).
inline void check_positive(const std::optional<std::size_t>& v, const char* api, const char* what) {
  if (v && *v == 0) throw ValueError(std::string(api) + ": " + what + " must be >= 1, got 0");
}

/// @brief How one map call cuts its input: its validated options and the automatic rule.
///
/// The rule, the only one (ThreadPool and Executor, map and parallel loops): without a
/// chunksize, an input of known size n over w workers gets ceil(n / (8 w)) elements per
/// chunk (16 w over ranks), between 1 and a cap: about eight chunks per worker leave room
/// for load balancing while the per-task cost stays negligible, and the cap bounds what one
/// task carries: kMaxAutoChunk (131,072) in one process, kMaxRemoteChunk (4,096) for an
/// Executor, whose chunk is one message each way (small chunks keep results streaming back
/// and the ranks balanced: measured in docs/performance.md). An input of unknown size (a
/// filtered view, an endless iota) gets 1, 2, 4, ... elements, doubling up to the cap, so
/// the first results come fast and later chunks amortise their cost. A given chunksize
/// larger than the input is clamped to it (clamp_chunksize).
struct Chunking {
  static constexpr std::size_t kChunksPerWorker = 8;
  static constexpr std::size_t kMaxAutoChunk = std::size_t{1} << 17;
  static constexpr std::size_t kMaxRemoteChunk = 4096;
  /// The rule's two numbers where chunks run: in one process, or over ranks (an Executor:
  /// twice the chunks per worker and a small cap, so that ranks that answer late still get
  /// their share; an automatic map of 10^6 ints over 2 ranks ran at 0.42x the best
  /// hand-picked chunksize with the in-process numbers, 1.0x with these).
  struct Shape {
    std::size_t per_worker;
    std::size_t cap;
  };
  static constexpr Shape kInProcess{kChunksPerWorker, kMaxAutoChunk};
  static constexpr Shape kAcrossRanks{2 * kChunksPerWorker, kMaxRemoteChunk};

  std::size_t chunksize = 1;  // the size of the next chunk
  bool grow = false;          // unknown size, automatic: chunksize doubles after each chunk
  std::size_t buffersize = std::numeric_limits<std::size_t>::max();  // chunks in flight
  Deadline deadline;
  std::size_t cap = kMaxAutoChunk;   // the largest automatic chunk
  std::optional<std::size_t> total;  // the input's size, when known
  std::optional<Progress> progress;  // MapOptions::progress
  bool across_ranks = false;         // an Executor's map (kAcrossRanks): its caller draws the bar

  /// The rule for an input of @p n elements over @p workers.
  static std::size_t auto_size(std::size_t n, std::size_t workers, Shape shape = kInProcess) noexcept {
    const std::size_t chunks = std::max<std::size_t>(1, workers) * shape.per_worker;
    return std::clamp<std::size_t>(n / chunks + (n % chunks != 0), 1, shape.cap);
  }

  /// The rule for a chunksize (or grain) the caller gave, the same for every map and loop
  /// of ThreadPool and Executor: any value >= 1 is accepted, as Python's map accepts any
  /// chunksize, and one larger than the input's size @p n, when known, is clamped to n (and
  /// to 1 for an empty input). Nothing is ever sized by the requested value itself, so
  /// SIZE_MAX or 2^40 means "one chunk", not std::length_error or std::bad_alloc.
  static constexpr std::size_t clamp_chunksize(std::size_t chunksize, std::optional<std::size_t> n) noexcept {
    if (n && chunksize > *n) return std::max<std::size_t>(*n, 1);
    return chunksize;
  }

  /// Validates @p o for @p api (ValueError naming the call and the value, before any work
  /// is submitted) and applies the rule to @p range (its size when it is a sized range).
  template <class Range>
  static Chunking make(const MapOptions& o, Range& range, std::size_t workers, const char* api,
                       Shape shape = kInProcess) {
    std::optional<std::size_t> n;
    if constexpr (std::ranges::sized_range<Range>) n = static_cast<std::size_t>(std::ranges::size(range));
    check_positive(o.chunksize, api, "chunksize");
    check_positive(o.buffersize, api, "buffersize");
    Chunking c;
    c.cap = shape.cap;
    c.total = n;
    c.progress = o.progress;
    c.across_ranks = shape.per_worker == kAcrossRanks.per_worker && shape.cap == kAcrossRanks.cap;
    c.deadline = Deadline::after(o.timeout, api);
    if (o.buffersize) c.buffersize = *o.buffersize;
    if (o.chunksize) {
      c.chunksize = clamp_chunksize(*o.chunksize, n);
    } else if (n) {
      c.chunksize = auto_size(*n, workers, shape);
    } else {
      c.grow = true;
    }
    return c;
  }

  /// True when a buffersize was given: the input is read as results are taken.
  bool lazy() const noexcept { return buffersize != std::numeric_limits<std::size_t>::max(); }

  /// The size of the next chunk of an input read in order.
  std::size_t next() noexcept {
    const std::size_t c = chunksize;
    if (grow) chunksize = std::min(chunksize * 2, cap);
    return c;
  }
};

}  // namespace detail
}  // namespace troupe
