#pragma once
/// @file
/// @brief troupe::ExecutorStats — counters of one rank's Executor.
#include <cstdint>

namespace troupe {

/// @brief Counters of one rank's Executor (Executor::stats(); approximate while running).
struct ExecutorStats {
  std::uint64_t submitted = 0;         ///< tasks submitted on this rank
  std::uint64_t completed = 0;         ///< of those, ended (result, exception or cancelled)
  std::uint64_t ran_here = 0;          ///< of those, run by this rank's pool
  std::uint64_t sent_remote = 0;       ///< of those, sent to another rank
  std::uint64_t served_remote = 0;     ///< tasks of other ranks run here
  std::uint64_t cancelled_remote = 0;  ///< tasks of other ranks cancelled here before they started
  std::uint64_t bad_records = 0;       ///< protocol faults seen here (each broke the executor)
  std::uint64_t retried = 0;           ///< tasks sent again after the rank running them was lost
  std::uint64_t lost_ranks = 0;        ///< ranks declared lost (ExecutorOptions::failure_timeout)
};

}  // namespace troupe
