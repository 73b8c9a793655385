#include "troupe/pool/thread_pool.hpp"

#include <cstdlib>
#include <string>

#include "troupe/runtime/topology.hpp"

namespace troupe {

namespace {
std::chrono::microseconds spin_from_env() {
  if (const char* s = std::getenv("TROUPE_SPIN_US")) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end != s && *end == '\0' && v >= 0) return std::chrono::microseconds(v);
    throw ValueError(std::string("TROUPE_SPIN_US must be a non-negative integer (microseconds), got '") + s + "'");
  }
  return std::chrono::microseconds(50);
}
}  // namespace

ThreadPool::ThreadPool(PoolOptions options) {
  detail::SchedulerConfig c;
  c.threads = options.threads != 0 ? options.threads : default_thread_count();
  c.spin = options.spin ? *options.spin : spin_from_env();
  if (c.spin.count() < 0) throw ValueError("ThreadPool: spin must be >= 0");
  c.initializer = std::move(options.initializer);
  sched_ = std::make_unique<detail::Scheduler>(std::move(c));
}

ThreadPool::~ThreadPool() {
  try {
    sched_->shutdown(true, false);
  } catch (...) {
    // Only reachable when a worker destroys its own pool: the scheduler's destructor
    // then cannot join that thread either; report instead of terminating silently.
    detail::report_callback_exception("ThreadPool::~ThreadPool");
  }
}

}  // namespace troupe
