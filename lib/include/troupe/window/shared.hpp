#pragma once
/// @file
/// @brief troupe::SharedValue and troupe::SharedArray — Python's `multiprocessing.Value` and
/// `multiprocessing.Array` for the ranks of one node: one allocation
/// (`MPI_Win_allocate_shared` over the node communicator) read and written in place, with
/// zero copies, by every rank and thread of the node; atomic element operations for
/// arithmetic types; an optional process-shared lock (Python's `lock=True`, the default).
///
/// On a job over several nodes each node has its own copy (the ranks of a node share one;
/// the nodes share nothing). docs/shared-memory.md explains the mechanism, the
/// synchronization rule and the figures.
///
/// @code
/// troupe::Runtime rt;
/// troupe::SharedValue<double> num(0.0);                    // Value('d', 0.0)
/// std::vector<int> init{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
/// troupe::SharedArray<int> arr(init);                     // Array('i', range(10))
/// if (rt.node_rank() == 1) {
///   num.store(3.1415927);
///   for (auto& x : arr.span()) x = -x;
/// }
/// arr.barrier(std::chrono::seconds(10));  // every rank now sees the new values
/// @endcode

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <type_traits>

#include "troupe/core/deadline.hpp"

namespace troupe {

/// @brief How a SharedArray / SharedValue is made.
struct SharedOptions {
  /// @brief Make a process-shared lock for get_lock() (Python's `lock=True`). Without it
  /// (Python's `RawArray` / `RawValue`) get_lock() raises InvalidStateError.
  bool lock = true;
  /// @brief Longest wait for the other ranks of the node at construction; unset:
  /// troupe::settings().startup_timeout.
  std::optional<std::chrono::milliseconds> timeout = std::nullopt;
};

namespace detail {
class SharedSegment;
}

/// @brief The lock of a SharedArray / SharedValue (what get_lock() returns): a
/// non-recursive mutual-exclusion lock whose parties are every thread of every rank of the
/// node. It is a word in the shared segment (no message, no MPI call): taking a free lock
/// is one atomic compare-exchange; a waiter spins briefly, then sleeps on the word (a
/// process-shared futex) until the holder releases it.
///
/// Acquire/release order: the holder's writes before release() are visible to the next
/// holder after its acquire(), from any rank of the node; no sync() needed.
///
/// BasicLockable and Lockable (`std::lock_guard`, `std::unique_lock`, `std::scoped_lock`).
/// Thread safety: every member may be called from any thread of any rank of the node.
/// @note A rank that dies holding the lock leaves it held (the lock is not robust).
class SharedLock {
 public:
  /// @brief Blocks until the lock is taken (@p blocking), or tries once (!@p blocking).
  /// @return true when taken.
  /// @throws InvalidStateError when this thread holds it already (it would wait for itself)
  /// or after free().
  bool acquire(bool blocking = true);
  /// @brief Waits at most @p timeout (Python's `acquire(timeout=...)`).
  /// @return false when the timeout passed first.
  /// @throws ValueError for a negative timeout; as acquire().
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire(Deadline::after(timeout, "SharedLock::acquire"));
  }
  /// @brief Waits until @p deadline or a stop request on @p token.
  /// @return false when the deadline passed first.
  /// @throws CancelledError when @p token is stopped first; as acquire().
  bool acquire(const Deadline& deadline, CancellationToken token = {});
  /// @brief Releases the lock held by this thread. Never blocks.
  /// @throws InvalidStateError when the lock is not held, or is held by another thread or
  /// rank (its owner is named), or after free().
  void release();
  /// @brief True while some thread of some rank of the node holds it (a snapshot).
  bool locked() const;
  /// @brief True when the calling thread holds it.
  bool held_by_me() const;
  /// @brief BasicLockable: acquire().
  void lock() { acquire(); }
  /// @brief BasicLockable: release().
  void unlock() { release(); }
  /// @brief Lockable: acquire(false).
  bool try_lock() { return acquire(false); }

  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;

 private:
  friend class detail::SharedSegment;
  SharedLock(detail::SharedSegment* seg) noexcept : seg_(seg) {}
  detail::SharedSegment* seg_;
};

namespace detail {

/// @brief The untyped part of SharedArray: the window, the header with the lock word, the
/// element bytes. Defined in lib/src/window/shared.cpp.
class SharedSegment {
 public:
  /// @brief Collective over the node communicator of the current Runtime.
  /// @param fill writes the initial elements (called on node rank 0 only, before any rank
  /// may access them).
  SharedSegment(std::size_t count, std::size_t elem_size, const SharedOptions& opts,
                const std::function<void(std::byte* data)>& fill, const char* api);
  ~SharedSegment();
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;

