// The progress bar of long maps (troupe/pool/detail/progress.hpp, docs/tracing.md).
#include "troupe/pool/detail/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "troupe/core/config.hpp"
#include "troupe/runtime/runtime.hpp"

namespace troupe::detail {

namespace {

constexpr std::int64_t kRedrawNs = 100'000'000;  // at most 10 drawings a second

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "1.5 s", "2 min 5 s", "1 h 3 min".
std::string duration_text(double s) {
  char buf[48];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%d min %d s", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%d h %d min", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  }
  return buf;
}

}  // namespace

std::shared_ptr<ProgressBar> ProgressBar::open(std::optional<Progress> mode, const char* api,
                                               std::optional<std::size_t> total, bool submitting_rank, std::FILE* out) {
  const Progress m = mode ? *mode : static_cast<Progress>(std::min<std::size_t>(settings().progress, 2));
  if (m == Progress::off || out == nullptr) return nullptr;
  if (!submitting_rank) {  // a ThreadPool map runs on every rank: rank 0 speaks for them
    const Runtime* rt = Runtime::current();
    if (rt && rt->rank() != 0) return nullptr;
  }
  if (m == Progress::terminal && ::isatty(::fileno(out)) == 0) return nullptr;
  return std::make_shared<ProgressBar>(api, total, out);
}

ProgressBar::ProgressBar(const char* api, std::optional<std::size_t> total, std::FILE* out)
    : api_(api ? api : "map"), total_(total), out_(out), start_ns_(now_ns()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::add(std::size_t items) noexcept {
  done_.fetch_add(items, std::memory_order_relaxed);
  const std::int64_t t = now_ns();
  std::int64_t next = next_draw_ns_.load(std::memory_order_relaxed);
  if (t < next || finished_.load(std::memory_order_relaxed)) return;
  if (!next_draw_ns_.compare_exchange_strong(next, t + kRedrawNs, std::memory_order_relaxed)) return;
  draw(false);
}

void ProgressBar::finish() noexcept {
  if (finished_.exchange(true, std::memory_order_acq_rel)) return;
  draw(true);
}

void ProgressBar::draw(bool final) noexcept {
  std::unique_lock lock(draw_mu_, std::defer_lock);
  if (final) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return;
  }
  try {
    const std::size_t n = done_.load(std::memory_order_relaxed);
    const double secs = static_cast<double>(now_ns() - start_ns_) / 1e9;
    const double rate = secs > 0 ? static_cast<double>(n) / secs : 0.0;
    char buf[160];
    std::string line = api_ + ": " + std::to_string(n);
    if (total_) {
      line.append("/").append(std::to_string(*total_)).append(" items");
      const double pct = *total_ ? 100.0 * static_cast<double>(n) / static_cast<double>(*total_) : 100.0;
      std::snprintf(buf, sizeof buf, " (%.0f%%)", std::floor(pct));
      line += buf;
    } else {
      line += " items";
    }
    if (final) {
      std::snprintf(buf, sizeof buf, " in %s, %.1f items/s", duration_text(secs).c_str(), rate);
      line += buf;
      if (total_ && n < *total_) line += " (stopped early)";
    } else {
      std::snprintf(buf, sizeof buf, ", %.1f items/s", rate);
      line += buf;
      if (total_ && rate > 0 && n <= *total_) {
        line += ", ETA " + duration_text(static_cast<double>(*total_ - n) / rate);
      }
    }
    // Redrawn in place: '\r', the line, blanks over what a longer previous line left.
    std::string text(1, '\r');
    text.append(line);
    if (line.size() < last_width_) text.append(last_width_ - line.size(), ' ');
    last_width_ = line.size();
    if (final) text += '\n';
    std::fputs(text.c_str(), out_);
    std::fflush(out_);
  } catch (...) {  // no memory for a line: skip it
  }
}

}  // namespace troupe::detail
