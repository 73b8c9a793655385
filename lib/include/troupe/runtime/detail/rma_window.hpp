#pragma once
/// @file
/// @brief The one MPI-3 RMA window of troupe: every window-backed object (Counter, a
/// cross-rank Barrier's arrival count, SharedArray, SharedValue, GlobalArray) is an
/// RmaWindow plus a typed face.
///
/// What it manages, so no object writes it again:
/// - **allocation**: only `MPI_Win_allocate` (Memory::Private) or `MPI_Win_allocate_shared`
///   (Memory::NodeShared); never `MPI_Win_create`, whose atomics stall on Open MPI 4.1 until
///   the target calls MPI, nor dynamic windows;
/// - **a private communicator**: a duplicate of the base communicator made by
///   detail::collective_dup, so a rank that never comes makes the others raise TimeoutError
///   naming it instead of hanging in the blocking `MPI_Win_allocate`;
/// - **agreement**: an optional value every rank must pass equal (an array's length),
///   compared with one `MPI_Iallreduce` before allocating; a mismatch is a ValueError on
///   every rank, naming both values;
/// - **one passive-target epoch** (`MPI_Win_lock_all`, `MPI_MODE_NOCHECK`) for the window's
///   whole life: an operation is the MPI call plus a flush, never a lock/unlock pair;
/// - **initialisation before first access**: each rank fills its own segment (the init
///   callback), then an `MPI_Ibarrier` makes sure nobody reads or updates a segment before
///   its owner has written it;
/// - **a collective, bounded free**: `MPI_Win_free` blocks until every rank calls it, so an
///   `MPI_Ibarrier` is waited for first (within the start-up timeout); when a rank never
///   frees its copy the window is left allocated and a log line says so, rather than hang;
/// - **the Runtime's release**: a window still alive when its Runtime is released is freed
///   then (collectively, as the Runtime's release is), and any later use raises
///   InvalidStateError naming the call, never touches freed MPI state.
///
/// Thread safety: the operations may be called from any thread at MPI_THREAD_MULTIPLE (the
/// typed faces check the thread level); construction and free are collective calls made by
/// one thread per rank.

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

/// @brief Which MPI call allocates the window's memory.
enum class WindowMemory {
  Private,     ///< `MPI_Win_allocate`: each rank's segment in its own memory (RMA reaches it)
  NodeShared,  ///< `MPI_Win_allocate_shared`: segments of the ranks of one node in one
               ///< shared mapping, reachable by plain loads and stores (shared_base())
};

/// @brief The granule a Private window's segment is allocated in: RmaWindow asks
/// `MPI_Win_allocate` for local_bytes rounded up to a multiple of it.
///
/// MPI-3.1 §11.2.2 lets `MPI_Win_allocate` allocate "at least size bytes", and §11.3.1 puts
/// the target of an access at window_base + target_disp × disp_unit with the window_base
/// the target got back, whatever the size, so the padding changes nothing under a
/// conforming MPI. MPICH 4.0.2 (ch4) places the segments of one node's ranks back to back
/// in one shared mapping, returns each rank a base at the unrounded sum of the lower ranks'
/// sizes, but addresses a target's segment at that sum rounded down to 16 bytes: an access
/// of rank r at displacement 0 reads bytes of rank r - 1 when the lower ranks' sizes do
/// not add up to a multiple of 16 (docs/portability.md). Sizes in multiples of this granule
/// keep every segment where both sides put it; 64 (a cache line) also keeps two ranks'
/// segments off one line.
inline constexpr std::size_t kPrivateSegmentGranule = 64;

/// @brief The bytes RmaWindow asks `MPI_Win_allocate` for, for a Private segment of
/// @p local_bytes: local_bytes rounded up to kPrivateSegmentGranule (0 stays 0).
/// @return the padded size; local_bytes itself when rounding up would overflow
/// (allocation then fails with MPI's own error).
constexpr std::size_t private_segment_bytes(std::size_t local_bytes) noexcept {
  const std::size_t g = kPrivateSegmentGranule;
  if (local_bytes > SIZE_MAX - (g - 1)) return local_bytes;
  return (local_bytes + g - 1) / g * g;
}

/// @brief What to allocate; see RmaWindow.
struct WindowSpec {
  WindowMemory memory = WindowMemory::Private;
  /// @brief Bytes of this rank's segment (may be 0; may differ between ranks). A Private
  /// window allocates private_segment_bytes(local_bytes) (the padding is zeroed, never
  /// addressed by troupe); a NodeShared one exactly local_bytes (its segments stay
  /// contiguous across ranks, MPI-3.1 §11.2.3).
  std::size_t local_bytes = 0;
  /// @brief The displacement unit (the element size for typed windows).
  int disp_unit = 1;
  /// @brief When set, a value every rank must pass equal (an array's length), checked
  /// before anything is allocated.
  std::optional<std::int64_t> same_everywhere;
  /// @brief The name of that value in the error ("length").
  const char* same_name = "size";
  /// @brief Fills this rank's segment before any rank may access it (default: zeros).
  std::function<void(std::byte* base, std::size_t bytes)> init;
};

