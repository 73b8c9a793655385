#pragma once
/// @file
/// @brief The start of every collective construction: a private duplicate of a communicator,
/// made within a deadline, with the ranks that did not arrive named.
///
/// `MPI_Comm_dup` blocks until every rank of the communicator calls it: an object built on
/// only some ranks (a user error) used to hang its constructor forever, silently. Here each
/// rank announces its arrival to every other rank with a zero-byte message on the
/// Runtime's private communicator (tag kArrivalTag), posts `MPI_Comm_idup`, and waits for
/// both with the one wait loop until the deadline. On time-out the arrivals that came in
/// name the ranks that did not; the pending receives are cancelled. The pending idup cannot
/// be cancelled (MPI forbids it for a collective): it is left to complete should the
/// missing ranks arrive later, and its result is never used.
///
/// Cost on success: P-1 zero-byte messages sent and received per rank, once per
/// construction (measured in docs/executor.md).

#include <mpi.h>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

/// @brief The MPI tag of arrival messages on the Runtime's communicator.
inline constexpr int kArrivalTag = 0x7261;

/// @brief Collective over @p base: returns an `MPI_Comm_dup` of it (errors returned, not
/// fatal) once every rank of @p base has called this, or throws.
/// @param control a communicator that holds every rank of @p base (the Runtime's own); the
/// arrival messages travel on it.
/// @param api the construction being made ("Executor"), named in errors.
/// @throws TimeoutError when @p deadline passes first, naming the ranks of @p base that did
/// not arrive (or, when all arrived, saying that one gave up first); MpiError.
MPI_Comm collective_dup(MPI_Comm base, MPI_Comm control, const Deadline& deadline, const char* api);

}  // namespace troupe::detail
