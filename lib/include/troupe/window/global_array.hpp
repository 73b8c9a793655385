#pragma once
/// @file
/// @brief troupe::GlobalArray<T> — one array distributed in blocks over every rank (an
/// mpi4py `MPI.Win` made typed and safe, DASH's `dash::Array`, UPC++ `global_ptr` + `rget`/
/// `rput`): this rank's block as a zero-copy span, any rank's part by one-sided RMA.
///
/// Mechanism (docs/global-array.md): one detail::RmaWindow (`MPI_Win_allocate`, one
/// `MPI_Win_lock_all` epoch for the array's life) over the hub's communicator, which holds
/// every rank of the Runtime. An operation is one MPI call per owner touched plus a flush;
/// the owner takes no part. The template is a thin typed face over
/// detail::GlobalArrayBase, which splits ranges by owner, checks bounds and makes the MPI
/// calls on bytes.

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/core/deadline.hpp"
#include "troupe/future/future.hpp"
#include "troupe/runtime/detail/rma_window.hpp"

namespace troupe {

/// @brief The reduction of GlobalArray::accumulate (MPI_SUM, MPI_MIN, MPI_MAX, MPI_REPLACE).
enum class AccumulateOp { Sum, Min, Max, Replace };

namespace detail {

class Hub;

/// @brief The byte-level, non-template part of every GlobalArray<T>: the block
/// distribution, bounds and thread checks, and the MPI calls. Elements are @p elem_size
/// bytes; @p elem_type is their MPI type for accumulate/fetch_op (MPI_DATATYPE_NULL for
/// non-arithmetic T: get/put then move MPI_BYTE).
class GlobalArrayBase {
 public:
  /// @brief Called once when every request of an asynchronous operation completed (on the
  /// engine's progress thread, or on the thread driving progress below MPI_THREAD_MULTIPLE),
  /// with nullptr or the error that stopped it.
  using Done = std::function<void(std::exception_ptr)>;

  /// @brief Collective over every rank of the live Runtime.
  /// @throws InvalidStateError without a live Runtime; ValueError when the ranks pass
  /// different lengths; TimeoutError when a rank does not come within the start-up timeout.
  GlobalArrayBase(std::size_t n, std::size_t elem_size, MPI_Datatype elem_type,
                  std::function<void(std::byte*, std::size_t)> init);
  /// @brief Waits (bounded) for this rank's asynchronous operations, then frees the window
  /// collectively (see RmaWindow::free).
  ~GlobalArrayBase();
  GlobalArrayBase(const GlobalArrayBase&) = delete;
  GlobalArrayBase& operator=(const GlobalArrayBase&) = delete;

  std::size_t size() const noexcept { return n_; }
  int rank() const noexcept { return rank_; }
  int ranks() const noexcept { return nranks_; }
  /// @brief First global index of rank @p r's block (r in [0, ranks()]; ranks() gives size()).
  std::size_t block_begin(int r) const noexcept {
    const auto ru = static_cast<std::size_t>(r);
    return ru * q_ + (ru < r_ ? ru : r_);
  }
  /// @brief Number of elements of rank @p r's block.
  std::size_t block_count(int r) const noexcept { return q_ + (static_cast<std::size_t>(r) < r_ ? 1 : 0); }
  /// @brief The rank holding element @p i (no bounds check).
  int owner_unchecked(std::size_t i) const noexcept {
    const std::size_t big = r_ * (q_ + 1);
    return i < big ? static_cast<int>(i / (q_ + 1)) : static_cast<int>(r_ + (i - big) / q_);
  }
  /// @brief Throws IndexError naming @p call unless i < size().
  void check_index(std::size_t i, const char* call) const {
    if (i >= n_) [[unlikely]] {
      throw_index(i, call);
    }
  }
  /// @brief Throws IndexError naming @p call unless [first, first + count) lies in the array.
  void check_range(std::size_t first, std::size_t count, const char* call) const {
    if (first > n_ || count > n_ - first) [[unlikely]] {
      throw_range(first, count, call);
    }
  }
  /// @brief Throws InvalidStateError naming @p call after free(), or from a thread that may
  /// not make MPI calls (below MPI_THREAD_MULTIPLE).
  void check_usable(const char* call) const;

