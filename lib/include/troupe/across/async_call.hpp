#pragma once
/// @file
/// @brief troupe::AsyncCall<T>: a call to a cross-rank object in flight with no thread
/// waiting for it (Queue::get_async): its future, and the way to give it up at the host.
/// A coroutine awaits one with `co_await` (troupe/coro/across.hpp).

#include <functional>

#include "troupe/future/future.hpp"

namespace troupe {

/// @brief A call to a cross-rank object's host in flight, that no thread waits for.
///
/// @p future completes exactly once, on the thread that delivers the host's answer (keep
/// callbacks short): with the call's value, or its error (the blocking call's errors; a
/// call given up with cancel() that the host withdrew ends with CancelledError). cancel()
/// asks the host to withdraw the call if it is still parked there (a get waiting for an
/// item): the host then answers "cancelled", or, if its answer was already on its way, that
/// answer comes, so an item handed out is never lost: it is in the future. Idempotent, any
/// thread, never blocks. A call that is neither awaited nor cancelled stays parked at the
/// host until it is answered (a get then takes an item that nobody reads: cancel first).
/// @tparam T the value type.
template <class T>
struct AsyncCall {
  Future<T> future;              ///< the answer
  std::function<void()> cancel;  ///< gives the call up at the host (see above)
};

}  // namespace troupe
