#pragma once
/// @file
/// @brief Log lines that say which rank wrote them: `[rank r/N] message`.
///
/// No `<mpi.h>` here: the rank comes from the live troupe::Runtime, else from the
/// launcher's environment (`OMPI_COMM_WORLD_RANK`/`SIZE`, `PMI_RANK`/`SIZE`,
/// `SLURM_PROCID`/`NTASKS`), else `[rank 0/1]`.

#include <string>
#include <string_view>

namespace troupe {

/// @brief The `[rank r/N]` tag of this process.
/// @note Thread-safe, never blocks, never throws.
std::string rank_tag();

/// @brief Writes `[rank r/N] message` and a newline to stderr in one write(2),
/// so that lines from concurrent threads and ranks do not interleave.
/// @note Thread-safe; blocks only as long as the write to stderr; never throws.
void log(std::string_view message) noexcept;

}  // namespace troupe
