#include "troupe/pool/thread_pool.hpp"

#include <cstdio>
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
  if (in_worker()) {
    // The worker would have to join itself and then run on in freed memory.
    std::fprintf(stderr, "[troupe] fatal: a ThreadPool was destroyed by one of its own worker threads\n");
    std::abort();
  }
  sched_->shutdown(true, false);
}

}  // namespace troupe
