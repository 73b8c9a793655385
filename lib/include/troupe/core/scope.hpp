#pragma once
/// @file
/// @brief troupe::Scope — who the parties of a synchronization primitive or queue are.
///
/// One spelling for every primitive that can span more than one rank (Barrier, Event,
/// Semaphore, BoundedSemaphore, Lock, RLock, Condition, Counter, Sequential, Queue,
/// JoinableQueue, SimpleQueue, Bag): the scope is the first constructor argument.
///
/// @code
/// troupe::Barrier threads(4);                               // Scope::Threads, as before
/// troupe::Barrier ranks(troupe::Scope::Ranks, rt.size());   // one party per rank
/// troupe::Lock lock(troupe::Scope::RanksAndThreads);        // every thread of every rank
/// @endcode

namespace troupe {

/// @brief The parties of a primitive.
enum class Scope {
  /// The threads of this rank only: no MPI, no Runtime needed (Python's `threading`).
  Threads,
  /// The ranks of the live troupe::Runtime, one party per rank (mpi4py.util.sync).
  /// For every primitive but Barrier, any thread of a rank may act for it.
  Ranks,
  /// Every thread of every rank (a Barrier counts threads: `parties` is the total, split
  /// evenly over the ranks).
  RanksAndThreads,
};

/// @brief "Scope::Threads", "Scope::Ranks" or "Scope::RanksAndThreads".
/// @note Thread-safe, never throws.
constexpr const char* to_string(Scope s) noexcept {
  switch (s) {
    case Scope::Threads:
      return "Scope::Threads";
    case Scope::Ranks:
      return "Scope::Ranks";
    case Scope::RanksAndThreads:
      return "Scope::RanksAndThreads";
  }
  return "Scope::?";
}

}  // namespace troupe