  /// @brief check_usable() with the common case inline (live, MPI_THREAD_MULTIPLE).
  void check_usable_fast(const char* call) const {
    if (win_->freed() || (!multiple_ && !hub_may_call_mpi())) [[unlikely]] {
      check_usable(call);
    }
  }
  /// @brief One element: MPI_Get (or MPI_Put) + a flush of its owner; the hot path of
  /// get(i) / put(i, v), without the range split.
  void get_one(std::size_t i, void* out, const char* call) {
    check_usable_fast(call);
    check_index(i, call);
    const int target = owner_unchecked(i);
    rma_one(false, i - block_begin(target), out, target);
  }
  void put_one(std::size_t i, const void* in, const char* call) {
    check_usable_fast(call);
    check_index(i, call);
    const int target = owner_unchecked(i);
    rma_one(true, i - block_begin(target), const_cast<void*>(in), target);
  }

  /// @brief This rank's block (throws InvalidStateError after free).
  std::byte* local_bytes(const char* call) const;
  RmaWindow& window() const noexcept { return *win_; }

  /// @brief Reads [first, first + count) into @p out: one MPI_Get per owner, then a flush of
  /// each owner touched.
  void get(std::size_t first, std::size_t count, void* out, const char* call);
  /// @brief Writes [first, first + count) from @p in: one MPI_Put per owner, then flushes.
  void put(std::size_t first, std::size_t count, const void* in, const char* call);
  /// @brief MPI_Accumulate of [first, first + count) with @p op, then flushes.
  void accumulate(std::size_t first, std::size_t count, const void* in, MPI_Op op, const char* call);
  /// @brief MPI_Fetch_and_op on element @p i (+ flush), through RmaWindow::fetch_op.
  void fetch_op(std::size_t i, const void* operand, void* result, MPI_Op op, const char* call);
  /// @brief MPI_Compare_and_swap on element @p i as @p cas_type (+ flush).
  void compare_swap(std::size_t i, const void* desired, const void* expected, void* result, MPI_Datatype cas_type,
                    const char* call);
  /// @brief MPI_Rget of [first, first + count) into @p out (one request per owner, watched
  /// by the engine); @p done runs once all completed. @p out must live until then.
  void get_async(std::size_t first, std::size_t count, void* out, Done done, const char* call);
  /// @brief MPI_Rput of [first, first + count) from @p in (one request per owner).
  void put_async(std::size_t first, std::size_t count, const void* in, Done done, const char* call);
  /// @brief MPI_Rget_accumulate of one element (a non-blocking fetch_op).
  void fetch_op_async(std::size_t i, const void* operand, void* result, MPI_Op op, Done done, const char* call);
  /// @brief MPI_Win_flush_all.
  void flush(const char* call);
  /// @brief Collective RmaWindow::fence.
  void fence(const Deadline& deadline, const char* call);
  /// @brief Collective: waits for this rank's asynchronous operations, then frees.
  bool free(const Deadline& deadline) noexcept;

 private:
  struct Inflight;
  enum class Kind { Get, Put, Acc };
  [[noreturn]] void throw_index(std::size_t i, const char* call) const;
  [[noreturn]] void throw_range(std::size_t first, std::size_t count, const char* call) const;
  // Calls fn(owner, local index, first global index, count) for each owner's piece.
  template <class Fn>
  void for_each_piece(std::size_t first, std::size_t count, Fn&& fn) const;
  void transfer(Kind kind, std::size_t first, std::size_t count, void* buf, MPI_Op op);
  void async_transfer(bool is_get, std::size_t first, std::size_t count, void* buf, Done done, const char* call);
  bool wait_inflight(const Deadline& deadline) noexcept;
  bool hub_may_call_mpi() const noexcept;
  void rma_one(bool put, std::size_t disp, void* buf, int target);

