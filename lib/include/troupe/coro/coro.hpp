#pragma once
/// @file
/// @brief Everything of troupe's coroutines (docs/coroutines.md) but the MPI awaitable
/// (troupe/coro/mpi.hpp, which needs the executor).

#include "troupe/coro/combinators.hpp"  // IWYU pragma: export
#include "troupe/coro/group.hpp"        // IWYU pragma: export
#include "troupe/coro/sleep.hpp"        // IWYU pragma: export
#include "troupe/coro/sync.hpp"         // IWYU pragma: export
#include "troupe/coro/task.hpp"         // IWYU pragma: export
