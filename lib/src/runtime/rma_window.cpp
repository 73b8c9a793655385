#include "troupe/runtime/detail/rma_window.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>

#include "troupe/core/config.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/arrival.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/runtime.hpp"

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
    TROUPE_MPI_UNCHECKED(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
    if (flag != 0) done_.store(true, std::memory_order_release);
    return flag != 0;
  }
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

 private:
  MPI_Request& request_;
  std::mutex mu_;
  std::atomic<bool> done_{false};
};

// The collective end of a window, shared by free() and the Runtime's release hook: whoever
// comes first frees, the other finds it done.
bool free_state(RmaWindow::State& s, const Deadline& deadline) noexcept {
  if (s.freed.exchange(true, std::memory_order_acq_rel)) return true;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized != 0 || s.win == MPI_WIN_NULL) return true;
  TROUPE_MPI_UNCHECKED(MPI_Win_unlock_all(s.win));
  MPI_Request req = MPI_REQUEST_NULL;
  bool all = false;
  if (TROUPE_MPI_UNCHECKED(MPI_Ibarrier(s.comm, &req)) == MPI_SUCCESS) {
    try {
      all = wait_request(req, deadline, {});
    } catch (...) {
      all = false;
    }
  }
  if (!all) {
    // A rank never freed its copy: MPI_Win_free (collective, blocking) would hang here.
    log(std::string(s.api) + ": not every rank freed it within the time allowed; its window is left allocated");
    return false;
  }
  TROUPE_MPI_UNCHECKED(MPI_Win_free(&s.win));
  TROUPE_MPI_UNCHECKED(MPI_Comm_free(&s.comm));
  return true;
}

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
      TROUPE_MPI_UNCHECKED(MPI_Test(&request, &flag, MPI_STATUS_IGNORE));
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

RmaWindow::RmaWindow(MPI_Comm base, MPI_Comm control, const WindowSpec& spec, const Deadline& deadline, const char* api)
    : state_(std::make_shared<State>()), local_bytes_(spec.local_bytes) {
  state_->api = api;
  MPI_Comm comm = collective_dup(base, control, deadline, api);
  auto fail = [&](int rc) {
    if (state_->win != MPI_WIN_NULL) TROUPE_MPI_UNCHECKED(MPI_Win_free(&state_->win));
    TROUPE_MPI_UNCHECKED(MPI_Comm_free(&comm));
    state_->freed.store(true);
    TROUPE_MPI_CHECK(rc);
  };
  TROUPE_MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  TROUPE_MPI_CHECK(MPI_Comm_size(comm, &size_));
  if (spec.same_everywhere) {
    // One allreduce of (v, -v) under MPI_MAX gives the largest and the smallest value.
    std::array<std::int64_t, 2> mine{*spec.same_everywhere, -*spec.same_everywhere};
    std::array<std::int64_t, 2> all{};
    MPI_Request req = MPI_REQUEST_NULL;
    TROUPE_MPI_CHECK(MPI_Iallreduce(mine.data(), all.data(), 2, MPI_INT64_T, MPI_MAX, comm, &req));
    if (!wait_request(req, deadline, {})) {
      // The request cannot be cancelled (a collective); the communicator is leaked with it.
      throw TimeoutError(std::string(api) + ": timed out at construction waiting for the other ranks");
    }
    if (all[0] != -all[1]) {
      TROUPE_MPI_UNCHECKED(MPI_Comm_free(&comm));
      state_->freed.store(true);
      throw ValueError(std::string(api) + ": every rank must pass the same " + spec.same_name + "; this rank passed " +
                       std::to_string(*spec.same_everywhere) + ", the ranks passed values from " +
                       std::to_string(-all[1]) + " to " + std::to_string(all[0]));
    }
  }
  // Every rank has arrived (collective_dup returned): the blocking allocation completes.
  void* mem = nullptr;
  // A Private segment is padded to kPrivateSegmentGranule (see there: MPICH 4.0.2 misplaces
  // a neighbour's segment otherwise); a NodeShared one keeps its exact size.
  const std::size_t alloc_bytes =
      spec.memory == WindowMemory::Private ? private_segment_bytes(spec.local_bytes) : spec.local_bytes;
  const auto bytes = static_cast<MPI_Aint>(alloc_bytes);
  int rc = spec.memory == WindowMemory::Private
               ? TROUPE_MPI_UNCHECKED(MPI_Win_allocate(bytes, spec.disp_unit, MPI_INFO_NULL, comm, &mem, &state_->win))
               : TROUPE_MPI_UNCHECKED(
                     MPI_Win_allocate_shared(bytes, spec.disp_unit, MPI_INFO_NULL, comm, &mem, &state_->win));
  if (rc != MPI_SUCCESS) fail(rc);
  state_->comm = comm;
  local_ = static_cast<std::byte*>(mem);
  if (spec.memory == WindowMemory::NodeShared) {
    // A rank with zero bytes may get a null base from the allocation (ompi#7203): ask
    // MPI_Win_shared_query for every segment, own included.
    shared_ = std::make_unique<std::pair<std::byte*, std::size_t>[]>(static_cast<std::size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      MPI_Aint sz = 0;
      int unit = 0;
      void* p = nullptr;
      rc = TROUPE_MPI_UNCHECKED(MPI_Win_shared_query(state_->win, r, &sz, &unit, &p));
      if (rc != MPI_SUCCESS) fail(rc);
      shared_[static_cast<std::size_t>(r)] = {static_cast<std::byte*>(p), static_cast<std::size_t>(sz)};
    }
    local_ = shared_[static_cast<std::size_t>(rank_)].first;
  }
  if (local_ != nullptr && alloc_bytes > local_bytes_)
    std::memset(local_ + local_bytes_, 0, alloc_bytes - local_bytes_);
  if (local_ != nullptr && local_bytes_ > 0) {
    if (spec.init) {
      spec.init(local_, local_bytes_);
    } else {
      std::memset(local_, 0, local_bytes_);
    }
  }
  // One passive epoch for the life of the window (no lock/unlock per operation).
  rc = TROUPE_MPI_UNCHECKED(MPI_Win_lock_all(MPI_MODE_NOCHECK, state_->win));
  if (rc != MPI_SUCCESS) fail(rc);
  // Nobody accesses a segment before its owner has written it.
  fence(deadline, api);
  // Freed with the Runtime if the object outlives it (the hook holds the state, not us).
  if (Runtime* rt = Runtime::current()) {
    std::weak_ptr<State> weak = state_;
    rt->on_release([weak] {
      if (auto s = weak.lock()) free_state(*s, Deadline::after(settings().startup_timeout, s->api));
    });
  }
}

