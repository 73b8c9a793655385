// Fuzz target: the wire decoder (troupe/wire/serialize.hpp, wire/detail/codec.hpp) on the
// types a record may carry, the exception record (wire/exception.hpp decode_exception) and
// the encoded call a task record carries (wire/callable.hpp decode_and_invoke): the
// decoding entry points that see bytes from another rank.
//
// Input: [selector byte][payload]. The selector picks the decoder. Besides "no crash, no
// sanitizer report", it checks: a decode either succeeds or throws troupe::wire::DecodeError
// (or UnknownCallable for a call) with a message; a successful decode of a type whose
// encoding is canonical re-encodes to the same bytes; an ordered map or set (whose input
// need not be sorted) re-encodes to bytes that survive decode + encode unchanged; an
// unordered container decodes back equal.
#include <array>
#include <bit>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <list>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_target.hpp"
#include "troupe/core/error.hpp"
#include "troupe/wire/callable.hpp"
#include "troupe/wire/exception.hpp"
#include "troupe/wire/serialize.hpp"

namespace {

namespace wire = troupe::wire;
using Bytes = std::span<const std::byte>;

// ---- types a record may carry -----------------------------------------------------------

struct Inner {
  std::string name;
  std::vector<double> values;
  bool flag = false;
  TROUPE_FIELDS(name, values, flag)
  bool operator==(const Inner&) const = default;
};

struct Particle {
  std::uint32_t id = 0;
  std::optional<Inner> inner;
  std::map<std::int32_t, std::vector<std::string>> tags;
  std::variant<std::monostate, std::int64_t, std::string> label;
  TROUPE_FIELDS(id, inner, tags, label)
};

enum class Color : std::uint8_t { kRed, kGreen };
struct Plain {  // trivially copyable: its bytes are its encoding
  std::int32_t a;
  double b;
  Color c;
  // Its padding bytes travel too, but a copy of the value need not keep them (the decoded
  // value is assigned member by member), so it is compared by its members, b bit for bit
  // (a NaN is not equal to itself).
  bool operator==(const Plain& o) const {
    return a == o.a && std::bit_cast<std::uint64_t>(b) == std::bit_cast<std::uint64_t>(o.b) && c == o.c;
  }
};

/// What a successful decode must satisfy.
enum class Check {
  kSameBytes,  ///< canonical encoding: re-encodes to the input
  kReencode,   ///< ordered maps and sets (input need not be sorted): the re-encoding is stable
  kEqual,      ///< unordered containers (iteration order may change): decodes back equal
};

/// Decodes a T from @p payload and, on success, re-encodes it and checks @p C.
template <class T, Check C = Check::kSameBytes>
void roundtrip(Bytes payload) {
  T value;
  try {
    value = wire::deserialize<T>(payload);
  } catch (const wire::DecodeError& e) {
    TROUPE_FUZZ_CHECK(e.what()[0] != '\0');
    return;
  }
  const auto again = wire::serialize(value);
  if constexpr (C == Check::kSameBytes) {
    TROUPE_FUZZ_CHECK(again.size() == payload.size());
    TROUPE_FUZZ_CHECK(again.empty() || std::memcmp(again.data(), payload.data(), again.size()) == 0);
  } else if constexpr (C == Check::kReencode) {
    // Compared as bytes, not values: a NaN is not equal to itself.
    TROUPE_FUZZ_CHECK(wire::serialize(wire::deserialize<T>(again)) == again);
  } else {
    TROUPE_FUZZ_CHECK(wire::deserialize<T>(again) == value);
  }
}

// ---- callables a task record may name ----------------------------------------------------

// The callables themselves are well defined for any argument (no signed overflow): a report
// must come from troupe's decoding, not from them.
std::uint32_t add(std::uint32_t a, std::uint32_t b) { return a + b; }
std::size_t total_length(std::vector<std::string> words) {
  std::size_t n = 0;
  for (const auto& w : words) n += w.size();
  return n;
}
std::string describe(std::map<std::string, std::int64_t> m, std::optional<bool> flag) {
  std::string s = flag ? (*flag ? "yes" : "no") : "none";
  for (const auto& [k, v] : m) s += k.substr(0, 8) + std::to_string(v);
  return s;
}
int checked_index(std::vector<int> v, std::uint32_t i) {
  if (i >= v.size()) throw std::out_of_range("index " + std::to_string(i) + " of " + std::to_string(v.size()));
  return v[i];
}
void nothing() {}
TROUPE_REGISTER_FUNCTION(add);

struct Scale {  // a functor sent with its (serialized) state
  std::string unit;
  double factor = 1;
  TROUPE_FIELDS(unit, factor)
  std::string operator()(double x) const { return std::to_string(x * factor).substr(0, 16) + unit.substr(0, 8); }
};

// Encodes one call of each callable. Instantiating it registers their invokers during static
// initialization; it runs only for the seeds (a call encoded during static initialization
// would build the callable table before every invoker is registered).
std::vector<std::vector<std::byte>> calls() {
  std::vector<std::vector<std::byte>> out;
  auto one = [&](auto&& encode) {
    wire::Writer w;
    encode(w);
    out.push_back(w.take());
  };
  one([](wire::Writer& w) { wire::encode_call(w, troupe::remote<&add>, 2u, 3u); });
  one([](wire::Writer& w) { wire::encode_call(w, &add, 4u, 5u); });  // a registered function pointer
  one([](wire::Writer& w) {
    wire::encode_call(w, troupe::remote<&total_length>, std::vector<std::string>{"ab", "cde"});
  });
  one([](wire::Writer& w) {
    wire::encode_call(w, troupe::remote<&describe>, std::map<std::string, std::int64_t>{{"k", 1}},
                      std::optional<bool>(true));
  });
  one([](wire::Writer& w) { wire::encode_call(w, troupe::remote<&checked_index>, std::vector<int>{1, 2}, 5u); });
  one([](wire::Writer& w) { wire::encode_call(w, troupe::remote<&nothing>); });
  one([](wire::Writer& w) { wire::encode_call(w, Scale{"m", 2.0}, 1.5); });
  one([](wire::Writer& w) {
    wire::encode_call(
        w, [k = 3u](std::uint32_t x) { return k * x; }, 7u);
  });  // state: bytes
  return out;
}

// What the executor does with a task record's call: run it, and encode a throw as an
// exception record, which the sender decodes.
void run_call(Bytes payload) {
  wire::Reader in(payload);
  wire::Writer out;
  try {
    wire::decode_and_invoke(in, out);
    return;
  } catch (const wire::UnknownCallable& e) {
    TROUPE_FUZZ_CHECK(e.what()[0] != '\0');
    return;
  } catch (const wire::DecodeError& e) {
    TROUPE_FUZZ_CHECK(e.what()[0] != '\0');
    return;
  } catch (...) {
    out = wire::Writer{};
    wire::encode_exception(out, std::current_exception(), 1, "fuzzhost", 2);
  }
  wire::Reader back(out.buffer());
  const std::exception_ptr e = wire::decode_exception(back);
  TROUPE_FUZZ_CHECK(e != nullptr && back.remaining() == 0);
}

struct FuzzError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
TROUPE_REGISTER_EXCEPTION(FuzzError);

// What the executor does with a failed result: rebuild the exception and hand it to a future.
void decode_error(Bytes payload) {
  wire::Reader in(payload);
  std::exception_ptr e;
  try {
    e = wire::decode_exception(in);
  } catch (const wire::DecodeError& err) {
    TROUPE_FUZZ_CHECK(err.what()[0] != '\0');
    return;
  }
  TROUPE_FUZZ_CHECK(e != nullptr);
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    TROUPE_FUZZ_CHECK(x.what() != nullptr && std::strlen(x.what()) > 0);
  }
}

