#pragma once
/// @file
/// @brief StreamMap: the former name of the Executor's map results, now troupe::MapResult.

#include "troupe/pool/map_result.hpp"

namespace troupe {

/// @brief Deprecated: Executor::map returns MapResult<R>, the one result stream of every map.
template <class R, class Elem>
using StreamMap [[deprecated("use troupe::MapResult<R>")]] = MapResult<R>;

}  // namespace troupe
