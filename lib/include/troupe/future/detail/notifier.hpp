#pragma once
// A wake-up channel for waits on conditions other than one future (as_completed, wait,
// parallel_for completion, map iteration): the generic wait of core/detail/wait.hpp.
#include "troupe/core/detail/wait.hpp"

namespace troupe::detail {

/// Make the condition true, then notify_all(); waiters use wait(pred, deadline, token, api).
using Notifier = WaitWord;

}  // namespace troupe::detail
