// MPI return codes -> troupe::MpiError, with the call's name, MPI's text, code and class.
#include "troupe/runtime/detail/mpi_check.hpp"

#include <cstring>
#include <string>

#include "troupe/core/error.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::detail {

std::string_view mpi_error_text(int rc, char (&buffer)[MPI_MAX_ERROR_STRING]) noexcept {
  int len = 0;
  if (MPI_Error_string(rc, buffer, &len) == MPI_SUCCESS && len > 0 && len < MPI_MAX_ERROR_STRING) {
    return {buffer, static_cast<std::size_t>(len)};
  }
  return "unknown MPI error";
}

void throw_mpi_error(int rc, const char* call, const char* file, int line) {
  // "MPI_Comm_dup(comm, &dup)" -> "MPI_Comm_dup": the arguments are noise in a message.
  std::string_view name(call != nullptr ? call : "MPI call");
  if (auto paren = name.find('('); paren != std::string_view::npos) name = name.substr(0, paren);
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  std::string_view where(file != nullptr ? file : "?");
  if (auto slash = where.rfind('/'); slash != std::string_view::npos) where = where.substr(slash + 1);

  char text[MPI_MAX_ERROR_STRING];
  char class_text[MPI_MAX_ERROR_STRING];
  int error_class = rc;
  if (MPI_Error_class(rc, &error_class) != MPI_SUCCESS) error_class = rc;

  std::string what = rank_tag();
  what += ' ';
  what += name;
  what += " failed: ";
  what += mpi_error_text(rc, text);
  what += " (error code " + std::to_string(rc) + ", class " + std::to_string(error_class);
  if (error_class != rc) {
    what += ": ";
    what += mpi_error_text(error_class, class_text);
  }
  what += ") at ";
  what += where;
  what += ':' + std::to_string(line);
  throw MpiError(what, rc, error_class);
}

}  // namespace troupe::detail
