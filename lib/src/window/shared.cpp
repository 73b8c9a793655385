#include "troupe/window/shared.hpp"

#include <mpi.h>
#include <unistd.h>

#include <climits>
#include <new>
#include <string>
#include <thread>

#include "troupe/core/config.hpp"
#include "troupe/core/detail/futex.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/detail/mpi_check.hpp"
#include "troupe/runtime/detail/rma_window.hpp"
#include "troupe/runtime/runtime.hpp"

namespace troupe {

namespace detail {

namespace {

// The start of node rank 0's segment: the lock word and its owner, alone on their cache
// line; the elements start at the next line (64-byte aligned whatever the base).
struct alignas(64) Header {
  // 0: free; 1: held; 2: held, and a thread may sleep on the word (release must wake).
  std::atomic<std::uint32_t> state;
  std::uint32_t unused;
  // pid << 32 | thread tag of the holder; 0 when free.
  std::atomic<std::uint64_t> owner;
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free,
              "the lock word must be address-free (lock-free) to work across processes");
constexpr std::size_t kLine = 64;

std::byte* align_up(std::byte* p) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  return reinterpret_cast<std::byte*>((v + kLine - 1) / kLine * kLine);
}

// A tag of this thread unique on the node: the process id and a per-process thread number.
std::uint64_t self_tag() noexcept {
  static std::atomic<std::uint32_t> next{1};
  thread_local const std::uint32_t tag = next.fetch_add(1, std::memory_order_relaxed);
  static const auto pid = static_cast<std::uint64_t>(::getpid());
  return (pid << 32) | tag;
}

std::string describe_owner(std::uint64_t owner) {
  return "pid " + std::to_string(owner >> 32) + ", thread " + std::to_string(owner & 0xffffffffU);
}

}  // namespace

struct SharedSegment::Impl {
  std::unique_ptr<RmaWindow> win;
  Header* header = nullptr;
  bool has_lock = true;
  bool multiple = false;
  std::thread::id maker;
};

SharedSegment::SharedSegment(std::size_t count, std::size_t elem_size, const SharedOptions& opts,
                             const std::function<void(std::byte* data)>& fill, const char* api)
    : impl_(std::make_unique<Impl>()), count_(count), api_(api) {
  Runtime* rt = Runtime::current();
  if (rt == nullptr) {
    throw InvalidStateError(std::string(api) + ": needs a live troupe::Runtime (make one first)");
  }
  if (count > (static_cast<std::size_t>(PTRDIFF_MAX) - 2 * kLine) / (elem_size == 0 ? 1 : elem_size)) {
    throw ValueError(std::string(api) + ": length " + std::to_string(count) + " is too large");
  }
  impl_->has_lock = opts.lock;
  impl_->multiple = rt->progress_threads();
  impl_->maker = std::this_thread::get_id();
  int node_rank = 0;
  TROUPE_MPI_CHECK(MPI_Comm_rank(rt->node_comm(), &node_rank));

  WindowSpec spec;
  spec.memory = WindowMemory::NodeShared;
  // Everything lives in node rank 0's segment (one contiguous array for every rank); the
  // others allocate nothing and reach it through shared_base(0). The spare line lets the
  // header start on a 64-byte boundary whatever the base's alignment.
  spec.local_bytes = node_rank == 0 ? kLine + sizeof(Header) + count * elem_size : 0;
  spec.disp_unit = 1;
  spec.same_everywhere = static_cast<std::int64_t>(count);
  spec.same_name = "length";
  spec.init = [&fill](std::byte* base, std::size_t bytes) {
    std::memset(base, 0, bytes);
    auto* h = ::new (align_up(base)) Header{};
    h->state.store(0, std::memory_order_relaxed);
    h->owner.store(0, std::memory_order_relaxed);
    fill(reinterpret_cast<std::byte*>(h) + sizeof(Header));
  };
  const Deadline deadline = opts.timeout ? Deadline::after(*opts.timeout, api) : startup_deadline(api);
  impl_->win = std::make_unique<RmaWindow>(rt->node_comm(), rt->comm(), spec, deadline, api);
  // Every rank maps the same pages; a mapping starts on a page boundary, so the aligned
  // offset of the header is the same in every process.
  std::byte* base = impl_->win->shared_base(0);
  impl_->header = reinterpret_cast<Header*>(align_up(base));
  data_ = reinterpret_cast<std::byte*>(impl_->header) + sizeof(Header);
}

SharedSegment::~SharedSegment() = default;

Deadline SharedSegment::startup_deadline(const char* call) { return Deadline::after(settings().startup_timeout, call); }

void SharedSegment::check_live(const char* call) const { impl_->win->check_live(call); }

bool SharedSegment::freed() const noexcept { return impl_->win->freed(); }

SharedLock& SharedSegment::lock(const char* call) {
  check_live(call);
  if (!impl_->has_lock) {
    throw InvalidStateError(std::string(call) +
                            ": created with lock=false (as Python's RawArray / RawValue, it has no lock)");
  }
  return lock_;
}

void SharedSegment::sync(const char* call) {
  check_live(call);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Below MPI_THREAD_MULTIPLE only the thread that made the object may call MPI; on the
  // unified memory model of a node-shared window the fence above is what MPI_Win_sync
  // amounts to (a processor memory barrier).
  if (impl_->multiple || std::this_thread::get_id() == impl_->maker) {
    TROUPE_MPI_CHECK(MPI_Win_sync(impl_->win->win()));
  }
}

void SharedSegment::check_mpi_thread(const char* call) const {
  if (!impl_->multiple && std::this_thread::get_id() != impl_->maker) {
    throw InvalidStateError(std::string(call) +
                            ": makes MPI calls, and below MPI_THREAD_MULTIPLE only the thread that made the object "
                            "may make them");
  }
}

void SharedSegment::barrier(const Deadline& deadline, const char* call) {
  check_live(call);
  check_mpi_thread(call);
  impl_->win->fence(deadline, call);
}

void SharedSegment::free(const Deadline& deadline, const char* call) {
  if (freed()) return;
  check_mpi_thread(call);
  if (!impl_->win->free(deadline)) {
    throw TimeoutError(std::string(call) +
                       ": not every rank of the node freed it within the time allowed; its memory is left allocated");
  }
}

std::atomic<std::uint32_t>& SharedSegment::lock_state() noexcept { return impl_->header->state; }

std::atomic<std::uint64_t>& SharedSegment::lock_owner() noexcept { return impl_->header->owner; }

void SharedSegment::throw_index(const char* call, std::size_t i, std::size_t n) {
  throw IndexError(std::string(call) + ": index " + std::to_string(i) + " out of range for length " +
                   std::to_string(n));
}

namespace {

// The wait of SharedLock::acquire for the one wait loop: the condition is "the word was 0
// and this thread set it", the word is the lock word itself, in shared memory.
class LockTarget final : public WaitTarget {
 public:
  explicit LockTarget(std::atomic<std::uint32_t>& state) noexcept : state_(state) {}
  bool ready() noexcept override {
    // Taken as "held, maybe contended": this thread may have consumed the wake-up meant
    // for another sleeper, so its release must wake the next one.
    // Read first: a spinning waiter that attempted the exchange each time would pull the
    // line away from the holder at every look.
    if (state_.load(std::memory_order_relaxed) != 0) return false;
    std::uint32_t free = 0;
    return state_.compare_exchange_strong(free, 2, std::memory_order_acquire, std::memory_order_relaxed);
  }
  std::atomic<std::uint32_t>& word() noexcept override { return state_; }
  std::uint32_t arm() noexcept override {
    // Announce a sleeper: the holder's release sees 2 and wakes one. If the word turned 0
    // meanwhile the loop's ready() check takes it, and a sleep on 2 returns at once.
    std::uint32_t held = 1;
    state_.compare_exchange_strong(held, 2, std::memory_order_relaxed);
    return 2;
  }
  void poke() noexcept override { futex_wake_shared(state_, INT_MAX); }
  bool process_shared() const noexcept override { return true; }