RmaWindow::~RmaWindow() { free(Deadline::after(settings().startup_timeout, state_->api)); }

bool RmaWindow::free(const Deadline& deadline) noexcept { return free_state(*state_, deadline); }

void RmaWindow::check_live(const char* call) const {
  if (freed()) {
    throw InvalidStateError(std::string(call) +
                            ": the window was freed (free() was called, or its Runtime was released)");
  }
}

std::byte* RmaWindow::shared_base(int rank, std::size_t* bytes) const {
  if (!shared_ || rank < 0 || rank >= size_) {
    throw ValueError(std::string(state_->api) + ": shared_base of rank " + std::to_string(rank) +
                     " (not a node-shared window, or not a rank of it)");
  }
  const auto& seg = shared_[static_cast<std::size_t>(rank)];
  if (bytes != nullptr) *bytes = seg.second;
  return seg.first;
}

void RmaWindow::fetch_op(const void* operand, void* result, MPI_Datatype type, int target, MPI_Aint disp, MPI_Op op) {
  TROUPE_MPI_CHECK(MPI_Fetch_and_op(operand, result, type, target, disp, op, state_->win));
  TROUPE_MPI_CHECK(MPI_Win_flush(target, state_->win));
}

void RmaWindow::compare_swap(const void* desired, const void* expected, void* result, MPI_Datatype type, int target,
                             MPI_Aint disp) {
  TROUPE_MPI_CHECK(MPI_Compare_and_swap(desired, expected, result, type, target, disp, state_->win));
  TROUPE_MPI_CHECK(MPI_Win_flush(target, state_->win));
}

void RmaWindow::flush(int target) { TROUPE_MPI_CHECK(MPI_Win_flush(target, state_->win)); }

void RmaWindow::flush_all() { TROUPE_MPI_CHECK(MPI_Win_flush_all(state_->win)); }

void RmaWindow::fence(const Deadline& deadline, const char* call) {
  TROUPE_MPI_CHECK(MPI_Win_flush_all(state_->win));
  TROUPE_MPI_CHECK(MPI_Win_sync(state_->win));
  MPI_Request req = MPI_REQUEST_NULL;
  TROUPE_MPI_CHECK(MPI_Ibarrier(state_->comm, &req));
  if (!wait_request(req, deadline, {})) {
    throw TimeoutError(std::string(call) + ": timed out waiting for the other ranks");
  }
  TROUPE_MPI_CHECK(MPI_Win_sync(state_->win));
}

}  // namespace troupe::detail
