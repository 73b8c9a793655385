#pragma once
/// @file
/// @brief One 64-bit integer on a host rank, updated with MPI-3 RMA atomics from any rank
/// and thread: the mechanism of troupe::Counter and of a cross-rank Barrier's arrival index.
///
/// One detail::RmaWindow (`MPI_Win_allocate`, one passive epoch, bounded collective
/// construction and free) holding one word on the host rank and none elsewhere; an update is
/// RmaWindow::fetch_op, the same code as GlobalArray's atomics.

#include <mpi.h>

#include <cstdint>

#include "troupe/core/deadline.hpp"
#include "troupe/runtime/detail/rma_window.hpp"

namespace troupe::detail {

class AtomicCell {
 public:
  /// @brief Collective over @p base (every rank, same order): the cell lives on @p host and
  /// starts at @p start.
  /// @throws TimeoutError naming @p api when a rank does not arrive by @p deadline; MpiError.
  AtomicCell(MPI_Comm base, MPI_Comm control, int host, std::int64_t start, const Deadline& deadline, const char* api);

  /// @brief Adds @p delta and returns the value before (MPI_SUM). Thread-safe at
  /// MPI_THREAD_MULTIPLE.
  /// @throws InvalidStateError naming @p call after the Runtime's release.
  std::int64_t fetch_add(std::int64_t delta, const char* call = "Counter::next");
  /// @brief The current value (MPI_NO_OP). Only sum and no-op ever touch the cell, so the
  /// updates are atomic under MPI's default `accumulate_ops` (same_op_no_op).
  std::int64_t load(const char* call = "Counter::value");
  /// @brief The private communicator of the cell (its rank count and order are the base's).
  MPI_Comm comm() const noexcept { return win_.comm(); }
  int host() const noexcept { return host_; }
  /// @brief See RmaWindow::leak (a broken Barrier's cell).
  void leak() noexcept { win_.leak(); }
  /// @brief True after leak() or the Runtime's release freed the window (RmaWindow::freed).
  bool freed() const noexcept { return win_.freed(); }

 private:
  int host_ = 0;
  RmaWindow win_;
};

}  // namespace troupe::detail
