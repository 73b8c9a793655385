#pragma once
/// @file
/// @brief MapResult<R>: the result stream of every map (ThreadPool and Executor), consumed
/// in input or completion order, eagerly submitted or lazily read (buffersize).

#include <atomic>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/detail/notifier.hpp"
#include "troupe/future/detail/pull_iterator.hpp"
#include "troupe/future/future.hpp"
#include "troupe/pool/chunking.hpp"
#include "troupe/pool/detail/progress.hpp"

namespace troupe {

namespace detail {
/// Result slots, one per input element, written by the chunks in place. Default
/// constructible types are stored as themselves (so a finished ordered map hands its
/// vector over without a copy); others, and bool (vector<bool> packs bits, which
/// concurrent writers would tear), as optional.
template <class R>
using map_slot_t =
    std::conditional_t<std::is_default_constructible_v<R> && !std::is_same_v<R, bool>, R, std::optional<R>>;

/// How one chunk of a map ended: the values it computed, in input order, then its first
/// exception. A chunk either returns its values (`values`: Executor chunks, lazy pool
/// chunks) or writes them into the map's slots (`computed` of them from `first`).
template <class R>
struct ChunkResult {
  std::vector<R> values;
  std::size_t first = 0;
  std::size_t computed = 0;
  bool failed = false;       // an element threw: the iteration ends after these values
  std::exception_ptr error;  // that exception (the Executor sends it as a record)
};

/// Applies @p f to @p items in order, stopping at the first exception.
template <class R, class F, class Items>
ChunkResult<R> run_chunk(F& f, Items& items) {
  ChunkResult<R> out;
  out.values.reserve(std::size(items));
  try {
    for (auto& x : items) {
      if constexpr (std::is_void_v<std::invoke_result_t<F&, decltype(x)>>) {
        f(x);
        out.values.emplace_back();
      } else {
        out.values.push_back(f(x));
      }
    }
  } catch (...) {
    out.failed = true;
    out.error = std::current_exception();
  }
  return out;
}

/// An input read chunk by chunk, in order, as the stream asks for more: a reference to an
/// lvalue range, or the moved rvalue range itself.
template <class Range>
struct LazySource {
  using Elem = std::ranges::range_value_t<Range>;
  LazySource(Range&& r, const Chunking& c)
      : range(std::forward<Range>(r)), it(std::ranges::begin(range)), chunking(c) {}
  /// The next chunk's elements; empty at the end of the input.
  std::vector<Elem> take() {
    std::vector<Elem> out;
    const std::size_t want = chunking.next();
    // A sized input's chunksize is clamped to its size (Chunking::clamp_chunksize); an
    // unsized one may ask for any count, so its chunk grows as it is read.
    if constexpr (std::ranges::sized_range<Range>) {
      if (!chunking.grow) out.reserve(want);
    }
    for (; out.size() < want && it != std::ranges::end(range); ++it) {
      if constexpr (std::is_lvalue_reference_v<Range>) {
        out.push_back(*it);
      } else {
        out.push_back(std::ranges::iter_move(it));
      }
    }
    return out;
  }
  std::conditional_t<std::is_lvalue_reference_v<Range>, Range, std::remove_cvref_t<Range>> range;
  std::ranges::iterator_t<std::remove_reference_t<decltype(range)>> it;
  Chunking chunking;
};
}  // namespace detail

/// @brief The results of a map, as Python's map iterator: in input order (map, imap,
/// starmap) or in completion order, chunk by chunk (map_unordered, imap_unordered).
///
/// One implementation behind ThreadPool::map and Executor::map: the map submits chunks
/// through one callback (the pool to its workers, the executor over the ranks), and this
/// stream takes their results. Without a buffersize every chunk is submitted by the map
/// call; with one, at most that many are in flight and the input is read only as results
/// are taken, so huge or endless inputs work (Python 3.14 / mpi4py 4.1 `buffersize`).
///
/// `next()` returns the next result, nullopt at the end; an element's exception is
/// rethrown when that element is reached and ends the iteration; TimeoutError once the
/// map's timeout (one deadline for the whole iteration) has passed. `to_vector()` collects
/// the rest; an ordered ThreadPool map consumed from the start hands its result storage
/// over without a copy. Range-for works too. Abandoning the stream (destroying it, an
/// exception, a timeout) cancels the chunks not yet started; a ThreadPool map's
/// destructor also waits for its running chunks, which may still read the caller's input
/// (a task that never ends makes it wait for ever). One consumer at a time; not thread safe.
///
/// @tparam R the element result type (void functions give std::monostate).
template <class R>
class MapResult {
  using Slot = detail::map_slot_t<R>;
  using Chunk = detail::ChunkResult<R>;

 public:
  using value_type = R;
  /// @internal Submits the next chunk and returns the future of its results; nullopt at
  /// the end of the input.
  using Submit = std::function<std::optional<Future<Chunk>>()>;

