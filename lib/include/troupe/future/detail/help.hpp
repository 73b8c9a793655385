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

}  // namespace troupe::detail
