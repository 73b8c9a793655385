#pragma once
/// @file
/// @brief StreamMap<R, Elem>: results of Executor::map and friends, consumed as a stream.

#include <atomic>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/detail/notifier.hpp"
#include "troupe/future/detail/pull_iterator.hpp"
#include "troupe/future/future.hpp"
#include "troupe/wire/exception.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe {

namespace detail {
/// The reply of one map chunk: values in order, then the first exception as a record.
template <class R>
struct ChunkReply {
  std::vector<R> values;
  std::vector<std::byte> error;  // encode_exception record (empty if it could not be encoded)
  bool failed = false;           // an element threw: the iteration ends after `values`
  std::exception_ptr local_error;  // the exception itself when the chunk ran here (not sent)
  TROUPE_FIELDS(values, error, failed)
};
}  // namespace detail

/// @brief The results of an Executor map: in input order (map, imap, starmap) or in
/// completion order (map_unordered, imap_unordered), as Python's map iterator.
///
/// The input is cut into chunks as it is consumed. Without a buffersize every chunk is
/// submitted at once (Python's Executor.map); with one, at most that many chunks are in
/// flight and the input is read only as results are taken, so huge or endless inputs work
/// (Python 3.14 / mpi4py 4.1 `buffersize`). `next()` returns the next result, nullopt at
/// the end; an element's exception is rethrown when that element is reached and ends the
/// iteration; TimeoutError once the timeout has passed. Abandoning the stream (destroying
/// it, an exception, a timeout) cancels the chunks not yet dispatched. One consumer.
template <class R, class Elem>
class StreamMap {
 public:
  using value_type = R;
  /// Fills the next chunk; false when the input is exhausted.
  using Producer = std::function<bool(std::vector<Elem>&)>;
  using Submitter = std::function<Future<detail::ChunkReply<R>>(std::vector<Elem>)>;

  StreamMap(Producer produce, Submitter submit, std::size_t buffersize, bool unordered, Deadline deadline)
      : produce_(std::move(produce)), submit_(std::move(submit)), buffersize_(buffersize),
        unordered_(unordered), deadline_(deadline), done_(std::make_shared<Done>()) {
    refill();
  }
  StreamMap(StreamMap&&) noexcept = default;
  StreamMap& operator=(StreamMap&& o) noexcept {
    if (this != &o) {
      abandon();
      produce_ = std::move(o.produce_);
      submit_ = std::move(o.submit_);
      buffersize_ = o.buffersize_;
      unordered_ = o.unordered_;
      deadline_ = o.deadline_;
      done_ = std::move(o.done_);
      next_index_ = o.next_index_;
      taken_ = o.taken_;
      inflight_ = std::move(o.inflight_);
      current_ = std::move(o.current_);
      pos_ = o.pos_;
      input_done_ = o.input_done_;
      finished_ = o.finished_;
      o.finished_ = true;
    }
    return *this;
  }
  ~StreamMap() { abandon(); }

  /// @brief The next result, or nullopt at the end.
  std::optional<R> next() {
    if (R* p = advance()) return std::move(*p);
    return std::nullopt;
  }
  /// @brief All remaining results.
  std::vector<R> to_vector() {
    std::vector<R> out;
    while (R* p = advance()) out.push_back(std::move(*p));
    return out;
  }
  /// @brief The futures of the chunks in flight (all of them, when no buffersize was given).
  std::vector<Future<detail::ChunkReply<R>>> chunk_futures() const {
    std::vector<Future<detail::ChunkReply<R>>> out;
    for (auto& [i, f] : inflight_) out.push_back(f);
    return out;
  }

  using iterator = detail::PullIterator<StreamMap, R>;
  /// @brief Starts iteration (waits for the first element: may throw).
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  friend class detail::PullIterator<StreamMap, R>;
  struct Done {
    std::mutex mu;
    std::deque<std::size_t> order;  // chunk indices in completion order
    std::atomic<std::size_t> count{0};
    detail::Notifier notifier;
  };

  void refill() {
    while (!input_done_ && inflight_.size() < buffersize_) {
      std::vector<Elem> chunk;
      if (!produce_(chunk)) {
        input_done_ = true;
        break;
      }
      if (chunk.empty()) continue;
      const std::size_t idx = next_index_++;
      auto f = submit_(std::move(chunk));
      if (unordered_) {
        f.add_done_callback([d = done_, idx] {
          {
            std::lock_guard lock(d->mu);
            d->order.push_back(idx);
          }
          d->count.fetch_add(1, std::memory_order_seq_cst);
          d->notifier.notify_all();
        });
      }
      inflight_.emplace_back(idx, std::move(f));
    }
  }

  R* advance() {
    for (;;) {
      if (finished_) return nullptr;
      if (current_ && pos_ < current_->values.size()) return &current_->values[pos_++];
      if (current_ && current_->failed) {
        finished_ = true;
        std::exception_ptr e = current_->local_error;
        if (e) {
          // ran on this rank: the original exception object
        } else if (current_->error.empty()) {
          e = std::make_exception_ptr(Error("map: an element threw, and its exception could not be sent back"));
        } else {
          wire::Reader in(current_->error);
          e = wire::decode_exception(in);
        }
        abandon();
        std::rethrow_exception(e);
      }
      current_.reset();
      if (inflight_.empty()) {
        finished_ = true;
        return nullptr;
      }
      std::size_t at = 0;
      if (unordered_) {
        if (!done_->notifier.wait([&] { return done_->count.load(std::memory_order_acquire) > taken_; }, deadline_,
                                  nullptr, "map_unordered")) {
          fail_timeout();
        }
        std::size_t idx;
        {
          std::lock_guard lock(done_->mu);
          idx = done_->order.front();
          done_->order.pop_front();
        }
        ++taken_;
        while (inflight_[at].first != idx) ++at;
      } else if (!inflight_.front().second.state()->wait(deadline_)) {
        fail_timeout();
      }
      auto f = std::move(inflight_[at].second);
      inflight_.erase(inflight_.begin() + static_cast<std::ptrdiff_t>(at));
      try {
        current_.emplace(f.result());
      } catch (...) {
        finished_ = true;
        abandon();
        throw;
      }
      pos_ = 0;
      refill();
    }
  }

  [[noreturn]] void fail_timeout() {
    finished_ = true;
    const auto left = inflight_.size();
    abandon();
    throw TimeoutError("map: timed out with " + std::to_string(left) + " chunk(s) of results outstanding");
  }
  void abandon() noexcept {
    for (auto& [i, f] : inflight_) {
      if (f.valid() && !f.done()) f.cancel();
    }
    input_done_ = true;
  }

  Producer produce_;
  Submitter submit_;
  std::size_t buffersize_ = std::numeric_limits<std::size_t>::max();
  bool unordered_ = false;
  Deadline deadline_;
  std::shared_ptr<Done> done_;
  std::deque<std::pair<std::size_t, Future<detail::ChunkReply<R>>>> inflight_;
  std::optional<detail::ChunkReply<R>> current_;
  std::size_t pos_ = 0;
  std::size_t next_index_ = 0;
  std::size_t taken_ = 0;
  bool input_done_ = false;
  bool finished_ = false;
};

}  // namespace troupe