  std::size_t n_ = 0;
  std::size_t elem_ = 1;
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
  std::size_t q_ = 0;  // n / P
  std::size_t r_ = 0;  // n % P: the first r_ ranks hold q_ + 1
  int rank_ = 0;
  int nranks_ = 1;
  bool multiple_ = false;  // MPI_THREAD_MULTIPLE: every thread may call MPI
  std::shared_ptr<Hub> hub_;
  std::unique_ptr<RmaWindow> win_;
  std::shared_ptr<Inflight> inflight_;
};

/// @brief The MPI op of @p op.
MPI_Op mpi_op_of(AccumulateOp op) noexcept;

}  // namespace detail

/// @brief An array of @p T distributed in blocks over every rank of the Runtime.
///
/// n elements over P ranks: rank r holds the contiguous block starting at offset(r) of
/// n / P elements, the first n % P ranks one more (DASH's BLOCKED pattern). `local()` is
/// this rank's block with zero copy; every other operation reaches any rank's part
/// one-sidedly (the owner takes no part and need not call MPI) and splits a range by
/// owner automatically: one MPI call per owner touched.
///
/// **Completion and visibility**:
/// - `get` returns when the data is here (MPI_Get + flush of each owner touched).
/// - `put`, `accumulate`, `fetch_add`, `compare_exchange` return when the update is done
///   at the target (the MPI call + a flush): any rank's next `get` sees it.
/// - `get_async` completes when the data is here. `put_async` completes when the origin
///   buffer was consumed (MPI_Rput's local completion); the data is at the target after
///   this rank's next `flush()` (or `fence()`). `fetch_add_async` completes with the old
///   value; the update is visible to others after `flush()`.
/// - A plain store into `local()` is visible to other ranks, and their earlier RMA writes
///   to this block visible in `local()`, after a collective `fence()`.
/// - Element-wise atomicity: `accumulate`, `fetch_add` and `compare_exchange` are atomic
///   with one another on the same element (MPI accumulate ordering); a `get` or `put`
///   racing with them on the same element, or two `put`s to the same element between
///   fences, give undefined values (MPI's conflicting accesses): use `atomic_load`.
///
/// **Threads**: every member may be called from any thread at MPI_THREAD_MULTIPLE. Below
/// it, the members that make MPI calls may be called only from the thread that built
/// troupe's first cross-rank object (InvalidStateError otherwise); size(), owner(),
/// local_index(), offset(), local_range() and local() never call MPI.
///
/// **Lifetime**: construction, fence() and free() are collective: every rank, in the same
/// order as its other cross-rank objects. Destruction frees if free() was not called
/// (collective, bounded). After free() (or the Runtime's release) every member that touches
/// the window raises InvalidStateError naming the call.
///
/// @code
/// troupe::Runtime rt(argc, argv);
/// troupe::GlobalArray<double> u(1'000'000);          // collective
/// for (auto& x : u.local()) x = rt.rank();           // my block, zero copy
/// u.fence();                                         // stores visible everywhere
/// std::vector<double> all = u.get(0, u.size());      // one Get per owner
/// u.fetch_add(0, 1.0);                               // remote atomic
/// @endcode
///
/// @tparam T trivially copyable; accumulate and fetch_add need an arithmetic T (not bool);
/// compare_exchange needs sizeof(T) in {1, 2, 4, 8} (compared bitwise, as std::atomic).
template <class T>
class GlobalArray {
  static_assert(std::is_trivially_copyable_v<T>,
                "troupe::GlobalArray<T>: T must be trivially copyable (its bytes move by one-sided MPI_Get/MPI_Put)");
  static constexpr bool kArithmetic = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

 public:
  using value_type = T;
  /// @brief The reduction of accumulate().
  using Op = AccumulateOp;

  /// @brief A zero-filled array of @p n elements over every rank. Collective.
  /// @throws InvalidStateError without a live Runtime; ValueError when the ranks pass
  /// different @p n (on every rank, naming the values); TimeoutError naming the ranks that
  /// did not build it within TROUPE_STARTUP_TIMEOUT_MS; MpiError.
  explicit GlobalArray(std::size_t n) : base_(n, sizeof(T), detail::mpi_type_of<T>(), {}) {}
  /// @brief An array of @p n copies of @p value. Collective; throws as GlobalArray(n).
  GlobalArray(std::size_t n, const T& value)
      : base_(n, sizeof(T), detail::mpi_type_of<T>(), [value](std::byte* p, std::size_t bytes) {
          for (std::size_t k = 0; k < bytes / sizeof(T); ++k) std::memcpy(p + k * sizeof(T), &value, sizeof(T));
        }) {}
  /// @brief Frees the window if free() was not called (collective, bounded; see free()).
  ~GlobalArray() = default;
  GlobalArray(const GlobalArray&) = delete;
  GlobalArray& operator=(const GlobalArray&) = delete;

  // --- distribution (no MPI call, never blocks) ---