/// @brief See the file comment.
class RmaWindow {
 public:
  /// @brief Collective over @p base (every rank, in the same order as its other collective
  /// troupe objects).
  /// @param control a communicator holding every rank of @p base (the Runtime's own); the
  /// arrival messages of the construction travel on it.
  /// @param api the construction being made ("GlobalArray"), named in errors.
  /// @throws TimeoutError naming the ranks that did not arrive by @p deadline; ValueError
  /// when WindowSpec::same_everywhere differs between ranks; MpiError.
  RmaWindow(MPI_Comm base, MPI_Comm control, const WindowSpec& spec, const Deadline& deadline, const char* api);
  /// @brief Frees the window if free() was not called (collective, bounded; see free()).
  ~RmaWindow();
  RmaWindow(const RmaWindow&) = delete;
  RmaWindow& operator=(const RmaWindow&) = delete;

  /// @brief Collective: ends the epoch and frees the window and its communicator once every
  /// rank has called it, waiting at most until @p deadline. Idempotent.
  /// @return false when not every rank arrived in time: the window is then left allocated
  /// (freeing would hang) and a log line names the object; the object is unusable anyway.
  bool free(const Deadline& deadline) noexcept;
  /// @brief Marks the window freed without freeing it: for a window whose communicator holds
  /// requests that never complete (a broken Barrier's), which neither free() nor the
  /// Runtime's release may then wait on. Its MPI objects stay allocated for the process's life.
  void leak() noexcept { state_->freed.store(true, std::memory_order_release); }
  /// @brief True after free(), leak() or the Runtime's release.
  bool freed() const noexcept { return state_->freed.load(std::memory_order_acquire); }
  /// @brief Throws InvalidStateError naming @p call when freed() (use after free).
  void check_live(const char* call) const;

  MPI_Win win() const noexcept { return state_->win; }
  MPI_Comm comm() const noexcept { return state_->comm; }
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  /// @brief This rank's segment.
  std::byte* local() const noexcept { return local_; }
  std::size_t local_bytes() const noexcept { return local_bytes_; }
  /// @brief NodeShared only: the address, in this process, of rank @p rank's segment and its
  /// byte count (`MPI_Win_shared_query`, asked once at construction).
  std::byte* shared_base(int rank, std::size_t* bytes = nullptr) const;

  /// @brief `MPI_Fetch_and_op` of one element of @p type at (@p target, @p disp) and a flush
  /// of @p target: atomic with every other fetch_op / compare_swap / accumulate on the same
  /// element and type.
  void fetch_op(const void* operand, void* result, MPI_Datatype type, int target, MPI_Aint disp, MPI_Op op);
  /// @brief `MPI_Compare_and_swap` and a flush: writes @p desired where the element equals
  /// @p expected; @p result receives the element before.
  void compare_swap(const void* desired, const void* expected, void* result, MPI_Datatype type, int target,
                    MPI_Aint disp);
  /// @brief Completes every operation this rank issued to @p target (`MPI_Win_flush`).
  void flush(int target);
  /// @brief Completes every operation this rank issued (`MPI_Win_flush_all`).
  void flush_all();
  /// @brief Collective: flushes this rank's operations, then waits, within @p deadline, for
  /// every rank to arrive (`MPI_Ibarrier`), with `MPI_Win_sync` on both sides, so every
  /// write made before by any rank, by RMA or by a store into a shared segment, is visible
  /// to every rank after it.
  /// @throws TimeoutError naming @p call when a rank does not arrive in time.
  void fence(const Deadline& deadline, const char* call);

  /// @brief The shared state a Runtime's release hook holds (the window outlives neither).
  struct State {
    MPI_Win win = MPI_WIN_NULL;
    MPI_Comm comm = MPI_COMM_NULL;
    std::atomic<bool> freed{false};
    const char* api = "";
  };

 private:
  std::shared_ptr<State> state_;
  std::byte* local_ = nullptr;
  std::size_t local_bytes_ = 0;
  int rank_ = 0;
  int size_ = 1;
  std::unique_ptr<std::pair<std::byte*, std::size_t>[]> shared_;
};

/// @brief Waits, with the one wait loop, until @p request completes, @p deadline passes or
/// @p stop() turns true; the request is tested by the waiting loop (registered as a progress
/// source for the length of the wait, so the loop naps and re-tests rather than sleeping
/// until the deadline).
/// @return true when the request completed (it is then MPI_REQUEST_NULL).
bool wait_request(MPI_Request& request, const Deadline& deadline, const std::function<bool()>& stop,
                  const std::stop_token* token = nullptr, bool help = true);

/// @brief The MPI datatype of the arithmetic type @p T (MPI_DATATYPE_NULL for others).
template <class T>
MPI_Datatype mpi_type_of() noexcept {
  if constexpr (std::is_same_v<T, float>)
    return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>)
    return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, long double>)
    return MPI_LONG_DOUBLE;
  else if constexpr (std::is_same_v<T, bool>)
    return MPI_CXX_BOOL;
  else if constexpr (std::is_same_v<T, char>)
    return MPI_CHAR;
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 1)
    return MPI_INT8_T;
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 2)
    return MPI_INT16_T;
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 4)
    return MPI_INT32_T;
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 8)
    return MPI_INT64_T;
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && sizeof(T) == 1)
    return MPI_UINT8_T;
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && sizeof(T) == 2)
    return MPI_UINT16_T;
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && sizeof(T) == 4)
    return MPI_UINT32_T;
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && sizeof(T) == 8)
    return MPI_UINT64_T;
  else
    return MPI_DATATYPE_NULL;
}

}  // namespace troupe::detail
