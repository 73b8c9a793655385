// Malformed input never crashes: truncation, huge lengths, bad variant indices, optional
// flags and bools, duplicate keys, leftover bytes and random corruption all give
// troupe::wire::DecodeError with a message that says what and where.
#include <gtest/gtest.h>

#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "troupe/wire/boost.hpp"
#include "troupe/wire/serialize.hpp"
#include "wire_test_util.hpp"

namespace wire = troupe::wire;
using wire_test::cat;
using wire_test::decode_error;
using wire_test::le64;

namespace {

struct Hooked {
  std::vector<std::string> names;
  std::optional<double> weight;
  TROUPE_FIELDS(names, weight)
};

struct Boosted {
  std::string s;
  std::vector<int> v;
  template <class Archive>
  void serialize(Archive& ar, const unsigned) {
    ar& s& v;
  }
};

struct NoFields {
  TROUPE_FIELDS()
};

constexpr std::uint64_t kHuge = std::uint64_t{1} << 62;

}  // namespace

TEST(WireMalformed, HugeLengthsAreRejectedBeforeAllocating) {
  for (std::uint64_t n : {kHuge, ~std::uint64_t{0}, std::uint64_t{1} << 40, std::uint64_t{3}}) {
    const auto bytes = cat(le64(n), {std::byte{1}, std::byte{2}});
    EXPECT_NE(decode_error<std::vector<double>>(bytes).find("bad length"), std::string::npos) << n;
    EXPECT_NE(decode_error<std::string>(bytes).find("bad length"), std::string::npos) << n;
    EXPECT_NE(decode_error<std::vector<std::string>>(bytes), "") << n;
    EXPECT_NE((decode_error<std::map<int, int>>(bytes)), "") << n;
    EXPECT_NE((decode_error<std::unordered_map<std::string, int>>(bytes)), "") << n;
    EXPECT_NE(decode_error<std::set<std::string>>(bytes), "") << n;
    EXPECT_NE(decode_error<std::vector<bool>>(bytes), "") << n;
    EXPECT_NE(decode_error<std::vector<Hooked>>(bytes), "") << n;
    EXPECT_NE(decode_error<std::vector<std::optional<std::vector<double>>>>(bytes), "") << n;
    EXPECT_NE(decode_error<Boosted>(bytes), "") << n;
  }
  const std::string msg = decode_error<std::vector<double>>(cat(le64(kHuge), {}));
  EXPECT_NE(msg.find("4611686018427387904"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("8 bytes per element"), std::string::npos) << msg;
  EXPECT_NE(msg.find("std::vector<double>"), std::string::npos) << msg;
}

TEST(WireMalformed, ElementsWithEmptyEncodingsAreCapped) {
  // std::tuple<> and field-less hooks consume no bytes: the byte count cannot bound them.
  EXPECT_NE(decode_error<std::vector<std::tuple<>>>(le64(kHuge)).find("empty encoding"), std::string::npos);
  EXPECT_NE(decode_error<std::vector<NoFields>>(le64(kHuge)), "");
  EXPECT_EQ(wire::deserialize<std::vector<std::tuple<>>>(le64(1000)).size(), 1000u);
}

TEST(WireMalformed, TruncatedScalarSaysWhereAndHowMuch) {
  const std::vector<std::byte> three(3);
  const std::string msg = decode_error<double>(three);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needed 8 bytes at offset 0, only 3 remain"), std::string::npos) << msg;
  EXPECT_NE(msg.find("double"), std::string::npos) << msg;
}

TEST(WireMalformed, BadVariantIndex) {
  using V = std::variant<int, std::string>;
  auto bytes = wire::serialize(V{5});
  bytes[0] = std::byte{2};
  const std::string msg = decode_error<V>(bytes);
  EXPECT_NE(msg.find("bad value 2 at offset 0"), std::string::npos) << msg;
  bytes[0] = std::byte{0xff};
  EXPECT_NE(decode_error<V>(bytes), "");
}

TEST(WireMalformed, BadOptionalFlagAndBool) {
  auto opt = wire::serialize(std::optional<int>{3});
  opt[0] = std::byte{2};
  EXPECT_NE(decode_error<std::optional<int>>(opt).find("expected 0 or 1"), std::string::npos);
  EXPECT_NE(decode_error<bool>({std::byte{7}}).find("bad value 7"), std::string::npos);
  EXPECT_NE(decode_error<std::vector<bool>>(cat(le64(3), {std::byte{0xff}})).find("padding"), std::string::npos);
  EXPECT_NE((decode_error<std::pair<int, bool>>(cat(wire::serialize(1), {std::byte{2}}))), "");
}

TEST(WireMalformed, DuplicateKeys) {
  // A vector of pairs has the layout of a map: two equal keys must not silently collapse.
  const auto bytes = wire::serialize(std::vector<std::pair<int, int>>{{1, 2}, {1, 3}});
  EXPECT_NE((decode_error<std::map<int, int>>(bytes).find("duplicate key in element 1")), std::string::npos);
  EXPECT_NE((decode_error<std::unordered_map<int, int>>(bytes)), "");
  EXPECT_EQ((wire::deserialize<std::multimap<int, int>>(bytes).size()), 2u);
  const auto keys = wire::serialize(std::vector<std::string>{"a", "a"});
  EXPECT_NE(decode_error<std::set<std::string>>(keys), "");
}

TEST(WireMalformed, TrailingBytes) {
  auto bytes = wire::serialize(std::string("abc"));
  bytes.push_back(std::byte{0});
  const std::string msg = decode_error<std::string>(bytes);
  EXPECT_NE(msg.find("1 bytes left over"), std::string::npos) << msg;
  EXPECT_NE(decode_error<int>(wire::serialize(std::int64_t{1})), "");  // type mismatch shows up
}

TEST(WireMalformed, BoostArchiveErrorsBecomeDecodeErrors) {
  const auto bytes = wire::serialize(Boosted{"hello", {1, 2, 3}});
  wire_test::expect_every_truncation_fails<Boosted>(bytes);
  // A length prefix that covers fewer bytes than the archive needs: Boost runs out of input.
  auto shorter = bytes;
  shorter.resize(bytes.size() - 4);
  const auto len = bytes.size() - 8 - 4;
  auto relabelled = cat(le64(len), std::vector<std::byte>(shorter.begin() + 8, shorter.end()));
  const std::string msg = decode_error<Boosted>(relabelled);
  EXPECT_NE(msg.find("Boost.Serialization archive"), std::string::npos) << msg;
  // A length prefix that covers more: the archive leaves bytes unread.
  auto padded = cat(le64(bytes.size() - 8 + 2),
                    cat(std::vector<std::byte>(bytes.begin() + 8, bytes.end()), {std::byte{0}, std::byte{0}}));
  EXPECT_NE(decode_error<Boosted>(padded).find("unread"), std::string::npos);
}

// Random corruption of valid encodings: decoding either succeeds or throws DecodeError, never
// anything else, and (under AddressSanitizer) never touches memory it should not.
TEST(WireMalformed, RandomCorruptionFuzz) {
  using T = std::map<std::string, std::vector<std::optional<std::variant<int, std::string, std::vector<bool>>>>>;
  T value;
  value["alpha"] = {1, std::nullopt, std::string("x"), std::vector<bool>{true, false, true}};
  value["beta"] = {};
  value[""] = {std::nullopt, 7};
  const auto valid = wire::serialize(value);
  const auto hooked = wire::serialize(std::vector<Hooked>{{{"a", "bc"}, 1.5}, {{}, std::nullopt}});

  std::mt19937_64 rng(12345);
  int decoded = 0;
  int rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const bool use_hooked = (iter % 4) == 3;
    auto bytes = use_hooked ? hooked : valid;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const std::size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0:
          bytes[at] = static_cast<std::byte>(rng());
          break;
        case 1:
          bytes[at] ^= static_cast<std::byte>(1u << (rng() % 8));
          break;
        default:
          bytes.resize(at);
          break;
      }
      if (bytes.empty()) break;
    }
    try {
      if (use_hooked) {
        (void)wire::deserialize<std::vector<Hooked>>(bytes);
      } else {
        (void)wire::deserialize<T>(bytes);
      }
      ++decoded;
    } catch (const wire::DecodeError&) {
      ++rejected;
    }
  }
  EXPECT_EQ(decoded + rejected, 20000);
  EXPECT_GT(rejected, 0);
}