  /// @brief The number of elements (the same on every rank).
  std::size_t size() const noexcept { return base_.size(); }
  /// @brief The rank that holds element @p i. @throws IndexError when i >= size().
  int owner(std::size_t i) const {
    base_.check_index(i, "GlobalArray::owner");
    return base_.owner_unchecked(i);
  }
  /// @brief The position of element @p i inside its owner's block. @throws IndexError.
  std::size_t local_index(std::size_t i) const {
    base_.check_index(i, "GlobalArray::local_index");
    return i - base_.block_begin(base_.owner_unchecked(i));
  }
  /// @brief The global index of this rank's first element.
  std::size_t offset() const noexcept { return base_.block_begin(base_.rank()); }
  /// @brief The global index of rank @p r's first element. @throws ValueError for a bad rank.
  std::size_t offset(int r) const {
    check_rank(r, "GlobalArray::offset");
    return base_.block_begin(r);
  }
  /// @brief [first, last) global indices of this rank's block.
  std::pair<std::size_t, std::size_t> local_range() const noexcept {
    return {base_.block_begin(base_.rank()), base_.block_begin(base_.rank() + 1)};
  }
  /// @brief [first, last) global indices of rank @p r's block. @throws ValueError for a bad rank.
  std::pair<std::size_t, std::size_t> local_range(int r) const {
    check_rank(r, "GlobalArray::local_range");
    return {base_.block_begin(r), base_.block_begin(r + 1)};
  }
  /// @brief This rank's block, zero copy (plain loads and stores; see the visibility rules).
  /// @throws InvalidStateError after free().
  std::span<T> local() const {
    return {reinterpret_cast<T*>(base_.local_bytes("GlobalArray::local")), base_.block_count(base_.rank())};
  }

  // --- blocking one-sided operations (any thread at MULTIPLE; see the class note) ---

  /// @brief Element @p i, from whichever rank holds it; returns when the value is here.
  /// @throws IndexError when i >= size(); InvalidStateError after free() or from a thread
  /// that may not call MPI; MpiError.
  T get(std::size_t i) {
    T v;
    base_.get_one(i, &v, "GlobalArray::get");
    return v;
  }
  /// @brief Reads [first, first + out.size()) into @p out (one MPI_Get per owner touched).
  /// @throws IndexError when the range leaves the array; as get(i).
  void get(std::size_t first, std::span<T> out) { base_.get(first, out.size(), out.data(), "GlobalArray::get"); }
  /// @brief [first, first + count) as a vector. @throws as get(first, out).
  std::vector<T> get(std::size_t first, std::size_t count) {
    base_.check_range(first, count, "GlobalArray::get");
    std::vector<T> out(count);
    base_.get(first, count, out.data(), "GlobalArray::get");
    return out;
  }
  /// @brief Writes @p value to element @p i; returns when it is at the target (put + flush).
  /// @throws as get(i).
  void put(std::size_t i, const T& value) { base_.put_one(i, &value, "GlobalArray::put"); }
  /// @brief Writes @p values to [first, first + values.size()) (one MPI_Put per owner
  /// touched, then a flush of each); returns when the data is at the targets.
  /// @throws IndexError when the range leaves the array; as get(i).
  void put(std::size_t first, std::span<const T> values) {
    base_.put(first, values.size(), values.data(), "GlobalArray::put");
  }
  /// @brief Combines @p value into element @p i with @p op (atomic per element with the
  /// other accumulates and fetch_adds); returns when done at the target. Arithmetic T.
  /// @throws as get(i).
  void accumulate(std::size_t i, const T& value, Op op = Op::Sum) {
    static_assert(kArithmetic, "troupe::GlobalArray<T>::accumulate needs an arithmetic T (not bool)");
    base_.check_index(i, "GlobalArray::accumulate");
    base_.accumulate(i, 1, &value, detail::mpi_op_of(op), "GlobalArray::accumulate");
  }
  /// @brief Combines @p values element-wise into [first, first + values.size()) with @p op
  /// (one MPI_Accumulate per owner touched). Arithmetic T. @throws IndexError; as get(i).
  void accumulate(std::size_t first, std::span<const T> values, Op op = Op::Sum) {
    static_assert(kArithmetic, "troupe::GlobalArray<T>::accumulate needs an arithmetic T (not bool)");
    base_.accumulate(first, values.size(), values.data(), detail::mpi_op_of(op), "GlobalArray::accumulate");
  }
  /// @brief Adds @p delta to element @p i atomically and returns the value before
  /// (MPI_Fetch_and_op + flush through RmaWindow::fetch_op, as troupe::Counter). Arithmetic T.
  /// @throws as get(i).
  T fetch_add(std::size_t i, const T& delta) {
    static_assert(kArithmetic, "troupe::GlobalArray<T>::fetch_add needs an arithmetic T (not bool)");
    T old{};
    base_.fetch_op(i, &delta, &old, MPI_SUM, "GlobalArray::fetch_add");
    return old;
  }
  /// @brief Element @p i read atomically (MPI_Fetch_and_op with MPI_NO_OP): safe against
  /// concurrent fetch_add / accumulate / compare_exchange. Arithmetic T. @throws as get(i).
  T atomic_load(std::size_t i) {
    static_assert(kArithmetic, "troupe::GlobalArray<T>::atomic_load needs an arithmetic T (not bool)");
    const T zero{};
    T now{};
    base_.fetch_op(i, &zero, &now, MPI_NO_OP, "GlobalArray::atomic_load");
    return now;
  }
  /// @brief If element @p i equals @p expected (bitwise), writes @p desired and returns true;
  /// otherwise stores the current value in @p expected and returns false (std::atomic's
  /// spelling). One MPI_Compare_and_swap + flush, on the same-width unsigned integer (MPI
  /// compares integer and byte types only; floating point compares bit patterns, as
  /// std::atomic does). @throws as get(i).
  bool compare_exchange(std::size_t i, T& expected, const T& desired) {
    static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8,
                  "troupe::GlobalArray<T>::compare_exchange needs sizeof(T) of 1, 2, 4 or 8 bytes");
    T before;
    base_.compare_swap(i, &desired, &expected, &before, cas_type(), "GlobalArray::compare_exchange");
    if (std::memcmp(&before, &expected, sizeof(T)) == 0) return true;
    expected = before;
    return false;
  }
  /// @brief Completes, at their targets, every operation this rank issued (MPI_Win_flush_all):
  /// after it other ranks' gets see this rank's put_async / fetch_add_async writes.
  /// @throws InvalidStateError after free() or from a thread that may not call MPI.
  void flush() { base_.flush("GlobalArray::flush"); }
  /// @brief Collective: flushes, then waits for every rank (MPI_Ibarrier, with MPI_Win_sync
  /// on both sides). After it every rank sees every write made before it by any rank, by
  /// RMA or by a store into local(). Waits at most until @p deadline (default: never).
  /// @throws TimeoutError when a rank does not arrive in time; InvalidStateError as flush().
  void fence(const Deadline& deadline = {}) { base_.fence(deadline, "GlobalArray::fence"); }
  /// @brief As fence(deadline), giving up after @p timeout.
  template <class Rep, class Period>
  void fence(std::chrono::duration<Rep, Period> timeout) {
    fence(Deadline::after(timeout, "GlobalArray::fence"));
  }

