#pragma once
// Small helpers shared by the multi-rank tests (tests/mpi/*_mpi_test.cpp).
#include <mpi.h>

#include <chrono>
#include <optional>
#include <thread>

#include "troupe/runtime/runtime.hpp"

namespace troupe_test {

/// Runtime options that keep start-up notes out of the test output.
inline troupe::RuntimeOptions quiet() {
  troupe::RuntimeOptions o;
  o.quiet = true;
  return o;
}

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

inline int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

/// Waits for @p req (a nonblocking collective) for at most @p limit; false when it did not
/// complete. MPI_Test in a yielding loop.
inline bool bounded_wait(MPI_Request& req, std::chrono::seconds limit) {
  int done = 0;
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < until) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::yield();
  }
  return done != 0;
}

/// A barrier on @p comm that gives up after @p limit (false then): a rank that failed
/// before it leaves the others failing, not hanging.
inline bool bounded_barrier(MPI_Comm comm, std::chrono::seconds limit) {
  MPI_Request req = MPI_REQUEST_NULL;
  MPI_Ibarrier(comm, &req);
  return bounded_wait(req, limit);
}

/// The sum of every rank's @p mine over @p comm, or nullopt after @p limit.
inline std::optional<long> bounded_sum(MPI_Comm comm, long mine, std::chrono::seconds limit) {
  long total = 0;
  MPI_Request req = MPI_REQUEST_NULL;
  MPI_Iallreduce(&mine, &total, 1, MPI_LONG, MPI_SUM, comm, &req);
  if (!bounded_wait(req, limit)) return std::nullopt;
  return total;
}

/// A private duplicate of MPI_COMM_WORLD for the length of a test.
struct Comm {
  MPI_Comm comm = MPI_COMM_NULL;
  Comm() { MPI_Comm_dup(MPI_COMM_WORLD, &comm); }
  ~Comm() { MPI_Comm_free(&comm); }
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;
  int rank() const {
    int r = 0;
    MPI_Comm_rank(comm, &r);
    return r;
  }
  int size() const {
    int s = 0;
    MPI_Comm_size(comm, &s);
    return s;
  }
};

}  // namespace troupe_test
