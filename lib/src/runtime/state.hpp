#pragma once
// Process-wide state shared by the runtime's .cpp files (not installed): what the live
// Runtime knows, readable without including <mpi.h> (log lines, default_thread_count).
#include <atomic>
#include <cstddef>

namespace troupe::detail {

struct RuntimeState {
  std::atomic<bool> alive{false};
  std::atomic<int> rank{0};
  std::atomic<int> size{1};
  std::atomic<std::size_t> threads{0};
};

RuntimeState& runtime_state() noexcept;

}  // namespace troupe::detail
