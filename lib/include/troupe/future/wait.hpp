#pragma once
/// @file
/// @brief as_completed, wait (with ReturnWhen), when_all and when_any over troupe futures.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"
#include "troupe/future/detail/notifier.hpp"
#include "troupe/future/future.hpp"

namespace troupe {

/// @brief When wait() returns (concurrent.futures FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class ReturnWhen { FirstCompleted, FirstException, AllCompleted };

/// @brief Result of wait(): the futures that are done and those that are not (input order kept).
template <class T>
struct WaitResult {
  std::vector<Future<T>> done;
  std::vector<Future<T>> not_done;
};

namespace detail {
struct CompletionLog {
  std::mutex mu;
  std::vector<std::size_t> order;  // indices in completion order
  std::atomic<std::size_t> count{0};
  std::atomic<bool> any_error{false};
  Notifier notifier;
  void push(std::size_t i, bool error) {
    {
      std::lock_guard lock(mu);
      order.push_back(i);
    }
    if (error) any_error.store(true, std::memory_order_release);
    count.fetch_add(1, std::memory_order_seq_cst);
    notifier.notify_all();
  }
};
}  // namespace detail

/// @brief Yields the given futures as they complete (finished or cancelled).
///
/// Iterate with range-for or next(). Futures already done come first. When the timeout
/// passes before all are done, the iteration throws TimeoutError. Futures are yielded
/// once each, duplicates included. Not thread safe (one consumer), as a Python iterator.
///
/// @code
/// for (auto& f : troupe::as_completed(futures, 10s)) use(f.result());
/// @endcode
template <class T>
class AsCompleted {
 public:
  AsCompleted(std::vector<Future<T>> futures, Deadline deadline)
      : futures_(std::move(futures)), deadline_(deadline), log_(std::make_shared<detail::CompletionLog>()) {
    for (std::size_t i = 0; i < futures_.size(); ++i) {
      if (!futures_[i].valid()) throw ValueError("as_completed: future #" + std::to_string(i) + " has no state");
    }
    for (std::size_t i = 0; i < futures_.size(); ++i) {
      futures_[i].add_done_callback([log = log_, i](const Future<T>&) { log->push(i, false); });
    }
  }

  /// @brief The next future to complete, or nullopt when all were yielded.
  /// @throws TimeoutError when the deadline passes first.
  std::optional<Future<T>> next() {
    if (yielded_ == futures_.size()) return std::nullopt;
    if (!log_->notifier.wait([&] { return log_->count.load(std::memory_order_acquire) > yielded_; }, deadline_, nullptr,
                             "as_completed")) {
      throw TimeoutError("as_completed: " + std::to_string(futures_.size() - yielded_) + " (of " +
                         std::to_string(futures_.size()) + ") futures unfinished at the timeout");
    }
    std::size_t idx;
    {
      std::lock_guard lock(log_->mu);
      idx = log_->order[yielded_];
    }
    ++yielded_;
    return futures_[idx];
  }

  class iterator {
   public:
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(AsCompleted* owner) : owner_(owner) { ++*this; }
    Future<T>& operator*() { return *cur_; }
    Future<T>* operator->() { return &*cur_; }
    iterator& operator++() {
      cur_ = owner_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.cur_.has_value(); }

