// [rank r/N] log lines. Reads the rank from the live Runtime's state, else from the
// launcher's environment, so that it works before MPI_Init and after MPI_Finalize.
#include "troupe/runtime/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>

#include "state.hpp"

namespace troupe {

namespace detail {
RuntimeState& runtime_state() noexcept {
  static RuntimeState state;
  return state;
}
}  // namespace detail

std::string rank_tag() {
  auto& st = detail::runtime_state();
  if (st.alive.load(std::memory_order_acquire)) {
    return "[rank " + std::to_string(st.rank.load()) + "/" + std::to_string(st.size.load()) + "]";
  }
  for (auto [rank_var, size_var] :
       {std::pair{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}, std::pair{"PMI_RANK", "PMI_SIZE"},
        std::pair{"PMIX_RANK", "OMPI_COMM_WORLD_SIZE"}, std::pair{"SLURM_PROCID", "SLURM_NTASKS"}}) {
    const char* r = std::getenv(rank_var);
    const char* s = std::getenv(size_var);
    if (r != nullptr && *r != '\0' && s != nullptr && *s != '\0') {
      return std::string("[rank ") + r + "/" + s + "]";
    }
  }
  return "[rank 0/1]";
}

void log(std::string_view message) noexcept {
  try {
    std::string line = rank_tag();
    line.reserve(line.size() + message.size() + 2);
    line += ' ';
    line += message;
    line += '\n';
    // One write(2) per line: lines of concurrent threads/ranks do not interleave.
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      ssize_t n = ::write(STDERR_FILENO, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  } catch (...) {
    // Out of memory while logging: drop the line rather than terminate.
  }
}

}  // namespace troupe
