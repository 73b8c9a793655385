#include "troupe/window/global_array.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <limits>
#include <string>

#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/detail/text.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/engine/engine.hpp"
#include "troupe/messaging/messenger.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/runtime.hpp"

namespace troupe::detail {

namespace {

// One MPI call moves at most this many bytes (MPI counts are int).
constexpr std::size_t kMaxCallBytes = std::size_t{1} << 30;

}  // namespace

// The asynchronous operations of one array still in flight on this rank: free() and the
// destructor wait for them, so no request outlives the window. Shared with the requests'
// completion callbacks, which may run after the array is gone.
struct GlobalArrayBase::Inflight {
  std::atomic<long> count{0};
  WaitWord word;
};

namespace {

// One asynchronous operation: completes when its last request (and the issuing thread's
// guard) is done.
struct AsyncOp {
  std::atomic<long> left{1};  // the issuing thread's guard
  GlobalArrayBase::Done done;
  std::exception_ptr error;
  std::shared_ptr<void> inflight_keep;
  std::atomic<long>* inflight_count = nullptr;
  WaitWord* inflight_word = nullptr;

  void finish_one() noexcept {
    if (left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    try {
      done(error);
    } catch (...) {
      log("GlobalArray: an asynchronous operation's completion failed: " + describe_current_exception());
    }
    done = nullptr;  // release the buffers now
    inflight_count->fetch_sub(1, std::memory_order_acq_rel);
    inflight_word->notify_all();
  }
};

struct Piece {
  int target;
  MPI_Aint disp;
  std::size_t offset;  // elements from the start of the caller's buffer
  std::size_t count;   // elements
};

}  // namespace

MPI_Op mpi_op_of(AccumulateOp op) noexcept {
  switch (op) {
    case AccumulateOp::Sum:
      return MPI_SUM;
    case AccumulateOp::Min:
      return MPI_MIN;
    case AccumulateOp::Max:
      return MPI_MAX;
    case AccumulateOp::Replace:
      return MPI_REPLACE;
  }
  return MPI_SUM;
}

Deadline global_array_free_deadline() { return Deadline::after(settings().startup_timeout, "GlobalArray::free"); }

void throw_bad_rank(int r, int ranks, const char* call) {
  throw ValueError(std::string(call) + ": rank must be in [0, " + std::to_string(ranks) + "), got " +
                   std::to_string(r));
}

GlobalArrayBase::GlobalArrayBase(std::size_t n, std::size_t elem_size, MPI_Datatype elem_type,
                                 std::function<void(std::byte*, std::size_t)> init)
    : n_(n), elem_(elem_size), type_(elem_type), inflight_(std::make_shared<Inflight>()) {
  const auto deadline = Deadline::after(settings().startup_timeout, "GlobalArray");
  hub_ = Hub::of(Scope::Ranks, deadline, "GlobalArray");
  rank_ = hub_->rank();
  nranks_ = hub_->size();
  // The hub's own rule (Hub::of): a progress thread, and MPI calls from every thread, only at
  // MPI_THREAD_MULTIPLE.
  multiple_ = Runtime::current()->progress_threads();
  q_ = n_ / static_cast<std::size_t>(nranks_);
  r_ = n_ % static_cast<std::size_t>(nranks_);
  if (elem_ > static_cast<std::size_t>(INT_MAX)) {
    throw ValueError("GlobalArray: the element type is too large (" + std::to_string(elem_) + " bytes)");
  }
  const std::size_t mine = block_count(rank_);
  if (n_ > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()) ||
      (mine != 0 && mine > std::numeric_limits<std::size_t>::max() / elem_)) {
    throw ValueError("GlobalArray: a length of " + std::to_string(n_) + " elements of " + std::to_string(elem_) +
                     " bytes does not fit in memory");
  }
  WindowSpec spec;
  spec.memory = WindowMemory::Private;
  spec.local_bytes = mine * elem_;
  spec.disp_unit = static_cast<int>(elem_);
  spec.same_everywhere = static_cast<std::int64_t>(n_);
  spec.same_name = "length";
  spec.init = std::move(init);  // empty: zeros
  // Arrival messages travel on the Runtime's communicator, which no engine listens on.
  win_ = std::make_unique<RmaWindow>(hub_->comm(), Runtime::current()->comm(), spec, deadline, "GlobalArray");
}

GlobalArrayBase::~GlobalArrayBase() {
  if (win_ && !win_->freed()) (void)free(global_array_free_deadline());
}

void GlobalArrayBase::throw_index(std::size_t i, const char* call) const {
  throw IndexError(std::string(call) + ": index " + std::to_string(i) + " is out of range for an array of size " +
                   std::to_string(n_));
}

void GlobalArrayBase::throw_range(std::size_t first, std::size_t count, const char* call) const {
  throw IndexError(std::string(call) + ": range [" + std::to_string(first) + ", " + std::to_string(first) + " + " +
                   std::to_string(count) + ") is out of range for an array of size " + std::to_string(n_));
}

void GlobalArrayBase::check_usable(const char* call) const {
  win_->check_live(call);
  if (!hub_->may_call_mpi()) [[unlikely]] {
    throw InvalidStateError(std::string(call) +
                            ": below MPI_THREAD_MULTIPLE only the thread that built troupe's first cross-rank object "
                            "may use a GlobalArray's one-sided operations");
  }
}

bool GlobalArrayBase::hub_may_call_mpi() const noexcept { return hub_->may_call_mpi(); }

void GlobalArrayBase::rma_one(bool put, std::size_t disp, void* buf, int target) {
  MPI_Win w = win_->win();
  const bool typed = type_ != MPI_DATATYPE_NULL;
  const MPI_Datatype t = typed ? type_ : MPI_BYTE;
  const int c = typed ? 1 : static_cast<int>(elem_);
  if (put) {
    TROUPE_MPI_CHECK(MPI_Put(buf, c, t, target, static_cast<MPI_Aint>(disp), c, t, w));
  } else {
    TROUPE_MPI_CHECK(MPI_Get(buf, c, t, target, static_cast<MPI_Aint>(disp), c, t, w));
  }
  TROUPE_MPI_CHECK(MPI_Win_flush(target, w));
}

std::byte* GlobalArrayBase::local_bytes(const char* call) const {
  win_->check_live(call);
  return win_->local();
}

template <class Fn>
void GlobalArrayBase::for_each_piece(std::size_t first, std::size_t count, Fn&& fn) const {
  const std::size_t max_elems = std::max<std::size_t>(1, kMaxCallBytes / elem_);
  std::size_t done = 0;
  while (done < count) {
    const std::size_t i = first + done;
    const int target = owner_unchecked(i);
    const std::size_t begin = block_begin(target);
    const std::size_t in_block = block_begin(target + 1) - i;
    const std::size_t k = std::min({count - done, in_block, max_elems});
    fn(target, static_cast<MPI_Aint>(i - begin), done, k);
    done += k;
  }
}

void GlobalArrayBase::transfer(Kind kind, std::size_t first, std::size_t count, void* buf, MPI_Op op) {
  MPI_Win w = win_->win();
  auto* bytes = static_cast<std::byte*>(buf);
  int touched = -1;  // the one target touched, or -2 for several
  for_each_piece(first, count, [&](int target, MPI_Aint disp, std::size_t off, std::size_t k) {
    const bool typed = type_ != MPI_DATATYPE_NULL;
    const MPI_Datatype t = typed ? type_ : MPI_BYTE;
    const int c = static_cast<int>(typed ? k : k * elem_);
    std::byte* p = bytes + off * elem_;
    switch (kind) {
      case Kind::Get:
        TROUPE_MPI_CHECK(MPI_Get(p, c, t, target, disp, c, t, w));
        break;
      case Kind::Put:
        TROUPE_MPI_CHECK(MPI_Put(p, c, t, target, disp, c, t, w));
        break;
      case Kind::Acc:
        TROUPE_MPI_CHECK(MPI_Accumulate(p, c, t, target, disp, c, t, op, w));
        break;
    }
    touched = (touched == -1 || touched == target) ? target : -2;
  });
  if (touched >= 0) {
    win_->flush(touched);
  } else if (touched == -2) {
    win_->flush_all();
  }
}

void GlobalArrayBase::get(std::size_t first, std::size_t count, void* out, const char* call) {
  check_usable_fast(call);
  check_range(first, count, call);
  transfer(Kind::Get, first, count, out, MPI_NO_OP);
}

void GlobalArrayBase::put(std::size_t first, std::size_t count, const void* in, const char* call) {
  check_usable_fast(call);
  check_range(first, count, call);
  transfer(Kind::Put, first, count, const_cast<void*>(in), MPI_NO_OP);
}

void GlobalArrayBase::accumulate(std::size_t first, std::size_t count, const void* in, MPI_Op op, const char* call) {
  check_usable_fast(call);
  check_range(first, count, call);
  transfer(Kind::Acc, first, count, const_cast<void*>(in), op);
}

void GlobalArrayBase::fetch_op(std::size_t i, const void* operand, void* result, MPI_Op op, const char* call) {
  check_usable_fast(call);
  check_index(i, call);
  const int target = owner_unchecked(i);
  win_->fetch_op(operand, result, type_, target, static_cast<MPI_Aint>(i - block_begin(target)), op);
}

void GlobalArrayBase::compare_swap(std::size_t i, const void* desired, const void* expected, void* result,
                                   MPI_Datatype cas_type, const char* call) {
  check_usable_fast(call);
  check_index(i, call);
  const int target = owner_unchecked(i);
  win_->compare_swap(desired, expected, result, cas_type, target, static_cast<MPI_Aint>(i - block_begin(target)));
}

namespace {

std::shared_ptr<AsyncOp> start_async(GlobalArrayBase::Done done, const std::shared_ptr<void>& keep,
                                     std::atomic<long>* count, WaitWord* word) {
  auto op = std::make_shared<AsyncOp>();
  op->done = std::move(done);
  op->inflight_keep = keep;
  op->inflight_count = count;
  op->inflight_word = word;
  count->fetch_add(1, std::memory_order_acq_rel);
  return op;
}

// One MPI_Test first, on the issuing thread (which may call MPI): on one node (osc/sm) a
// request usually completes inside the call, and handing it to the engine would cost a
// round of the progress thread (about 1.4 us at 2 ranks, up to a time slice when the
// ranks' threads outnumber the cores). Only a request still pending is watched.
void watch_or_finish(engine::Engine& engine, MPI_Request& req, const std::shared_ptr<AsyncOp>& op) {
  int flag = 0;
  if (TROUPE_MPI_UNCHECKED(MPI_Test(&req, &flag, MPI_STATUS_IGNORE)) == MPI_SUCCESS && flag != 0) {
    op->finish_one();
  } else {
    engine.watch(req, [op](const MPI_Status&) { op->finish_one(); });
  }
}

}  // namespace

void GlobalArrayBase::async_transfer(bool is_get, std::size_t first, std::size_t count, void* buf, Done done,
                                     const char* call) {
  check_usable(call);
  check_range(first, count, call);
  std::vector<Piece> pieces;
  for_each_piece(first, count, [&](int target, MPI_Aint disp, std::size_t off, std::size_t k) {
    pieces.push_back({target, disp, off, k});
  });
  auto op = start_async(std::move(done), inflight_, &inflight_->count, &inflight_->word);
  op->left.fetch_add(static_cast<long>(pieces.size()), std::memory_order_acq_rel);
  engine::Engine& engine = hub_->messenger()->engine();
  MPI_Win w = win_->win();
  auto* bytes = static_cast<std::byte*>(buf);
  std::size_t issued = 0;
  try {
    for (const Piece& pc : pieces) {
      const bool typed = type_ != MPI_DATATYPE_NULL;
      const MPI_Datatype t = typed ? type_ : MPI_BYTE;
      const int c = static_cast<int>(typed ? pc.count : pc.count * elem_);
      std::byte* p = bytes + pc.offset * elem_;
      MPI_Request req = MPI_REQUEST_NULL;
      if (is_get) {
        TROUPE_MPI_CHECK(MPI_Rget(p, c, t, pc.target, pc.disp, c, t, w, &req));
      } else {
        TROUPE_MPI_CHECK(MPI_Rput(p, c, t, pc.target, pc.disp, c, t, w, &req));
      }
      ++issued;
      watch_or_finish(engine, req, op);
    }
  } catch (...) {
    op->error = std::current_exception();
    op->left.fetch_sub(static_cast<long>(pieces.size() - issued), std::memory_order_acq_rel);
    op->finish_one();  // the guard
    throw;
  }
  op->finish_one();  // the guard
}

void GlobalArrayBase::get_async(std::size_t first, std::size_t count, void* out, Done done, const char* call) {
  async_transfer(true, first, count, out, std::move(done), call);
}

void GlobalArrayBase::put_async(std::size_t first, std::size_t count, const void* in, Done done, const char* call) {
  async_transfer(false, first, count, const_cast<void*>(in), std::move(done), call);
}

void GlobalArrayBase::fetch_op_async(std::size_t i, const void* operand, void* result, MPI_Op op, Done done,
                                     const char* call) {
  check_usable(call);
  check_index(i, call);
  const int target = owner_unchecked(i);
  auto aop = start_async(std::move(done), inflight_, &inflight_->count, &inflight_->word);
  aop->left.fetch_add(1, std::memory_order_acq_rel);
  try {
    MPI_Request req = MPI_REQUEST_NULL;
    TROUPE_MPI_CHECK(MPI_Rget_accumulate(operand, 1, type_, result, 1, type_, target,
                                         static_cast<MPI_Aint>(i - block_begin(target)), 1, type_, op, win_->win(),
                                         &req));
    watch_or_finish(hub_->messenger()->engine(), req, aop);
  } catch (...) {
    aop->error = std::current_exception();
    aop->finish_one();
    aop->finish_one();
    throw;
  }
  aop->finish_one();
}

void GlobalArrayBase::flush(const char* call) {
  check_usable(call);
  win_->flush_all();
}

void GlobalArrayBase::fence(const Deadline& deadline, const char* call) {
  check_usable(call);
  win_->fence(deadline, call);
}

bool GlobalArrayBase::wait_inflight(const Deadline& deadline) noexcept {
  auto& in = *inflight_;
  try {
    return in.word.wait([&in] { return in.count.load(std::memory_order_acquire) == 0; }, deadline, nullptr,
                        "GlobalArray::free");
  } catch (...) {
    return false;
  }
}

bool GlobalArrayBase::free(const Deadline& deadline) noexcept {
  if (win_->freed()) return true;
  if (!wait_inflight(deadline)) {
    log("GlobalArray::free: this rank's asynchronous operations did not complete within the time allowed");
  }
  return win_->free(deadline);
}

}  // namespace troupe::detail
