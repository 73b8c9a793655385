#pragma once
/// @file
/// @brief The same-binary check of troupe::Runtime, exposed for tests and later layers.

#include <mpi.h>

#include <cstdint>

namespace troupe::detail {

/// @brief Collective over @p comm: one `MPI_Allreduce` of the executable and
/// callable-table digests. If they differ between ranks, one `MPI_Allgather` learns
/// which rank has which, and every rank throws troupe::Error whose message starts
/// with "ranks run different executables" or "ranks have different callable tables"
/// and lists the digests per rank.
/// @param comm a communicator with MPI_ERRORS_RETURN (troupe's own).
/// @param executable_digest this rank's executable digest (troupe::executable_digest()).
/// @param callable_digest this rank's callable table digest.
/// @throws troupe::Error as described; troupe::MpiError if MPI fails.
void check_same_binary(MPI_Comm comm, std::uint64_t executable_digest, std::uint64_t callable_digest);

/// @brief Test hook: when non-zero, the next Runtimes in this process use this value
/// instead of the real executable digest (to simulate a rank running another build).
/// Not thread-safe; set it before constructing the Runtime.
void set_executable_digest_override(std::uint64_t digest) noexcept;

/// @brief The override if set, else troupe::executable_digest().
std::uint64_t executable_digest_for_check() noexcept;

}  // namespace troupe::detail
