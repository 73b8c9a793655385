#pragma once
/// @file
/// @brief MapResult<R>: the lazily consumed result of ThreadPool::map / map_unordered.

#include <atomic>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/detail/notifier.hpp"
#include "troupe/future/detail/pull_iterator.hpp"
#include "troupe/future/future.hpp"

namespace troupe {

namespace detail {
/// How one chunk ended: how many of its elements were computed (in order), then the
/// first exception, if any. The values themselves are written in place.
struct ChunkStatus {
  std::size_t computed = 0;
  std::exception_ptr error;
};

/// Result slots, one per input element, written by the chunks in place. Default
/// constructible types are stored as themselves (so a finished ordered map hands its
/// vector over without a copy); others, and bool (vector<bool> packs bits, which
/// concurrent writers would tear), as optional.
template <class R>
using map_slot_t = std::conditional_t<std::is_default_constructible_v<R> && !std::is_same_v<R, bool>, R, std::optional<R>>;

struct CompletionOrder {
  std::mutex mu;
  std::vector<std::size_t> order;
  std::atomic<std::size_t> count{0};
  Notifier notifier;
};
}  // namespace detail

/// @brief The results of a map, consumed in order (map) or in completion order
/// (map_unordered), as Python's map iterator.
///
/// `next()` returns the next result, nullopt at the end; it rethrows the exception of an
/// element when that element is reached (the iteration then ends) and throws
/// TimeoutError once the map's timeout has passed (chunks not started are then cancelled).
/// `to_vector()` collects the rest; for an ordered map consumed from the start it hands
/// over the result storage without copying. Range-for works too. Destroying a MapResult
/// cancels the chunks not yet started and waits for the running ones, which may still read
/// the caller's input range: a task that never ends makes the destructor wait for it.
/// One consumer at a time.
///
/// @tparam R the element result type (void functions give std::monostate).
template <class R>
class MapResult {
  using Slot = detail::map_slot_t<R>;

 public:
  using value_type = R;
  MapResult() = default;
  /// @internal Built by ThreadPool::map.
  MapResult(std::shared_ptr<std::vector<Slot>> slots, std::size_t chunksize,
            std::vector<Future<detail::ChunkStatus>> chunks, Deadline deadline, bool unordered)
      : slots_(std::move(slots)), chunksize_(chunksize), chunks_(std::move(chunks)), deadline_(deadline) {
    if (unordered) {
      order_ = std::make_shared<detail::CompletionOrder>();
      for (std::size_t i = 0; i < chunks_.size(); ++i) {
        chunks_[i].add_done_callback([o = order_, i] {
          {
            std::lock_guard lock(o->mu);
            o->order.push_back(i);
          }
          o->count.fetch_add(1, std::memory_order_seq_cst);
          o->notifier.notify_all();
        });
      }
    }
  }
  MapResult(MapResult&& o) noexcept { take(o); }
  MapResult& operator=(MapResult&& o) noexcept {
    if (this != &o) {
      drop();
      take(o);
    }
    return *this;
  }
  ~MapResult() { drop(); }

  /// @brief The next result, or nullopt when all were returned.
  /// @throws the element's exception; TimeoutError; CancelledError if a chunk was cancelled.
  std::optional<R> next() {
    if (R* p = advance()) return std::move(*p);
    return std::nullopt;
  }

  /// @brief All remaining results, in iteration order.
  /// @throws as next(), at the first failing element.
  std::vector<R> to_vector() {
    if constexpr (std::is_same_v<Slot, R>) {
      if (!order_ && chunk_pos_ == 0 && !finished_) {
        // Ordered and untouched: wait for every chunk in order, then hand the storage over.
        for (std::size_t c = 0; c < chunks_.size(); ++c) {
          if (!chunks_[c].state()->wait(deadline_)) fail_timeout(c);
          const detail::ChunkStatus* st = nullptr;
          try {
            st = &chunks_[c].result();
          } catch (...) {
            fail();
          }
          if (st->error) {
            // Yield the elements before the failure, as iteration would, then throw.
            chunk_pos_ = c;
            break;
          }
        }
        if (chunk_pos_ == 0 && !finished_) {
          finished_ = true;
          return std::move(*slots_);
        }
        // Fall through: a chunk failed; iterate so that the exception surfaces in place.
        chunk_pos_ = 0;
      }
    }
    std::vector<R> out;
    while (R* p = advance()) out.push_back(std::move(*p));
    return out;
  }

