#include "troupe/across/detail/atomic_cell.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "troupe/core/config.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/arrival.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::detail {

namespace {

// Tests one request for whichever waiting thread polls first (MPI forbids two threads testing
// the same request at once: a try-lock keeps them apart).
class RequestSource final : public ProgressSource {
 public:
  explicit RequestSource(MPI_Request& r) : request_(r) {}
  bool try_progress() noexcept override {
    if (done_.load(std::memory_order_acquire)) return false;
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    int flag = 0;
    MPI_Test(&request_, &flag, MPI_STATUS_IGNORE);
    if (flag != 0) done_.store(true, std::memory_order_release);
    return flag != 0;
  }
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

 private:
  MPI_Request& request_;
  std::mutex mu_;
  std::atomic<bool> done_{false};
};

}  // namespace

bool wait_request(MPI_Request& request, const Deadline& deadline, const std::function<bool()>& stop,
                  const std::stop_token* token, bool help) {
  if (request == MPI_REQUEST_NULL) return true;
  // The spin phase of the one wait policy, on the request alone: a collective that every
  // rank has nearly reached completes within microseconds, and each round of the general
  // loop also polls every progress source (the messengers' engines), which costs more than
  // the MPI_Test it waits for.
  {
    int flag = 0;
    const auto spin_until = std::chrono::steady_clock::now() + kWaitSpin;
    do {
      MPI_Test(&request, &flag, MPI_STATUS_IGNORE);
      if (flag != 0) return true;
      if (stop && stop()) return false;
    } while (std::chrono::steady_clock::now() < spin_until && !deadline.expired());
  }
  RequestSource src(request);
  add_progress_source(&src);
  WaitWord word;  // nobody notifies it: the loop's naps end by time, and it polls the source
  WaitParams params;
  params.help = help;
  auto ready = [&] { return src.done() || src.try_progress() || (stop && stop()); };
  const WaitStatus st = word.wait_status(ready, deadline, token, params);
  remove_progress_source(&src);
  (void)st;
  return src.done();
}

AtomicCell::AtomicCell(MPI_Comm base, MPI_Comm control, int host, std::int64_t start, const Deadline& deadline,
                       const char* api)
    : host_(host), api_(api) {
  comm_ = collective_dup(base, control, deadline, api);
  int rank = 0;
  TROUPE_MPI_CHECK(MPI_Comm_rank(comm_, &rank));
  // Every rank has arrived (collective_dup returned): the blocking allocation completes.
  const MPI_Aint bytes = rank == host ? static_cast<MPI_Aint>(sizeof(std::int64_t)) : 0;
  const int rc = MPI_Win_allocate(bytes, sizeof(std::int64_t), MPI_INFO_NULL, comm_, &base_, &win_);
  if (rc != MPI_SUCCESS) {
    MPI_Comm_free(&comm_);
    TROUPE_MPI_CHECK(rc);
  }
  if (rank == host) *base_ = start;
  // One passive epoch for the life of the cell (no lock/unlock per update).
  TROUPE_MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_));
  // Nobody updates the cell before the host has written its start value.
  MPI_Request req = MPI_REQUEST_NULL;
  TROUPE_MPI_CHECK(MPI_Ibarrier(comm_, &req));
  if (!wait_request(req, deadline, {})) {
    throw TimeoutError(std::string(api) + ": timed out at start-up waiting for the other ranks");
  }
}

AtomicCell::~AtomicCell() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized || win_ == MPI_WIN_NULL) return;
  MPI_Win_unlock_all(win_);
  MPI_Request req = MPI_REQUEST_NULL;
  bool all = false;
  if (MPI_Ibarrier(comm_, &req) == MPI_SUCCESS) {
    all = wait_request(req, Deadline::after(settings().startup_timeout, api_), {});
  }
  if (!all) {
    // A rank never destroyed its copy: freeing (collective, blocking) would hang here.
    log(std::string(api_) + ": not every rank destroyed it within the start-up timeout; its window is left allocated");
    return;
  }
  MPI_Win_free(&win_);
  MPI_Comm_free(&comm_);
}

std::int64_t AtomicCell::fetch_op(std::int64_t operand, MPI_Op op) {
  std::int64_t old = 0;
  TROUPE_MPI_CHECK(MPI_Fetch_and_op(&operand, &old, MPI_INT64_T, host_, 0, op, win_));
  TROUPE_MPI_CHECK(MPI_Win_flush(host_, win_));
  return old;
}

std::int64_t AtomicCell::fetch_add(std::int64_t delta) { return fetch_op(delta, MPI_SUM); }
std::int64_t AtomicCell::load() { return fetch_op(0, MPI_NO_OP); }
}  // namespace troupe::detail