 private:
  std::atomic<std::uint32_t>& state_;
};

}  // namespace

}  // namespace detail

bool SharedLock::acquire(bool blocking) { return blocking ? acquire(Deadline{}) : acquire(Deadline::at(Clock::now())); }

bool SharedLock::acquire(const Deadline& deadline, CancellationToken token) {
  seg_->check_live("SharedLock::acquire");
  auto& state = seg_->lock_state();
  auto& owner = seg_->lock_owner();
  const std::uint64_t me = detail::self_tag();
  if (owner.load(std::memory_order_relaxed) == me) {
    throw InvalidStateError(
        "SharedLock::acquire: this thread holds the lock already (it is not recursive: it would wait for itself)");
  }
  std::uint32_t free = 0;
  if (!state.compare_exchange_strong(free, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
    if (deadline.expired()) return false;  // try_lock / a zero timeout: one attempt
    detail::LockTarget target(state);
    detail::WaitParams params;
    params.help = false;  // a resource wait: a helped task could wait for the lock beneath us
    const auto st = detail::wait_until(target, deadline, &token, params);
    if (st != detail::WaitStatus::kReady) {
      // Giving up. This thread may have consumed a wake-up, or a thread that took the free
      // word as 1 may hold it while others sleep: make sure the next release, or this
      // moment's free word, wakes a sleeper.
      std::uint32_t held = 1;
      if (!state.compare_exchange_strong(held, 2, std::memory_order_relaxed) && held == 0) {
        detail::futex_wake_shared(state, 1);
      }
      if (st == detail::WaitStatus::kCancelled) detail::throw_wait_cancelled("SharedLock::acquire");
      return false;
    }
  }
  owner.store(me, std::memory_order_relaxed);
  return true;
}

void SharedLock::release() {
  seg_->check_live("SharedLock::release");
  auto& state = seg_->lock_state();
  auto& owner = seg_->lock_owner();
  const std::uint64_t me = detail::self_tag();
  const std::uint64_t holder = owner.load(std::memory_order_relaxed);
  if (holder != me) {
    if (state.load(std::memory_order_relaxed) == 0) {
      throw InvalidStateError("SharedLock::release: the lock is not held");
    }
    throw InvalidStateError("SharedLock::release: held by another thread (" + detail::describe_owner(holder) +
                            "), not by this one (" + detail::describe_owner(me) + ")");
  }
  owner.store(0, std::memory_order_relaxed);
  if (state.exchange(0, std::memory_order_release) == 2) detail::futex_wake_shared(state, 1);
}

bool SharedLock::locked() const {
  seg_->check_live("SharedLock::locked");
  return seg_->lock_state().load(std::memory_order_acquire) != 0;
}

bool SharedLock::held_by_me() const {
  seg_->check_live("SharedLock::held_by_me");
  return seg_->lock_owner().load(std::memory_order_relaxed) == detail::self_tag();
}

}  // namespace troupe
