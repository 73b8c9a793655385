#include "troupe/across/counter.hpp"

#include <string>

#include "troupe/across/detail/atomic_cell.hpp"
#include "troupe/across/detail/hub.hpp"
#include "troupe/core/config.hpp"
#include "troupe/core/error.hpp"
#include "troupe/runtime/runtime.hpp"

namespace troupe {

Counter::Counter(Scope scope, std::int64_t start, int host) : scope_(scope), local_(start) {
  if (scope == Scope::Threads) return;
  const auto deadline = Deadline::after(settings().startup_timeout, "Counter");
  hub_ = detail::Hub::of(scope, deadline, "Counter");
  if (host < 0 || host >= hub_->size()) {
    throw ValueError("Counter: host must be a rank in [0, " + std::to_string(hub_->size()) + "), got " +
                     std::to_string(host));
  }
  // Arrival messages travel on the Runtime's communicator, which no engine listens on.
  const MPI_Comm rt = Runtime::current()->comm();
  cell_ = std::make_unique<detail::AtomicCell>(hub_->comm(), rt, host, start, deadline, "Counter");
}

Counter::~Counter() = default;

void Counter::check_thread(const char* api) const {
  if (!hub_->may_call_mpi()) {
    throw InvalidStateError(std::string(api) +
                            ": below MPI_THREAD_MULTIPLE only the thread that built troupe's first cross-rank object "
                            "may use a cross-rank Counter");
  }
}

std::int64_t Counter::next(std::int64_t incr) {
  if (!cell_) return local_.fetch_add(incr, std::memory_order_acq_rel);
  check_thread("Counter::next");
  return cell_->fetch_add(incr);
}

std::int64_t Counter::value() {
  if (!cell_) return local_.load(std::memory_order_acquire);
  check_thread("Counter::value");
  return cell_->load();
}

}  // namespace troupe
