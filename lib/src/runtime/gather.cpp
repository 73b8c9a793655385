// detail::gather_text: every rank's text at the root, within a deadline.
#include "troupe/runtime/detail/gather.hpp"

#include <climits>
#include <cstddef>
#include <string>

#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/detail/rma_window.hpp"

namespace troupe::detail {

std::vector<std::string> gather_text(MPI_Comm comm, int root, std::string_view mine, const Deadline& deadline,
                                     const char* api) {
  if (mine.size() > static_cast<std::size_t>(INT_MAX)) {
    throw ValueError(std::string(api) + ": a rank's text is longer than INT_MAX bytes");
  }
  int rank = 0, size = 1;
  TROUPE_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  TROUPE_MPI_CHECK(MPI_Comm_size(comm, &size));
  const bool at_root = rank == root;
  const auto n = static_cast<std::size_t>(size);

  int len = static_cast<int>(mine.size());
  std::vector<int> lens(at_root ? n : 0);
  MPI_Request req = MPI_REQUEST_NULL;
  TROUPE_MPI_CHECK(MPI_Igather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, root, comm, &req));
  if (!wait_request(req, deadline, {})) {
    throw TimeoutError(std::string(api) + ": not every rank took part in the gather (MPI_Igather) in time");
  }
  std::vector<int> displs(lens.size());
  long long total = 0;
  for (std::size_t r = 0; r < lens.size(); ++r) {
    if (total + lens[r] > INT_MAX) throw ValueError(std::string(api) + ": the ranks' texts exceed INT_MAX bytes");
    displs[r] = static_cast<int>(total);
    total += lens[r];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  TROUPE_MPI_CHECK(
      MPI_Igatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, root, comm, &req));
  if (!wait_request(req, deadline, {})) {
    throw TimeoutError(std::string(api) + ": not every rank took part in the gather (MPI_Igatherv) in time");
  }
  std::vector<std::string> out;
  for (std::size_t r = 0; r < lens.size(); ++r) {
    out.emplace_back(all, static_cast<std::size_t>(displs[r]), static_cast<std::size_t>(lens[r]));
  }
  return out;
}

}  // namespace troupe::detail