  // --- non-blocking forms (troupe futures, completed by the engine) ---

  /// @brief Starts reading [first, first + count) (one MPI_Rget per owner touched); the
  /// future completes, on the engine's progress thread, with the data. Any thread may wait
  /// on it.
  /// @throws IndexError when the range leaves the array; InvalidStateError as get(i).
  Future<std::vector<T>> get_async(std::size_t first, std::size_t count) {
    base_.check_range(first, count, "GlobalArray::get_async");
    struct State {
      Promise<std::vector<T>> promise;
      std::vector<T> data;
    };
    auto op = std::make_shared<State>();
    op->promise.set_running_or_notify_cancel();  // no cancel once the requests are out
    op->data.resize(count);
    auto fut = op->promise.get_future();
    base_.get_async(
        first, count, op->data.data(),
        [op](std::exception_ptr e) {
          if (e) {
            op->promise.set_exception(e);
          } else {
            op->promise.set_result(std::move(op->data));
          }
        },
        "GlobalArray::get_async");
    return fut;
  }
  /// @brief Starts reading [first, first + out.size()) into @p out, which must stay alive
  /// and untouched until the future is done (no allocation: the bandwidth form).
  /// @throws IndexError when the range leaves the array; InvalidStateError as get(i).
  Future<void> get_async(std::size_t first, std::span<T> out) {
    base_.check_range(first, out.size(), "GlobalArray::get_async");
    auto promise = std::make_shared<Promise<void>>();
    promise->set_running_or_notify_cancel();
    auto fut = promise->get_future();
    base_.get_async(
        first, out.size(), out.data(),
        [promise](std::exception_ptr e) {
          if (e) {
            promise->set_exception(e);
          } else {
            promise->set_result();
          }
        },
        "GlobalArray::get_async");
    return fut;
  }
  /// @brief Starts writing @p values to [first, first + values.size()) (one MPI_Rput per
  /// owner touched; the values are copied first). The future completes when the data left
  /// this rank; it is at the targets after this rank's next flush() or fence().
  /// @throws IndexError when the range leaves the array; InvalidStateError as get(i).
  Future<void> put_async(std::size_t first, std::span<const T> values) {
    return put_async(first, std::vector<T>(values.begin(), values.end()));
  }
  /// @brief As put_async(first, span), taking the buffer over (no copy).
  Future<void> put_async(std::size_t first, std::vector<T>&& values) {
    base_.check_range(first, values.size(), "GlobalArray::put_async");
    struct State {
      Promise<void> promise;
      std::vector<T> data;
    };
    auto op = std::make_shared<State>();
    op->promise.set_running_or_notify_cancel();
    op->data = std::move(values);
    auto fut = op->promise.get_future();
    base_.put_async(
        first, op->data.size(), op->data.data(),
        [op](std::exception_ptr e) {
          if (e) {
            op->promise.set_exception(e);
          } else {
            op->promise.set_result();
          }
        },
        "GlobalArray::put_async");
    return fut;
  }
  /// @brief Starts an atomic add to element @p i (MPI_Rget_accumulate); the future
  /// completes with the value before. The update is visible to others after flush().
  /// Arithmetic T. @throws as get(i).
  Future<T> fetch_add_async(std::size_t i, const T& delta) {
    static_assert(kArithmetic, "troupe::GlobalArray<T>::fetch_add_async needs an arithmetic T (not bool)");
    struct State {
      Promise<T> promise;
      T operand;
      T old{};
    };
    auto op = std::make_shared<State>();
    op->promise.set_running_or_notify_cancel();
    op->operand = delta;
    auto fut = op->promise.get_future();
    base_.fetch_op_async(
        i, &op->operand, &op->old, MPI_SUM,
        [op](std::exception_ptr e) {
          if (e) {
            op->promise.set_exception(e);
          } else {
            op->promise.set_result(op->old);
          }
        },
        "GlobalArray::fetch_add_async");
    return fut;
  }

