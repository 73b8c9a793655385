#pragma once
/// @file
/// @brief One 64-bit integer on a host rank, updated with MPI-3 RMA atomics from any rank
/// and thread: the mechanism of troupe::Counter and of a cross-rank Barrier's arrival index.
///
/// A window made with `MPI_Win_allocate` (never `MPI_Win_create`, whose atomics stall on
/// Open MPI 4.1 until the target calls MPI) on a private duplicate communicator, inside one
/// passive-target epoch (`MPI_Win_lock_all`) for the whole life of the cell; an update is one
/// `MPI_Fetch_and_op` and one `MPI_Win_flush`. Every rank except the host contributes zero
/// bytes. The construction and the destruction are collective, each within a deadline: every
/// rank must have arrived (the arrival messages of detail::collective_dup, an `MPI_Ibarrier`
/// at destruction) before the blocking `MPI_Win_allocate` / `MPI_Win_free` are called, so a
/// rank that never comes makes the others raise instead of hang.

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <stop_token>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

class AtomicCell {
 public:
  /// @brief Collective over @p base (every rank, same order): the cell lives on @p host and
  /// starts at @p start.
  /// @throws TimeoutError naming @p api when a rank does not arrive by @p deadline; MpiError.
  AtomicCell(MPI_Comm base, MPI_Comm control, int host, std::int64_t start, const Deadline& deadline, const char* api);
  /// @brief Collective: frees the window once every rank has arrived (within the start-up
  /// timeout; otherwise the window is left allocated rather than risk a hang).
  ~AtomicCell();
  AtomicCell(const AtomicCell&) = delete;
  AtomicCell& operator=(const AtomicCell&) = delete;

  /// @brief Adds @p delta and returns the value before (MPI_SUM). Thread-safe at
  /// MPI_THREAD_MULTIPLE.
  std::int64_t fetch_add(std::int64_t delta);
  /// @brief The current value (MPI_NO_OP). Only sum and no-op ever touch the cell, so the
  /// updates are atomic under MPI's default `accumulate_ops` (same_op_no_op).
  std::int64_t load();
  /// @brief The private communicator of the cell (its rank count and order are the base's).
  MPI_Comm comm() const noexcept { return comm_; }
  int host() const noexcept { return host_; }

 private:
  std::int64_t fetch_op(std::int64_t operand, MPI_Op op);

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Win win_ = MPI_WIN_NULL;
  std::int64_t* base_ = nullptr;
  int host_ = 0;
  const char* api_;
};

/// @brief Waits, with the one wait loop, until @p request completes, @p deadline passes or
/// @p stop() turns true; the request is tested by the waiting loop (registered as a progress
/// source for the length of the wait, so the loop naps and re-tests rather than sleeping
/// until the deadline).
/// @return true when the request completed (it is then MPI_REQUEST_NULL).
bool wait_request(MPI_Request& request, const Deadline& deadline, const std::function<bool()>& stop,
                  const std::stop_token* token = nullptr, bool help = true);

}  // namespace troupe::detail