  using iterator = detail::PullIterator<MapResult, R>;
  /// @brief Starts iteration (waits for the first element: may throw).
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

  /// @brief The per-chunk futures (for wait / as_completed on a map).
  const std::vector<Future<detail::ChunkStatus>>& chunk_futures() const noexcept { return chunks_; }

 private:
  friend class detail::PullIterator<MapResult, R>;
  // Pointer to the next result slot, nullptr at the end.
  R* advance() {
    for (;;) {
      if (finished_) return nullptr;
      if (in_chunk_) {
        if (elem_ < chunk_end_) {
          Slot& s = (*slots_)[elem_++];
          if constexpr (std::is_same_v<Slot, R>) {
            return &s;
          } else {
            return &*s;
          }
        }
        in_chunk_ = false;
        if (chunk_error_) {
          finished_ = true;
          abandon();
          std::rethrow_exception(std::exchange(chunk_error_, nullptr));
        }
      }
      if (chunk_pos_ == chunks_.size()) {
        finished_ = true;
        return nullptr;
      }
      std::size_t idx = chunk_pos_;
      if (order_) {
        if (!order_->notifier.wait([&] { return order_->count.load(std::memory_order_acquire) > chunk_pos_; },
                                   deadline_, nullptr, "map_unordered")) {
          fail_timeout(chunk_pos_);
        }
        std::lock_guard lock(order_->mu);
        idx = order_->order[chunk_pos_];
      } else if (!chunks_[idx].state()->wait(deadline_)) {
        fail_timeout(chunk_pos_);
      }
      ++chunk_pos_;
      const detail::ChunkStatus* st = nullptr;
      try {
        st = &chunks_[idx].result();
      } catch (...) {
        fail();
      }
      elem_ = idx * chunksize_;
      chunk_end_ = elem_ + st->computed;
      chunk_error_ = st->error;
      in_chunk_ = true;
    }
  }

  [[noreturn]] void fail() {
    finished_ = true;
    abandon();
    throw;
  }
  [[noreturn]] void fail_timeout(std::size_t at) {
    finished_ = true;
    const auto left = chunks_.size() - at;
    abandon();
    throw TimeoutError("map: timed out with " + std::to_string(left) + " chunk(s) of results outstanding");
  }
  void take(MapResult& o) noexcept {
    slots_ = std::move(o.slots_);
    chunksize_ = o.chunksize_;
    chunks_ = std::move(o.chunks_);
    order_ = std::move(o.order_);
    deadline_ = o.deadline_;
    chunk_pos_ = std::exchange(o.chunk_pos_, 0);
    elem_ = o.elem_;
    chunk_end_ = o.chunk_end_;
    in_chunk_ = std::exchange(o.in_chunk_, false);
    chunk_error_ = std::move(o.chunk_error_);
    finished_ = std::exchange(o.finished_, true);
  }
  // Running chunks may still read the caller's input range: cancel the rest, await these.
  void drop() noexcept {
    abandon();
    for (auto& f : chunks_) {
      if (f.valid()) f.state()->wait(Deadline{});
    }
  }
  // Cancel what has not started (after an error, a timeout or when dropped).
  void abandon() noexcept {
    for (auto& f : chunks_) {
      if (f.valid() && !f.done()) f.cancel();
    }
  }

  std::shared_ptr<std::vector<Slot>> slots_;
  std::size_t chunksize_ = 1;
  std::vector<Future<detail::ChunkStatus>> chunks_;
  std::shared_ptr<detail::CompletionOrder> order_;
  Deadline deadline_;
  std::size_t chunk_pos_ = 0;
  std::size_t elem_ = 0;
  std::size_t chunk_end_ = 0;
  bool in_chunk_ = false;
  std::exception_ptr chunk_error_;
  bool finished_ = false;
};

}  // namespace troupe
