#include "troupe/runtime/detail/arrival.hpp"

#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"

namespace troupe::detail {

namespace {

std::string list(const std::vector<int>& ranks) {
  std::string s;
  for (std::size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return "[" + s + "]";
}

// The rank in @p control of every rank of @p base (MPI_UNDEFINED if it has none).
std::vector<int> control_ranks(MPI_Comm base, MPI_Comm control, int size) {
  MPI_Group gb = MPI_GROUP_NULL, gc = MPI_GROUP_NULL;
  TROUPE_MPI_CHECK(MPI_Comm_group(base, &gb));
  TROUPE_MPI_CHECK(MPI_Comm_group(control, &gc));
  std::vector<int> in(static_cast<std::size_t>(size)), out(static_cast<std::size_t>(size));
  for (int i = 0; i < size; ++i) in[static_cast<std::size_t>(i)] = i;
  const int rc = TROUPE_MPI_UNCHECKED(MPI_Group_translate_ranks(gb, size, in.data(), gc, out.data()));
  TROUPE_MPI_UNCHECKED(MPI_Group_free(&gb));
  TROUPE_MPI_UNCHECKED(MPI_Group_free(&gc));
  TROUPE_MPI_CHECK(rc);
  return out;
}

}  // namespace

MPI_Comm collective_dup(MPI_Comm base, MPI_Comm control, const Deadline& deadline, const char* api) {
  int rank = 0, size = 1;
  TROUPE_MPI_CHECK(MPI_Comm_rank(base, &rank));
  TROUPE_MPI_CHECK(MPI_Comm_size(base, &size));
  const std::vector<int> ctl = control_ranks(base, control, size);
  bool named = true;  // every rank of base has a rank in control: arrivals can name them
  for (int c : ctl) named = named && c != MPI_UNDEFINED;

  // Announce this rank to every other, and listen for theirs.
  std::vector<MPI_Request> recvs, sends;
  std::vector<int> from;
  if (named) {
    for (int j = 0; j < size; ++j) {
      if (j == rank) continue;
      const int peer = ctl[static_cast<std::size_t>(j)];
      MPI_Request r = MPI_REQUEST_NULL, s = MPI_REQUEST_NULL;
      TROUPE_MPI_CHECK(MPI_Irecv(nullptr, 0, MPI_BYTE, peer, kArrivalTag, control, &r));
      TROUPE_MPI_CHECK(MPI_Isend(nullptr, 0, MPI_BYTE, peer, kArrivalTag, control, &s));
      recvs.push_back(r);
      sends.push_back(s);
      from.push_back(j);
    }
  }
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Request dup_req = MPI_REQUEST_NULL;
  TROUPE_MPI_CHECK(MPI_Comm_idup(base, &dup, &dup_req));

  // The requests are tested through a progress source of the one wait loop, only ever by
  // the constructing thread (it may call MPI at any thread level; other waiters that drive
  // progress meanwhile skip it).
  struct Arrivals final : ProgressSource {
    std::mutex mu;
    std::thread::id owner = std::this_thread::get_id();
    std::vector<MPI_Request>* recvs = nullptr;
    MPI_Request* dup_req = nullptr;
    std::vector<int> arrived;
    bool dup_done = false;
    std::exception_ptr error;
    bool complete() const {
      if (!dup_done) return false;
      for (int a : arrived) {
        if (!a) return false;
      }
      return true;
    }
    bool try_progress() noexcept override {
      if (std::this_thread::get_id() != owner) return false;
      std::unique_lock lock(mu, std::try_to_lock);
      if (!lock || error || complete()) return false;
      bool changed = false;
      try {
        for (std::size_t i = 0; i < recvs->size(); ++i) {
          if (arrived[i]) continue;
          TROUPE_MPI_CHECK(MPI_Test(&(*recvs)[i], &arrived[i], MPI_STATUS_IGNORE));
          changed = changed || arrived[i];
        }
        if (!dup_done) {
          int flag = 0;
          TROUPE_MPI_CHECK(MPI_Test(dup_req, &flag, MPI_STATUS_IGNORE));
          dup_done = flag != 0;
          changed = changed || dup_done;
        }
      } catch (...) {
        error = std::current_exception();
        changed = true;
      }
      return changed;
    }
  } source;
  source.recvs = &recvs;
  source.dup_req = &dup_req;
  source.arrived.assign(recvs.size(), 0);
  add_progress_source(&source);
  WaitWord nobody;  // nothing notifies: the loop polls the source with its bounded back-off
  WaitParams params;
  params.help = false;
  bool ok = false;
  try {
    ok = nobody.wait(
        [&] {
          (void)source.try_progress();
          std::lock_guard lock(source.mu);
          return source.error || source.complete();
        },
        deadline, nullptr, api, params);
  } catch (...) {
    remove_progress_source(&source);
    throw;
  }
  remove_progress_source(&source);
  if (source.error) std::rethrow_exception(source.error);
  std::vector<int>& arrived = source.arrived;
  if (ok) {
    TROUPE_MPI_CHECK(MPI_Waitall(static_cast<int>(sends.size()), sends.data(), MPI_STATUSES_IGNORE));
    TROUPE_MPI_CHECK(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
    return dup;
  }
  // Timed out. Name who did not arrive, and take back what can be taken back.
  std::vector<int> missing;
  for (std::size_t i = 0; i < recvs.size(); ++i) {
    if (arrived[i]) continue;
    missing.push_back(from[i]);
    TROUPE_MPI_UNCHECKED(MPI_Cancel(&recvs[i]));
    TROUPE_MPI_UNCHECKED(MPI_Wait(&recvs[i], MPI_STATUS_IGNORE));
  }
  for (auto& s : sends) {
    int flag = 0;
    TROUPE_MPI_UNCHECKED(MPI_Test(&s, &flag, MPI_STATUS_IGNORE));
    if (!flag) TROUPE_MPI_UNCHECKED(MPI_Request_free(&s));  // a zero-byte message to a rank that never came
  }
  std::string why;
  if (!named) {
    why = "some of the " + std::to_string(size) + " ranks did not arrive (they cannot be named: the communicator " +
          "holds ranks outside the Runtime's)";
  } else if (missing.empty()) {
    why = "every rank arrived, but the construction did not complete: another rank gave up first";
  } else {
    why = "rank(s) " + list(missing) + " of " + std::to_string(size) +
          " did not arrive; every rank of the communicator must build it, with the same options";
  }
  throw TimeoutError(std::string(api) + ": timed out at start-up on rank " + std::to_string(rank) + ": " + why);
}

}  // namespace troupe::detail