  // --- lifetime and experts ---

  /// @brief Collective: waits for this rank's asynchronous operations, then frees the
  /// window once every rank has called it, within @p deadline (default: the start-up
  /// timeout). Idempotent. Afterwards every member that touches the window raises
  /// InvalidStateError.
  /// @return false when not every rank arrived in time (the window is then left allocated
  /// and a log line says so; the array is unusable anyway).
  bool free(const Deadline& deadline) noexcept { return base_.free(deadline); }
  /// @brief As free(deadline), with a timeout.
  template <class Rep, class Period>
  bool free(std::chrono::duration<Rep, Period> timeout) {
    return free(Deadline::after(timeout, "GlobalArray::free"));
  }
  /// @brief As free(deadline) with the start-up timeout (TROUPE_STARTUP_TIMEOUT_MS).
  bool free();
  /// @brief The MPI window, for experts: it is inside one `MPI_Win_lock_all` epoch for the
  /// array's life (never lock or unlock it; complete your own operations with
  /// MPI_Win_flush); the displacement unit is sizeof(T); rank numbers are those of the
  /// Runtime's communicator. Valid until free().
  MPI_Win win() const noexcept { return base_.window().win(); }
  /// @brief The byte-level base (tests, benchmarks).
  detail::GlobalArrayBase& base() noexcept { return base_; }

 private:
  static MPI_Datatype cas_type() noexcept {
    if constexpr (sizeof(T) == 1) {
      return MPI_UINT8_T;
    } else if constexpr (sizeof(T) == 2) {
      return MPI_UINT16_T;
    } else if constexpr (sizeof(T) == 4) {
      return MPI_UINT32_T;
    } else {
      return MPI_UINT64_T;
    }
  }
  void check_rank(int r, const char* call) const;

  detail::GlobalArrayBase base_;
};

namespace detail {
/// @brief The start-up timeout as a deadline (GlobalArray::free()).
Deadline global_array_free_deadline();
/// @brief Throws ValueError naming @p call for a rank outside [0, ranks).
void throw_bad_rank(int r, int ranks, const char* call);
}  // namespace detail

template <class T>
bool GlobalArray<T>::free() {
  return free(detail::global_array_free_deadline());
}

template <class T>
void GlobalArray<T>::check_rank(int r, const char* call) const {
  if (r < 0 || r >= base_.ranks()) detail::throw_bad_rank(r, base_.ranks(), call);
}

}  // namespace troupe
