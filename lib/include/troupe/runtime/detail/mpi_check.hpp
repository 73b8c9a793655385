#pragma once
/// @file
/// @brief The one place where MPI return codes become exceptions.
///
/// @code
/// TROUPE_MPI_CHECK(MPI_Comm_dup(comm, &dup));
/// // on failure: troupe::MpiError("[rank 1/4] MPI_Comm_dup failed: MPI_ERR_COMM:
/// //   invalid communicator (error code 5, class 5) at runtime.cpp:120")
/// @endcode
/// Library communicators carry `MPI_ERRORS_RETURN`, so the code reaches the check.

#include <mpi.h>

#include <string_view>

#include "troupe/runtime/mpi_token.hpp"

namespace troupe::detail {

/// @brief Throws troupe::MpiError for return code @p rc of @p call (the call's
/// source text; its function name is used). Never returns.
[[noreturn]] void throw_mpi_error(int rc, const char* call, const char* file, int line);

/// @brief Checks an MPI return code; throws troupe::MpiError unless it is MPI_SUCCESS.
inline void mpi_check(int rc, const char* call, const char* file, int line) {
  if (rc != MPI_SUCCESS) [[unlikely]] {
    throw_mpi_error(rc, call, file, line);
  }
}

/// @brief Text of an MPI error code (`MPI_Error_string`), or "unknown MPI error N".
std::string_view mpi_error_text(int rc, char (&buffer)[MPI_MAX_ERROR_STRING]) noexcept;

}  // namespace troupe::detail

/// @brief Runs an MPI call and throws troupe::MpiError naming it if it fails. In
/// MpiMode::Serialized the call holds the process's MPI token (troupe/runtime/mpi_token.hpp).
#define TROUPE_MPI_CHECK(call) \
  ::troupe::detail::mpi_check((::troupe::detail::MpiSection{}, (call)), #call, __FILE__, __LINE__)
/// @brief An MPI call whose return code is handled by the caller (clean-up paths), holding
/// the token in MpiMode::Serialized like TROUPE_MPI_CHECK.
#define TROUPE_MPI_UNCHECKED(call) (::troupe::detail::MpiSection{}, (call))
