#pragma once
// Spawned workers (docs/spawn.md): the MPI calls that connect a singleton parent and the
// worker processes it spawns, each bounded by a timeout. Not installed; used by runtime.cpp.
#include <mpi.h>

#include <chrono>
#include <string>
#include <vector>

#include "troupe/core/deadline.hpp"

namespace troupe::detail {

/// The intercommunicator between the parent and its workers, and its merge (the parent is
/// the low group: rank 0 of the merge).
struct SpawnLink {
  MPI_Comm inter = MPI_COMM_NULL;
  MPI_Comm merged = MPI_COMM_NULL;
};

/// The running executable (`/proc/self/exe`, resolved); throws InvalidStateError if unreadable.
std::string self_executable();
/// This process's arguments without argv[0] (`/proc/self/cmdline`); empty if unreadable.
std::vector<std::string> self_arguments();
/// @p command as MPI will run it: a path with a '/' as given, else the first match in PATH.
/// Throws ValueError naming troupe::Runtime and the path unless it is an executable file.
std::string resolve_worker_command(const std::string& command);

/// Parent: `MPI_Comm_spawn` of @p workers copies of @p command on `MPI_COMM_SELF`, then
/// `MPI_Intercomm_merge` (low). Both run on a helper thread while the caller waits in the one
/// wait loop until @p timeout: on expiry the helper is abandoned inside MPI and TimeoutError is
/// thrown (MPI must not be finalized then). MpiError when the spawn reports a failure.
SpawnLink spawn_and_merge(const std::string& command, const std::vector<std::string>& args, int workers,
                          std::chrono::milliseconds timeout);

/// Worker: `MPI_Intercomm_merge` (high) with the parent intercommunicator, bounded the same way.
SpawnLink join_parent(MPI_Comm parent, std::chrono::milliseconds timeout);

/// `MPI_Ibarrier` on @p comm, waited in the wait loop until @p deadline; TimeoutError naming
/// @p what on expiry (the request is abandoned).
void bounded_barrier(MPI_Comm comm, const Deadline& deadline, const std::string& what);

}  // namespace troupe::detail