using Decoder = void (*)(Bytes);
constexpr Decoder kDecoders[] = {
    &roundtrip<std::int64_t>,
    &roundtrip<Plain, Check::kEqual>,  // padding: compared by members
    &roundtrip<bool>,
    &roundtrip<std::string>,
    &roundtrip<std::vector<std::int32_t>>,
    &roundtrip<std::vector<std::string>>,
    &roundtrip<std::vector<bool>>,
    &roundtrip<std::deque<std::list<std::uint8_t>>>,
    &roundtrip<std::array<std::string, 3>>,
    &roundtrip<std::optional<std::string>>,
    &roundtrip<std::variant<std::monostate, std::int32_t, std::string, std::vector<double>>>,
    &roundtrip<std::tuple<std::int16_t, std::pair<std::string, bool>, std::optional<std::vector<std::string>>>>,
    // Not a container of zero-size elements (std::tuple<>): any 17-byte input can make it
    // create 2^24 of them (the codec's cap), seconds per input under instrumentation, which
    // starves the fuzzer. tests/unit/wire/malformed_test.cpp checks that cap.
    &roundtrip<std::vector<std::optional<std::tuple<>>>>,
    &roundtrip<std::chrono::nanoseconds>,
    &roundtrip<Particle, Check::kReencode>,  // holds a map
    &roundtrip<std::map<std::string, std::vector<std::int64_t>>, Check::kReencode>,
    &roundtrip<std::multimap<std::int8_t, std::string>, Check::kReencode>,
    &roundtrip<std::set<std::int16_t>, Check::kReencode>,
    &roundtrip<std::unordered_map<std::int32_t, std::string>, Check::kEqual>,
    &roundtrip<std::unordered_multiset<std::string>, Check::kEqual>,
    &decode_error,
    &run_call,
};
constexpr std::size_t kDecoderCount = std::size(kDecoders);

