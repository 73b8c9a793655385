#include "troupe/pool/thread_pool.hpp"

#include <cstdio>
#include <cstdlib>

#include "troupe/core/config.hpp"
#include "troupe/runtime/topology.hpp"

namespace troupe {

ThreadPool::ThreadPool(PoolOptions options) {
  detail::SchedulerConfig c;
  c.threads = options.threads != 0 ? options.threads : default_thread_count();
  c.spin = options.spin ? *options.spin : settings().pool_spin;
  if (c.spin.count() < 0) throw ValueError("ThreadPool: spin must be >= 0");
  c.outside_help = options.caller_helps.value_or(!options.initializer);
  caller_helps_ = c.outside_help;
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
