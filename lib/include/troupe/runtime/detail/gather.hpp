#pragma once
/// @file
/// @brief A bounded gather of one text per rank: what tools such as `troupe-info` and
/// `troupe_pi --info` use to print every rank's facts in rank order at the root.

#include <mpi.h>

#include <string>
#include <string_view>
#include <vector>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

/// @brief Collective over @p comm: the root receives every rank's @p mine, in rank order.
///
/// Two nonblocking collectives (`MPI_Igather` of the lengths, `MPI_Igatherv` of the bytes),
/// each waited for with the one wait loop (wait_request()) until @p deadline.
/// @param comm the communicator (troupe's own, Runtime::comm(), for a tool).
/// @param root the rank that receives.
/// @param mine this rank's text (at most INT_MAX bytes).
/// @param deadline when to give up waiting for the other ranks.
/// @param api the caller, named in errors ("troupe-info").
/// @return every rank's text on the root (index = rank); empty on the other ranks.
/// @throws TimeoutError when a rank did not take part before @p deadline (the pending
///         collective cannot be cancelled: a tool should then end the job with MPI_Abort
///         rather than MPI_Finalize); ValueError for a text too long; MpiError.
/// @note Call on a thread that may make MPI calls (the main thread below MPI_THREAD_MULTIPLE).
std::vector<std::string> gather_text(MPI_Comm comm, int root, std::string_view mine, const Deadline& deadline,
                                     const char* api);

}  // namespace troupe::detail
