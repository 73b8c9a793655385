#pragma once
/// @file
/// @brief The progress bar of long maps (MapOptions::progress, `TROUPE_PROGRESS`;
/// docs/tracing.md): items done of the total, rate and ETA on stderr, redrawn in place.
///
/// One mechanism for ThreadPool::map, Executor::map (and their variants, fed by MapResult as
/// results are taken, as tqdm counts an iterator) and Executor::map_reduce (fed as chunks
/// complete).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "troupe/pool/chunking.hpp"

namespace troupe::detail {

/// @brief A bar on one stream: `api: 1234/10000 items (12%), 5678/s, ETA 1.5 s`, redrawn
/// with '\r' at most every 100 ms, then one final line ending in '\n'.
class ProgressBar {
 public:
  /// @brief The bar a map shows, or nullptr for none.
  /// @param mode the map's option; nullopt: `TROUPE_PROGRESS` (troupe::settings()).
  /// @param api the call, first on the line ("Executor::map").
  /// @param total the input's size when known.
  /// @param submitting_rank true for an Executor's map (drawn where it is called, the root);
  ///        false for a ThreadPool's (drawn on rank 0 only while a Runtime lives).
  /// @param out the stream (stderr); Progress::terminal draws only when it is a terminal.
  /// @note Thread-safe, never blocks; reads settings() (throws ValueError on a bad knob).
  static std::shared_ptr<ProgressBar> open(std::optional<Progress> mode, const char* api,
                                           std::optional<std::size_t> total, bool submitting_rank,
                                           std::FILE* out = stderr);

  /// @brief A bar that always draws on @p out (open() decides whether one is made).
  ProgressBar(const char* api, std::optional<std::size_t> total, std::FILE* out);
  /// @brief Ends the bar (finish()) if it was not ended.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// @brief Counts @p items more as done; redraws if 100 ms passed since the last drawing.
  /// @note Thread-safe (any thread that completes work may call it), never blocks: a thread
  ///       that finds another drawing skips the drawing.
  void add(std::size_t items) noexcept;

  /// @brief Draws the final line once (`... 10000/10000 items (100%) in 1.76 s, 5678/s`).
  /// @note Thread-safe; later calls do nothing.
  void finish() noexcept;

  /// @brief Items counted so far.
  std::size_t done() const noexcept { return done_.load(std::memory_order_relaxed); }

 private:
  void draw(bool final) noexcept;

  std::string api_;
  std::optional<std::size_t> total_;
  std::FILE* out_;
  std::int64_t start_ns_;
  std::atomic<std::size_t> done_{0};
  std::atomic<std::int64_t> next_draw_ns_{0};
  std::atomic<bool> finished_{false};
  std::mutex draw_mu_;
  std::size_t last_width_ = 0;  // under draw_mu_
};

}  // namespace troupe::detail