  std::byte* data() const noexcept { return data_; }
  std::size_t count() const noexcept { return count_; }
  const char* api() const noexcept { return api_; }
  void check_live(const char* call) const;
  /// @brief InvalidStateError unless the calling thread may make MPI calls.
  void check_mpi_thread(const char* call) const;
  SharedLock& lock(const char* call);
  void sync(const char* call);
  void barrier(const Deadline& deadline, const char* call);
  void free(const Deadline& deadline, const char* call);
  bool freed() const noexcept;
  std::atomic<std::uint32_t>& lock_state() noexcept;
  std::atomic<std::uint64_t>& lock_owner() noexcept;
  [[noreturn]] static void throw_index(const char* call, std::size_t i, std::size_t n);
  static Deadline startup_deadline(const char* call);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::byte* data_ = nullptr;
  std::size_t count_ = 0;
  const char* api_;
  SharedLock lock_{this};
};

template <class T>
inline constexpr bool kSharedAtomic = (std::is_integral_v<T> ||
                                       std::is_floating_point_v<T>)&&!std::is_same_v<T, bool> &&
                                      std::atomic_ref<T>::is_always_lock_free &&
                                      alignof(T) >= std::atomic_ref<T>::required_alignment;

}  // namespace detail

/// @brief A fixed-length array of @p T shared by every rank of the node (Python's
/// `multiprocessing.Array`): one allocation in node rank 0's segment of a node-shared
/// window, reached by plain loads and stores from every rank and thread of the node.
///
/// Visibility: a plain store becomes visible to the other ranks after sync() on the writer
/// and on the reader together with some synchronization between them: get_lock() (which
/// orders by itself: no sync() needed inside the lock), an atomic of this array, or the
/// collective barrier(). The atomic members are sequentially consistent.
///
/// Thread safety: element access, the atomics, sync() and get_lock() may be used from any
/// thread of any rank of the node, concurrently (plain element writes race like any plain
/// memory; use the lock or the atomics). Construction, barrier() and free() are collective:
/// one thread per rank of the node, in the same order as the node's other collective troupe
/// objects, on a thread that may make MPI calls (any thread at MPI_THREAD_MULTIPLE, else
/// the thread that made the object: barrier() and free() raise InvalidStateError on another;
/// sync() there is a full memory fence without MPI_Win_sync, which is what MPI_Win_sync
/// amounts to on a node-shared window).
/// @tparam T trivially copyable (it lives in memory several processes map).
template <class T>
class SharedArray {
  static_assert(std::is_trivially_copyable_v<T>,
                "troupe::SharedArray<T> / SharedValue<T>: T must be trivially copyable (it lives in memory shared "
                "by several processes, copied bytewise, never constructed or destroyed there)");

 public:
  using value_type = T;

  /// @brief Collective: @p n elements, each `T{}`.
  /// @throws ValueError when the ranks of the node pass different lengths (on every rank);
  /// TimeoutError when a rank of the node does not come within the timeout; InvalidStateError
  /// without a live troupe::Runtime.
  explicit SharedArray(std::size_t n, SharedOptions opts = {}) : SharedArray(n, T{}, opts) {}
  /// @brief Collective: @p n copies of @p fill (node rank 0's @p fill is used). @throws as above.
  SharedArray(std::size_t n, const T& fill, SharedOptions opts = {})
      : seg_(std::make_unique<detail::SharedSegment>(
            n, sizeof(T), opts,
            [n, fill](std::byte* data) {
              for (std::size_t i = 0; i < n; ++i) std::memcpy(data + i * sizeof(T), &fill, sizeof(T));
            },
            kApi)) {}
  /// @brief Collective: a copy of @p values (Python's `Array('i', range(10))`); the length is
  /// values.size() on every rank, the contents node rank 0's. @throws as above.
  explicit SharedArray(std::span<const T> values, SharedOptions opts = {})
      : seg_(std::make_unique<detail::SharedSegment>(
            values.size(), sizeof(T), opts,
            [values](std::byte* data) {
              if (!values.empty()) std::memcpy(data, values.data(), values.size_bytes());
            },
            kApi)) {}
  /// @brief Frees the window collectively if free() was not called (bounded by the start-up
  /// timeout; see free()).
  ~SharedArray() = default;
  SharedArray(SharedArray&&) noexcept = default;
  SharedArray& operator=(SharedArray&&) noexcept = default;

