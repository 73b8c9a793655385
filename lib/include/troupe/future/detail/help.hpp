#pragma once
// Transitional: helping and progress moved down to troupe/core/detail/wait.hpp (HelpHook,
// ProgressSource, add_progress_source, drive_progress). What remains here is the old
// single-hook interface, kept as a thin wrapper over the progress-source registry only
// until lib/src/executor/core.cpp registers its engine as a ProgressSource; delete it then.
#include "troupe/core/detail/wait.hpp"

namespace troupe::detail {

/// Deprecated: register a ProgressSource with add_progress_source() instead.
using ProgressFn = bool (*)(void*);
/// Deprecated. Installs `fn(ctx)` as one progress source (replacing the one installed by an
/// earlier call), or with nullptr removes it and waits out running calls.
void set_progress_hook(ProgressFn fn, void* ctx) noexcept;
/// Deprecated: drive_progress().
bool run_progress_hook() noexcept;
/// Deprecated: has_progress_sources().
bool has_progress_hook() noexcept;

}  // namespace troupe::detail
