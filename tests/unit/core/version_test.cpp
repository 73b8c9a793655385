// troupe/version.hpp: the generated macros and the library's troupe::version() agree.
#include <gtest/gtest.h>

#include <string>

#include "troupe/version.hpp"

TEST(Version, LibraryMatchesTheHeaders) {
  EXPECT_STREQ(troupe::version(), TROUPE_VERSION_STRING);
  const std::string parts = std::to_string(TROUPE_VERSION_MAJOR) + "." + std::to_string(TROUPE_VERSION_MINOR) + "." +
                            std::to_string(TROUPE_VERSION_PATCH);
  EXPECT_EQ(parts, TROUPE_VERSION_STRING);
  EXPECT_EQ(TROUPE_VERSION, TROUPE_VERSION_MAJOR * 10000 + TROUPE_VERSION_MINOR * 100 + TROUPE_VERSION_PATCH);
}
