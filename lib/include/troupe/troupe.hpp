#pragma once
/// @file
/// @brief The umbrella header: everything public in troupe with one include.
///
/// @code
/// #include <troupe/troupe.hpp>
///
/// int main() {
///   troupe::ThreadPool pool;
///   auto f = pool.submit([](int x) { return x * x; }, 7);
///   return f.result() == 49 ? 0 : 1;
/// }
/// @endcode
///
/// Each header below also compiles on its own; include the narrower one when build time
/// matters. Internal headers (`<layer>/detail/`) are never included from here directly.
/// This header includes `<mpi.h>` (through troupe/runtime/runtime.hpp).

// the version of the headers (TROUPE_VERSION_*) and of the library (troupe::version())
#include "troupe/version.hpp"

// core: the exception hierarchy, deadlines, the cancellation token, the TROUPE_* settings
#include "troupe/core/config.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/error.hpp"

// runtime: MPI start-up or adoption, topology, thread counts, rank-tagged logging
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/runtime/topology.hpp"

// future: Future / Promise, as_completed, wait, when_all, when_any
#include "troupe/future/future.hpp"
#include "troupe/future/wait.hpp"

// pool: the per-rank work-stealing ThreadPool and the results of its maps
#include "troupe/pool/map_result.hpp"
#include "troupe/pool/thread_pool.hpp"

// sync: Python threading primitives (Event, Semaphore, Barrier, Timer, lock_all)
#include "troupe/sync/barrier.hpp"
#include "troupe/sync/event.hpp"
#include "troupe/sync/lock_all.hpp"
#include "troupe/sync/semaphore.hpp"
#include "troupe/sync/sync.hpp"
#include "troupe/sync/timer.hpp"
#include "troupe/wire/callable.hpp"
#include "troupe/wire/exception.hpp"
#include "troupe/wire/serialize.hpp"
#include "troupe/engine/engine.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/executor/stream_map.hpp"
#include "troupe/coro/coro.hpp"
#include "troupe/coro/mpi.hpp"

// across: the primitives above, and queues, pipes, the work bag and the Dict, over ranks (docs/across.md)
#include "troupe/across/bag.hpp"
#include "troupe/across/condition.hpp"
#include "troupe/across/counter.hpp"
#include "troupe/across/dict.hpp"
#include "troupe/across/lock.hpp"
#include "troupe/across/pipe.hpp"
#include "troupe/across/queue.hpp"
#include "troupe/across/sequential.hpp"
#include "troupe/core/scope.hpp"

// window: MPI-3 windows: node-shared values and arrays, global arrays (docs/windows.md)
#include "troupe/window/global_array.hpp"
#include "troupe/window/shared.hpp"
