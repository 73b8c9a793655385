#pragma once
// How a blocking wait in a lower layer (Future) helps the pool it runs in: a pool worker
// installs a hook in its thread; waits call it to run one other task instead of sleeping.
namespace troupe::detail {

class HelpHook {
 public:
  /// Runs at most one pending task; true if it ran one.
  virtual bool help_one() = 0;

 protected:
  ~HelpHook() = default;
};

/// The hook of the calling thread (nullptr outside pool workers).
HelpHook* current_help_hook() noexcept;
/// Installs a hook for the calling thread; returns the previous one.
HelpHook* set_help_hook(HelpHook* hook) noexcept;

/// A process-wide progress function for threads that wait (the executor installs its
/// engine's try_progress): a waiting thread that polls takes its reply off the wire itself.
using ProgressFn = bool (*)(void*);
/// Installs (or, with nullptr, removes and waits out running calls of) the progress hook.
void set_progress_hook(ProgressFn fn, void* ctx) noexcept;
/// Calls the progress hook if one is installed; true if it made progress.
bool run_progress_hook() noexcept;
/// True while a progress hook is installed.
bool has_progress_hook() noexcept;

}  // namespace troupe::detail