  /// @brief The elements, in place (zero copy). Never blocks.
  /// @throws InvalidStateError after free().
  std::span<T> span() const {
    seg_->check_live("SharedArray::span");
    return {ptr(), seg_->count()};
  }
  /// @brief The first element's address. @throws InvalidStateError after free().
  T* data() const {
    seg_->check_live("SharedArray::data");
    return ptr();
  }
  /// @brief The length (same on every rank of the node). Never throws after free().
  std::size_t size() const noexcept { return seg_->count(); }
  /// @brief Element @p i, unchecked (like std::vector): no bounds check, no use-after-free
  /// check.
  T& operator[](std::size_t i) const noexcept { return ptr()[i]; }
  /// @brief Element @p i, checked.
  /// @throws IndexError "SharedArray::at: index i out of range for length n"; InvalidStateError
  /// after free().
  T& at(std::size_t i) const {
    check(i, "SharedArray::at");
    return ptr()[i];
  }

  /// @brief Atomically adds @p v to element @p i (`std::atomic_ref` on the shared memory:
  /// no MPI call). @return the value before. Any thread of any rank.
  /// @throws IndexError; InvalidStateError after free().
  T fetch_add(std::size_t i, T v) requires detail::kSharedAtomic<T> {
    check(i, "SharedArray::fetch_add");
    return std::atomic_ref<T>(ptr()[i]).fetch_add(v);
  }
  /// @brief Atomic load of element @p i. @throws as fetch_add().
  T load(std::size_t i) const requires detail::kSharedAtomic<T> {
    check(i, "SharedArray::load");
    return std::atomic_ref<T>(ptr()[i]).load();
  }
  /// @brief Atomic store to element @p i. @throws as fetch_add().
  void store(std::size_t i, T v) requires detail::kSharedAtomic<T> {
    check(i, "SharedArray::store");
    std::atomic_ref<T>(ptr()[i]).store(v);
  }
  /// @brief Writes @p desired to element @p i if it equals @p expected; otherwise loads it
  /// into @p expected. @return true when written. @throws as fetch_add().
  bool compare_exchange(std::size_t i, T& expected, T desired) requires detail::kSharedAtomic<T> {
    check(i, "SharedArray::compare_exchange");
    return std::atomic_ref<T>(ptr()[i]).compare_exchange_strong(expected, desired);
  }

  /// @brief The lock (Python's `get_lock()`), shared by the ranks of the node.
  /// @throws InvalidStateError when made with `lock = false`, or after free().
  SharedLock& get_lock() const { return seg_->lock("SharedArray::get_lock"); }
  /// @brief Runs @p fn while holding the lock (`with arr.get_lock(): ...`).
  /// @return what @p fn returns. @throws as get_lock() and whatever @p fn throws (the lock
  /// is released first).
  template <class Fn>
  decltype(auto) with_lock(Fn&& fn) const {
    SharedLock& l = get_lock();
    std::lock_guard<SharedLock> guard(l);
    return std::forward<Fn>(fn)();
  }

  /// @brief Memory synchronization (`MPI_Win_sync`, a full fence): call it after plain
  /// stores and before plain loads that another synchronization (barrier(), the lock, an
  /// atomic) orders. Never blocks. @throws InvalidStateError after free().
  void sync() const { seg_->sync("SharedArray::sync"); }
  /// @brief Collective over the ranks of the node: every plain store made before it by any
  /// rank is visible to every rank after it (sync + barrier + sync).
  /// @throws TimeoutError when a rank of the node does not arrive within @p timeout;
  /// InvalidStateError after free(), or from a thread that may not make MPI calls.
  template <class Rep, class Period>
  void barrier(std::chrono::duration<Rep, Period> timeout) const {
    seg_->barrier(Deadline::after(timeout, "SharedArray::barrier"), "SharedArray::barrier");
  }
  /// @brief Collective: frees the window once every rank of the node calls it (bounded by
  /// @p timeout); afterwards every member but size() raises InvalidStateError (operator[]
  /// excepted: unchecked). Spans and pointers taken before dangle. Idempotent.
  /// @throws TimeoutError when a rank of the node did not free it in time (the memory is
  /// then left allocated rather than hang).
  template <class Rep, class Period>
  void free(std::chrono::duration<Rep, Period> timeout) {
    seg_->free(Deadline::after(timeout, "SharedArray::free"), "SharedArray::free");
  }
  /// @brief free() within the start-up timeout.
  void free() { seg_->free(detail::SharedSegment::startup_deadline("SharedArray::free"), "SharedArray::free"); }
  /// @brief True after free() or the Runtime's release.
  bool freed() const noexcept { return seg_->freed(); }

