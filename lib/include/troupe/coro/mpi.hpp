#pragma once
/// @file
/// @brief `co_await troupe::mpi_request(executor, request)`: a task waits on an MPI request
/// of its own with no thread blocked in MPI (the executor's engine tests it).

#include <mpi.h>

#include "troupe/coro/task.hpp"
#include "troupe/executor/executor.hpp"

namespace troupe {

/// @brief Awaitable MPI request: `MPI_Status st = co_await troupe::mpi_request(ex, req);`.
///
/// Built on Executor::async_mpi (HPX's async_mpi): the engine tests the request with the
/// rest of its traffic and the task resumes on its pool once the request is complete. No
/// thread waits in MPI meanwhile. The buffers must stay valid until the request completes
/// and nobody else may wait on or free the request.
///
/// A stop request on the task's token ends the await with CancelledError
/// ("troupe::mpi_request: cancelled by token"); the request itself is NOT cancelled (only
/// the engine makes MPI calls): it stays watched until it completes, so its buffers must
/// outlive it. Keep the future of Executor::async_mpi and `co_await` that instead when
/// the task must be able to learn the request's end after a cancellation.
/// @throws ValueError for MPI_REQUEST_NULL; InvalidStateError after the executor's shutdown.
inline detail::FutureAwaiter<MPI_Status> mpi_request(Executor& executor, MPI_Request request) {
  return detail::FutureAwaiter<MPI_Status>(executor.async_mpi(request), "troupe::mpi_request", true);
}

}  // namespace troupe