   private:
    AsCompleted* owner_ = nullptr;
    std::optional<Future<T>> cur_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::vector<Future<T>> futures_;
  Deadline deadline_;
  std::shared_ptr<detail::CompletionLog> log_;
  std::size_t yielded_ = 0;
};

/// @brief Futures in completion order, no time limit. See AsCompleted.
template <class T>
AsCompleted<T> as_completed(std::vector<Future<T>> futures) {
  return AsCompleted<T>(std::move(futures), Deadline{});
}
/// @brief Futures in completion order; TimeoutError once @p timeout has passed. See AsCompleted.
template <class T, class Rep, class Period>
AsCompleted<T> as_completed(std::vector<Future<T>> futures, std::chrono::duration<Rep, Period> timeout) {
  return AsCompleted<T>(std::move(futures), Deadline::after(timeout, "as_completed"));
}

namespace detail {
template <class T>
WaitResult<T> wait_impl(const std::vector<Future<T>>& futures, const Deadline& deadline, ReturnWhen when) {
  for (std::size_t i = 0; i < futures.size(); ++i) {
    if (!futures[i].valid()) throw ValueError("wait: future #" + std::to_string(i) + " has no state");
  }
  auto log = std::make_shared<CompletionLog>();
  for (std::size_t i = 0; i < futures.size(); ++i) {
    futures[i].add_done_callback(
        [log, i](const Future<T>& f) { log->push(i, !f.cancelled() && f.state()->has_error()); });
  }
  const std::size_t n = futures.size();
  log->notifier.wait(
      [&] {
        const auto c = log->count.load(std::memory_order_acquire);
        switch (when) {
          case ReturnWhen::FirstCompleted:
            return c >= 1 || n == 0;
          case ReturnWhen::FirstException:
            return c == n || log->any_error.load(std::memory_order_acquire);
          case ReturnWhen::AllCompleted:
            return c == n;
        }
        return true;
      },
      deadline, nullptr, "wait");
  WaitResult<T> out;
  for (const auto& f : futures) (f.done() ? out.done : out.not_done).push_back(f);
  return out;
}
}  // namespace detail

/// @brief Waits until @p when holds and splits the futures into done / not_done.
///
/// As concurrent.futures.wait, reaching the timeout does not throw: the sets are
/// returned as they are. A worker thread that calls it helps run pool tasks.
template <class T>
WaitResult<T> wait(const std::vector<Future<T>>& futures, ReturnWhen when = ReturnWhen::AllCompleted) {
  return detail::wait_impl(futures, Deadline{}, when);
}
/// @brief As wait(futures, when), returning at the latest after @p timeout.
/// @throws ValueError for a negative timeout.
template <class T, class Rep, class Period>
WaitResult<T> wait(const std::vector<Future<T>>& futures, std::chrono::duration<Rep, Period> timeout,
                   ReturnWhen when = ReturnWhen::AllCompleted) {
  return detail::wait_impl(futures, Deadline::after(timeout, "wait"), when);
}

/// @brief A future that is done when every input is done; its value is the inputs.
///
/// The inputs are kept by the returned future only once they are done (each input's
/// callback stores its own handle), so inputs that never finish and are dropped by everyone
/// else are freed rather than kept alive by a cycle through when_all.
template <class T>
Future<std::vector<Future<T>>> when_all(std::vector<Future<T>> futures) {
  Promise<std::vector<Future<T>>> promise;
  auto out = promise.get_future();
  if (futures.empty()) {
    promise.set_result(std::move(futures));
    return out;
  }
  for (auto& f : futures) {
    if (!f.valid()) throw ValueError("when_all: a future has no state");
  }
  struct Shared {
    std::vector<Future<T>> done;  // slot i written once, by input i's callback
    std::atomic<std::size_t> left;
    Promise<std::vector<Future<T>>> promise;
  };
  auto sh = std::make_shared<Shared>();
  sh->done.resize(futures.size());
  sh->left.store(futures.size());
  sh->promise = promise;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    futures[i].add_done_callback([sh, i](const Future<T>& f) {
      sh->done[i] = f;
      if (sh->left.fetch_sub(1, std::memory_order_acq_rel) == 1) sh->promise.set_result(std::move(sh->done));
    });
  }
  return out;
}

/// @brief A future done when every argument is done; its value is the tuple of them.
/// As the vector form, an input is kept only once it is done.
template <class... Ts>
Future<std::tuple<Future<Ts>...>> when_all(Future<Ts>... futures) {
  Promise<std::tuple<Future<Ts>...>> promise;
  auto out = promise.get_future();
  if constexpr (sizeof...(Ts) == 0) {
    promise.set_result();
  } else {
    ((futures.valid() ? void() : throw ValueError("when_all: a future has no state")), ...);
    struct Shared {
      std::tuple<Future<Ts>...> done;  // element I written once, by input I's callback
      std::atomic<std::size_t> left{sizeof...(Ts)};
      Promise<std::tuple<Future<Ts>...>> promise;
    };
    auto sh = std::make_shared<Shared>();
    sh->promise = promise;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      auto arm = [&]<std::size_t J>(std::integral_constant<std::size_t, J>, auto& f) {
        f.add_done_callback([sh](const auto& g) {
          std::get<J>(sh->done) = g;
          if (sh->left.fetch_sub(1, std::memory_order_acq_rel) == 1) sh->promise.set_result(std::move(sh->done));
        });
      };
      (arm(std::integral_constant<std::size_t, I>{}, futures), ...);
    }
    (std::index_sequence_for<Ts...>{});
  }
  return out;
}

/// @brief Value of when_any: which input finished first, and all inputs.
template <class T>
struct WhenAnyResult {
  std::size_t index;
  std::vector<Future<T>> futures;
};

/// @brief A future done when the first input is done.
/// @throws ValueError for an empty input (there would be nothing to wait for).
template <class T>
Future<WhenAnyResult<T>> when_any(std::vector<Future<T>> futures) {
  if (futures.empty()) throw ValueError("when_any: no futures given");
  for (auto& f : futures) {
    if (!f.valid()) throw ValueError("when_any: a future has no state");
  }
  struct Shared {
    std::vector<Future<T>> futures;
    std::atomic<bool> fired{false};
    std::optional<Promise<WhenAnyResult<T>>> promise{std::in_place};
  };
  auto sh = std::make_shared<Shared>();
  sh->futures = futures;
  auto out = sh->promise->get_future();
  for (std::size_t i = 0; i < futures.size(); ++i) {
    futures[i].add_done_callback([sh, i](const Future<T>&) {
      if (!sh->fired.exchange(true, std::memory_order_acq_rel)) {
        sh->promise->set_result(WhenAnyResult<T>{i, std::move(sh->futures)});
        // Break the cycle pending input -> callback -> shared -> promise -> result -> input.
        sh->promise.reset();
      }
    });
  }
  return out;
}

}  // namespace troupe
