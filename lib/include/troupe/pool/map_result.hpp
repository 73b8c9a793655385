#pragma once
/// @file
/// @brief MapResult<R>: the lazily consumed result of ThreadPool::map / map_unordered.

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
#include "troupe/future/future.hpp"

namespace troupe {

namespace detail {
/// The results of one chunk: values in element order, then the first exception (if any).
template <class R>
struct ChunkResult {
  std::vector<R> values;
  std::exception_ptr error;
};

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
/// Range-for works too. Destroying a MapResult cancels the chunks not yet started and
/// waits for the running ones, which may still read the caller's input range: a task that
/// never ends makes the destructor wait for it. One consumer at a time.
///
/// @tparam R the element result type (void functions give std::monostate).
template <class R>
class MapResult {
 public:
  using value_type = R;
  MapResult() = default;
  MapResult(std::vector<Future<detail::ChunkResult<R>>> chunks, Deadline deadline, bool unordered)
      : chunks_(std::move(chunks)), deadline_(deadline) {
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
  MapResult(MapResult&&) noexcept = default;
  MapResult& operator=(MapResult&& o) noexcept {
    if (this != &o) {
      drop();
      chunks_ = std::move(o.chunks_);
      order_ = std::move(o.order_);
      deadline_ = o.deadline_;
      chunk_pos_ = o.chunk_pos_;
      elem_pos_ = o.elem_pos_;
      current_ = o.current_;
      finished_ = o.finished_;
    }
    return *this;
  }
  ~MapResult() { drop(); }

  /// @brief The next result, or nullopt when all were returned.
  /// @throws the element's exception; TimeoutError; CancelledError if a chunk was cancelled.
  std::optional<R> next() {
    for (;;) {
      if (finished_) return std::nullopt;
      if (current_) {
        auto& chunk = *current_;
        if (elem_pos_ < chunk.values.size()) return std::move(chunk.values[elem_pos_++]);
        current_ = nullptr;
        if (chunk.error) {
          finished_ = true;
          abandon();
          std::rethrow_exception(chunk.error);
        }
      }
      if (chunk_pos_ == chunks_.size()) {
        finished_ = true;
        return std::nullopt;
      }
      Future<detail::ChunkResult<R>>* f = nullptr;
      if (order_) {
        if (!order_->notifier.wait([&] { return order_->count.load(std::memory_order_acquire) > chunk_pos_; },
                                   deadline_, nullptr, "map_unordered")) {
          fail_timeout();
        }
        std::size_t idx;
        {
          std::lock_guard lock(order_->mu);
          idx = order_->order[chunk_pos_];
        }
        f = &chunks_[idx];
      } else {
        f = &chunks_[chunk_pos_];
        if (!f->state()->wait(deadline_)) fail_timeout();
      }
      ++chunk_pos_;
      elem_pos_ = 0;
      try {
        current_ = &const_cast<detail::ChunkResult<R>&>(f->result());
      } catch (...) {
        finished_ = true;
        abandon();
        throw;
      }
    }
  }

  /// @brief All remaining results, in iteration order.
  std::vector<R> to_vector() {
    std::vector<R> out;
    while (auto v = next()) out.push_back(std::move(*v));
    return out;
  }

  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(MapResult* owner) : owner_(owner) { ++*this; }
    R& operator*() { return *cur_; }
    R* operator->() { return &*cur_; }
    iterator& operator++() {
      cur_ = owner_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.cur_.has_value(); }

   private:
    MapResult* owner_ = nullptr;
    std::optional<R> cur_;
  };
  /// @brief Starts iteration (computes the first element: may throw).
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

  /// @brief The per-chunk futures (for wait / as_completed on a map).
  const std::vector<Future<detail::ChunkResult<R>>>& chunk_futures() const noexcept { return chunks_; }

 private:
  [[noreturn]] void fail_timeout() {
    finished_ = true;
    const auto left = chunks_.size() - chunk_pos_;
    abandon();
    throw TimeoutError("map: timed out with " + std::to_string(left) + " chunk(s) of results outstanding");
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

  std::vector<Future<detail::ChunkResult<R>>> chunks_;
  std::shared_ptr<detail::CompletionOrder> order_;
  Deadline deadline_;
  std::size_t chunk_pos_ = 0;
  std::size_t elem_pos_ = 0;
  detail::ChunkResult<R>* current_ = nullptr;
  bool finished_ = false;
};

}  // namespace troupe
