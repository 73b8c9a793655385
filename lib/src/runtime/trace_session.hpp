#pragma once
// The MPI side of a trace session (not installed): the Runtime starts it when it starts and
// finishes it when it is released (troupe/runtime/detail/trace.hpp, docs/tracing.md).
#include <mpi.h>

#include <chrono>
#include <string>

namespace troupe::detail::trace {

// Collective over @p comm (every rank of the Runtime, at its start): rank 0's @p path (its
// TROUPE_TRACE) decides whether every rank records; then each rank measures its clock's
// offset to rank 0's and begins recording. Each wait is bounded by @p timeout; throws
// TimeoutError naming the step that timed out. A path rank 0 cannot write is logged, and
// nothing is recorded.
void start_session(MPI_Comm comm, int rank, int size, const std::string& host, const std::string& path,
                   std::chrono::milliseconds timeout, bool quiet);

// Collective over @p comm when a session is active (the Runtime's release, after the
// closing layers, before the communicator is freed): stops recording, sends every rank's
// events to rank 0, which writes the file. Failures are logged, never thrown; every wait is
// bounded by the start's timeout.
void finish_session(MPI_Comm comm) noexcept;

}  // namespace troupe::detail::trace