  /// @brief An empty stream.
  MapResult() = default;
  /// @internal Built by ThreadPool::map and Executor::map. @p slots: where the chunks write
  /// their values in place (nullptr: they return them); @p wait_on_drop: the destructor
  /// waits for running chunks. Submits the first chunks (all of them without a buffersize).
  MapResult(Submit submit, const detail::Chunking& chunking, bool unordered, const char* api, bool wait_on_drop = false,
            std::shared_ptr<std::vector<Slot>> slots = nullptr)
      : s_(std::make_unique<State>()) {
    s_->submit = std::move(submit);
    s_->buffersize = chunking.buffersize;
    s_->deadline = chunking.deadline;
    s_->api = api;
    s_->wait_on_drop = wait_on_drop;
    s_->slots = std::move(slots);
    s_->bar = detail::ProgressBar::open(chunking.progress, api, chunking.total, chunking.across_ranks);
    if (unordered) s_->order = std::make_shared<Order>();
    s_->refill();
  }

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
      State* s = s_.get();
      if (s && s->slots && !s->order && s->taken == 0 && s->input_done && !s->finished) {
        // Ordered, untouched and complete: wait for every chunk, then hand the storage over
        // (or, if one failed, iterate below so that its exception surfaces in place).
        bool clean = true;
        for (auto& f : s->inflight) {
          if (!f.state()->wait(s->deadline)) s->fail_timeout();
          try {
            clean = !f.result().failed;
            if (s->bar) s->bar->add(f.result().computed);
          } catch (...) {
            clean = false;
          }
          if (!clean) break;
        }
        if (clean) {
          s->finished = true;
          if (s->bar) s->bar->finish();
          return std::move(*s->slots);
        }
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

  /// @brief The futures of the chunks submitted and not yet consumed (all of them right
  /// after a map without buffersize): for wait / as_completed / when_all on a map.
  std::vector<Future<Chunk>> chunk_futures() const {
    std::vector<Future<Chunk>> out;
    if (s_) {
      for (const auto& f : s_->inflight) {
        if (f.valid()) out.push_back(f);
      }
    }
    return out;
  }

 private:
  friend class detail::PullIterator<MapResult, R>;
  struct Order {  // chunk indices in completion order (map_unordered)
    std::mutex mu;
    std::deque<std::size_t> done;
    std::atomic<std::size_t> count{0};
    detail::Notifier notifier;
  };
  struct State {
    Submit submit;
    std::size_t buffersize = 0;
    Deadline deadline;
    const char* api = "map";
    bool wait_on_drop = false;
    std::shared_ptr<std::vector<Slot>> slots;
    std::shared_ptr<Order> order;
    // Chunks [base, base + inflight.size()) in submission order; a chunk taken out of
    // order (unordered) leaves an invalid future until the front moves past it.
    std::deque<Future<Chunk>> inflight;
    std::size_t base = 0;
    std::size_t active = 0;  // valid futures in inflight
    std::size_t taken = 0;   // chunks consumed
    Future<Chunk> current;   // the chunk being yielded (kept alive: its values are read in place)
    Chunk* cur = nullptr;
    std::size_t pos = 0, count = 0;
    bool input_done = false;
    bool finished = false;
    std::shared_ptr<detail::ProgressBar> bar;  // MapOptions::progress: fed as results are taken

    ~State() {
      abandon();
      if (wait_on_drop) {
        for (auto& f : inflight) {
          if (f.valid()) f.state()->wait(Deadline{});
        }
      }
    }
    void refill() {
      while (!input_done && active < buffersize) {
        std::optional<Future<Chunk>> f = submit();
        if (!f) {
          input_done = true;
          submit = nullptr;  // releases the input
          break;
        }
        if (order) {
          f->add_done_callback([o = order, idx = base + inflight.size()] {
            {
              std::lock_guard lock(o->mu);
              o->done.push_back(idx);
            }
            o->count.fetch_add(1, std::memory_order_seq_cst);
            o->notifier.notify_all();
          });
        }
        inflight.push_back(std::move(*f));
        ++active;
      }
    }
    // Takes the next chunk (in input or completion order) into `current`; false at the end.
    bool take_next() {
      cur = nullptr;
      pos = count = 0;
      if (active == 0) return false;
      if (order) {
        if (!order->notifier.wait([&] { return order->count.load(std::memory_order_acquire) > taken; }, deadline,
                                  nullptr, api)) {
          fail_timeout();
        }
        std::size_t idx;
        {
          std::lock_guard lock(order->mu);
          idx = order->done.front();
          order->done.pop_front();
        }
        current = std::move(inflight[idx - base]);
      } else {
        if (!inflight.front().state()->wait(deadline)) fail_timeout();
        current = std::move(inflight.front());
      }
      while (!inflight.empty() && !inflight.front().valid()) {
        inflight.pop_front();
        ++base;
      }
      --active;
      ++taken;
      try {
        // The one consumer owns the chunk's values: they are moved out where they lie.
        cur = const_cast<Chunk*>(&current.result());
        refill();
      } catch (...) {
        end();
        throw;
      }
      pos = 0;
      count = slots ? cur->computed : cur->values.size();
      if (bar) bar->add(count);
      return true;
    }
    [[noreturn]] void fail_timeout() {
      const std::size_t left = active;
      end();
      throw TimeoutError(std::string(api) + ": timed out with " + std::to_string(left) +
                         " chunk(s) of results outstanding");
    }
    // The iteration ends early: cancel what has not started, read no more input.
    void end() noexcept {
      finished = true;
      abandon();
    }
    void abandon() noexcept {
      for (auto& f : inflight) {
        if (f.valid() && !f.done()) f.cancel();
      }
      input_done = true;
    }
  };

  // Pointer to the next result, nullptr at the end.
  R* advance() {
    if (!s_) return nullptr;
    State& s = *s_;
    for (;;) {
      if (s.finished) return nullptr;
      if (s.pos < s.count) {
        const std::size_t k = s.pos++;
        if (!s.slots) return &s.cur->values[k];
        Slot& slot = (*s.slots)[s.cur->first + k];
        if constexpr (std::is_same_v<Slot, R>) {
          return &slot;
        } else {
          return &*slot;
        }
      }
      if (s.cur && s.cur->failed) {
        s.end();
        std::rethrow_exception(s.cur->error);
      }
      if (!s.take_next()) {
        s.finished = true;
        if (s.bar) s.bar->finish();
        return nullptr;
      }
    }
  }

  std::unique_ptr<State> s_;
};

}  // namespace troupe