std::vector<std::uint8_t> with_selector(std::size_t selector, const std::vector<std::byte>& payload) {
  // (One byte at a time: GCC 12 at -O3 warns falsely, -Warray-bounds or -Wnull-dereference,
  // on a bulk insert or a memcpy after the first element.)
  std::vector<std::uint8_t> v;
  v.reserve(payload.size() + 1);
  v.push_back(static_cast<std::uint8_t>(selector));
  for (const std::byte b : payload) v.push_back(std::to_integer<std::uint8_t>(b));
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Bytes payload(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  kDecoders[data[0] % kDecoderCount](payload);
  return 0;
}

namespace troupe_fuzz {

std::vector<std::vector<std::uint8_t>> seeds() {
  std::vector<std::vector<std::uint8_t>> out;
  std::size_t s = 0;
  auto add_seed = [&](const auto& value) { out.push_back(with_selector(s++, wire::serialize(value))); };
  add_seed(std::int64_t{-5});
  add_seed(Plain{1, 2.5, Color::kGreen});
  add_seed(true);
  add_seed(std::string("hello"));
  add_seed(std::vector<std::int32_t>{1, -2, 3});
  add_seed(std::vector<std::string>{"a", "", "bcd"});
  add_seed(std::vector<bool>{true, false, true, true, false, false, true, false, true});
  add_seed(std::deque<std::list<std::uint8_t>>{{1, 2}, {}, {3}});
  add_seed(std::array<std::string, 3>{"x", "yy", ""});
  add_seed(std::optional<std::string>("opt"));
  add_seed(std::variant<std::monostate, std::int32_t, std::string, std::vector<double>>(std::string("v")));
  add_seed(std::tuple<std::int16_t, std::pair<std::string, bool>, std::optional<std::vector<std::string>>>{
      7, {"p", true}, std::vector<std::string>{"q"}});
  add_seed(std::vector<std::optional<std::tuple<>>>{std::tuple<>{}, std::nullopt});
  add_seed(std::chrono::nanoseconds(12345));
  add_seed(Particle{3, Inner{"in", {1.0, 2.0}, true}, {{1, {"t1", "t2"}}, {-4, {}}}, std::string("lbl")});
  add_seed(std::map<std::string, std::vector<std::int64_t>>{{"a", {1}}, {"b", {2, 3}}});
  add_seed(std::multimap<std::int8_t, std::string>{{1, "x"}, {1, "y"}, {-2, "z"}});
  add_seed(std::set<std::int16_t>{-1, 0, 9});
  add_seed(std::unordered_map<std::int32_t, std::string>{{1, "one"}, {2, "two"}});
  add_seed(std::unordered_multiset<std::string>{"d", "d", "e"});
  {  // exception records: standard and troupe types, MpiError (with codes), a registered and an unknown type
    const std::exception_ptr errors[] = {std::make_exception_ptr(std::out_of_range("oops")),
                                         std::make_exception_ptr(troupe::TimeoutError("late")),
                                         std::make_exception_ptr(troupe::MpiError("MPI_Send failed", 5, 5)),
                                         std::make_exception_ptr(FuzzError("user")), std::make_exception_ptr(42)};
    for (const auto& e : errors) {
      wire::Writer w;
      wire::encode_exception(w, e, 1, "node7", 4);
      out.push_back(with_selector(s, w.take()));
    }
    ++s;
  }
  for (const auto& call : calls()) out.push_back(with_selector(s, call));
  ++s;
  TROUPE_FUZZ_CHECK(s == kDecoderCount);
  return out;
}

}  // namespace troupe_fuzz
