// troupe::version(): the version this library was compiled as (troupe/version.hpp is
// generated from project(VERSION) in the top CMakeLists.txt).
#include "troupe/version.hpp"

namespace troupe {

const char* version() noexcept { return TROUPE_VERSION_STRING; }

}  // namespace troupe