 private:
  template <class>
  friend class SharedValue;
  static constexpr const char* kApi = "SharedArray";
  T* ptr() const noexcept { return reinterpret_cast<T*>(seg_->data()); }
  void check(std::size_t i, const char* call) const {
    seg_->check_live(call);
    if (i >= seg_->count()) detail::SharedSegment::throw_index(call, i, seg_->count());
  }
  std::unique_ptr<detail::SharedSegment> seg_;
};

/// @brief One value of @p T shared by every rank of the node (Python's
/// `multiprocessing.Value`): a SharedArray of length 1 with a value face. The rules of
/// SharedArray apply (visibility, thread safety, collectives).
template <class T>
class SharedValue {
 public:
  using value_type = T;

  /// @brief Collective: the value @p initial (node rank 0's).
  /// @throws TimeoutError; InvalidStateError without a live Runtime.
  explicit SharedValue(T initial = T{}, SharedOptions opts = {}) : arr_(1, initial, opts) {}

  /// @brief The value, in place (Python's `.value`): plain loads and stores.
  /// @throws InvalidStateError after free().
  T& value() const {
    arr_.seg_->check_live("SharedValue::value");
    return *arr_.ptr();
  }
  /// @brief Atomic load for a lock-free arithmetic @p T; otherwise a plain copy (take the
  /// lock around it if other ranks write). @throws InvalidStateError after free().
  T load() const {
    arr_.seg_->check_live("SharedValue::load");
    if constexpr (detail::kSharedAtomic<T>) {
      return std::atomic_ref<T>(*arr_.ptr()).load();
    } else {
      return *arr_.ptr();
    }
  }
  /// @brief Atomic store for a lock-free arithmetic @p T; otherwise a plain copy.
  /// @throws InvalidStateError after free().
  void store(const T& v) {
    arr_.seg_->check_live("SharedValue::store");
    if constexpr (detail::kSharedAtomic<T>) {
      std::atomic_ref<T>(*arr_.ptr()).store(v);
    } else {
      *arr_.ptr() = v;
    }
  }
  /// @brief Atomic add. @return the value before. @throws InvalidStateError after free().
  T fetch_add(T v) requires detail::kSharedAtomic<T> {
    arr_.seg_->check_live("SharedValue::fetch_add");
    return std::atomic_ref<T>(*arr_.ptr()).fetch_add(v);
  }
  /// @brief Atomic compare-exchange (see SharedArray::compare_exchange).
  /// @throws InvalidStateError after free().
  bool compare_exchange(T& expected, T desired) requires detail::kSharedAtomic<T> {
    arr_.seg_->check_live("SharedValue::compare_exchange");
    return std::atomic_ref<T>(*arr_.ptr()).compare_exchange_strong(expected, desired);
  }
  /// @brief The lock (Python's `get_lock()`). @throws InvalidStateError with `lock = false`.
  SharedLock& get_lock() const { return arr_.seg_->lock("SharedValue::get_lock"); }
  /// @brief Runs @p fn while holding the lock. @throws as get_lock() and whatever @p fn throws.
  template <class Fn>
  decltype(auto) with_lock(Fn&& fn) const {
    std::lock_guard<SharedLock> guard(get_lock());
    return std::forward<Fn>(fn)();
  }
  /// @brief See SharedArray::sync().
  void sync() const { arr_.seg_->sync("SharedValue::sync"); }
  /// @brief See SharedArray::barrier().
  template <class Rep, class Period>
  void barrier(std::chrono::duration<Rep, Period> timeout) const {
    arr_.seg_->barrier(Deadline::after(timeout, "SharedValue::barrier"), "SharedValue::barrier");
  }
  /// @brief See SharedArray::free().
  template <class Rep, class Period>
  void free(std::chrono::duration<Rep, Period> timeout) {
    arr_.seg_->free(Deadline::after(timeout, "SharedValue::free"), "SharedValue::free");
  }
  /// @brief free() within the start-up timeout.
  void free() { arr_.seg_->free(detail::SharedSegment::startup_deadline("SharedValue::free"), "SharedValue::free"); }
  /// @brief True after free() or the Runtime's release.
  bool freed() const noexcept { return arr_.freed(); }

 private:
  SharedArray<T> arr_;
};

}  // namespace troupe
