#include "troupe/across/detail/atomic_cell.hpp"

#include <cstring>

#include "troupe/runtime/detail/mpi_check.hpp"

namespace troupe::detail {

namespace {

WindowSpec cell_spec(bool host, std::int64_t start) {
  WindowSpec spec;
  spec.memory = WindowMemory::Private;
  spec.local_bytes = host ? sizeof(std::int64_t) : 0;
  spec.disp_unit = sizeof(std::int64_t);
  spec.init = [start](std::byte* base, std::size_t) { std::memcpy(base, &start, sizeof start); };
  return spec;
}

int rank_of(MPI_Comm comm) {
  int r = 0;
  TROUPE_MPI_UNCHECKED(MPI_Comm_rank(comm, &r));
  return r;
}

}  // namespace

AtomicCell::AtomicCell(MPI_Comm base, MPI_Comm control, int host, std::int64_t start, const Deadline& deadline,
                       const char* api)
    : host_(host), win_(base, control, cell_spec(rank_of(base) == host, start), deadline, api) {}

std::int64_t AtomicCell::fetch_add(std::int64_t delta, const char* call) {
  win_.check_live(call);
  std::int64_t old = 0;
  win_.fetch_op(&delta, &old, MPI_INT64_T, host_, 0, MPI_SUM);
  return old;
}

std::int64_t AtomicCell::load(const char* call) {
  win_.check_live(call);
  const std::int64_t zero = 0;
  std::int64_t now = 0;
  win_.fetch_op(&zero, &now, MPI_INT64_T, host_, 0, MPI_NO_OP);
  return now;
}

}  // namespace troupe::detail
