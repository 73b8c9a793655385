#pragma once
/// @file
/// @brief Thread-level synchronization primitives with Python `threading` semantics:
/// Event, Semaphore, BoundedSemaphore, Barrier, Timer and lock_all().
///
/// Where the standard library already has the primitive, troupe does not wrap it: use
/// std::mutex, std::condition_variable (with wait_until and a troupe::Deadline), std::latch
/// and std::scoped_lock directly. See docs/sync.md.

#include "troupe/sync/barrier.hpp"
#include "troupe/sync/event.hpp"
#include "troupe/sync/lock_all.hpp"
#include "troupe/sync/semaphore.hpp"
#include "troupe/sync/timer.hpp"
