// Transitional wrappers of future/detail/help.hpp over the progress-source registry
// (core/detail/wait.hpp). Delete with them once the executor registers its engine itself.
#include <mutex>

#include "troupe/future/detail/help.hpp"

namespace troupe::detail {

namespace {
class HookSource final : public ProgressSource {
 public:
  bool try_progress() noexcept override {
    try {
      return fn_(ctx_);
    } catch (...) {
      return false;  // the owner (the engine) reports its own failures
    }
  }
  ProgressFn fn_ = nullptr;
  void* ctx_ = nullptr;
};
HookSource g_hook;
std::mutex g_hook_mu;
bool g_hook_registered = false;  // guarded by g_hook_mu
}  // namespace

void set_progress_hook(ProgressFn fn, void* ctx) noexcept {
  std::lock_guard lock(g_hook_mu);
  if (g_hook_registered) {
    remove_progress_source(&g_hook);  // waits out running calls before fn_/ctx_ change
    g_hook_registered = false;
  }
  if (fn == nullptr) return;
  g_hook.fn_ = fn;
  g_hook.ctx_ = ctx;
  try {
    add_progress_source(&g_hook);
    g_hook_registered = true;
  } catch (...) {
    // The registry is full: waiting threads simply do not drive this engine (its own
    // progress thread still does).
  }
}

bool run_progress_hook() noexcept { return drive_progress(); }
bool has_progress_hook() noexcept { return has_progress_sources(); }

}  // namespace troupe::detail
