// Remote exceptions: every standard and troupe type comes back as itself with its origin in
// what(), registered user types too, the rest as troupe::RemoteError; malformed records
// are DecodeErrors.
#include "troupe/wire/exception.hpp"

#include <gtest/gtest.h>

#include <any>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <typeinfo>
#include <variant>
#include <vector>

namespace {

using troupe::wire::Reader;
using troupe::wire::Writer;

std::vector<std::byte> encode(std::exception_ptr e, int rank = 3, const std::string& host = "node12", int size = 4) {
  Writer w;
  troupe::wire::encode_exception(w, std::move(e), rank, host, size);
  return w.take();
}

std::exception_ptr decode(const std::vector<std::byte>& bytes) {
  Reader in(bytes);
  auto e = troupe::wire::decode_exception(in);
  EXPECT_EQ(in.remaining(), 0U);
  return e;
}

std::exception_ptr round_trip(std::exception_ptr e) { return decode(encode(std::move(e))); }

// Rethrows @p e and checks that it is caught as exactly E with @p what.
template <class E>
void expect_rebuilt_as(std::exception_ptr e, const std::string& what, bool exact_type = true) {
  try {
    std::rethrow_exception(e);
  } catch (const E& caught) {
    EXPECT_EQ(std::string(caught.what()), what);
    if (exact_type) {
      EXPECT_EQ(typeid(caught), typeid(E)) << troupe::wire::demangle(typeid(caught).name());
    }
    return;
  } catch (...) {
    try {
      throw;
    } catch (const std::exception& other) {
      ADD_FAILURE() << "caught " << troupe::wire::demangle(typeid(other).name()) << ": " << other.what()
                    << ", expected " << troupe::wire::demangle(typeid(E).name());
    } catch (...) {
      ADD_FAILURE() << "caught a non-std::exception, expected " << troupe::wire::demangle(typeid(E).name());
    }
  }
}

template <class E>
void check_with_message(const std::string& name) {
  SCOPED_TRACE(name);
  expect_rebuilt_as<E>(round_trip(std::make_exception_ptr(E("boom"))), "[rank 3/4 on node12] " + name + ": boom");
}

template <class E>
void check_without_message(const std::string& name) {
  SCOPED_TRACE(name);
  const E original{};
  expect_rebuilt_as<E>(round_trip(std::make_exception_ptr(original)),
                       "[rank 3/4 on node12] " + name + ": " + original.what(), /*exact_type=*/false);
}

}  // namespace

struct UserError : std::runtime_error {
  explicit UserError(const std::string& m) : std::runtime_error(m) {}
};
TROUPE_REGISTER_EXCEPTION(UserError);

namespace app {
struct LateError : std::logic_error {
  explicit LateError(std::string m) : std::logic_error(std::move(m)) {}
};
struct NotRegistered : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace app

TEST(WireRemoteException, StandardTypesRoundTripAsThemselves) {
  check_with_message<std::logic_error>("std::logic_error");
  check_with_message<std::invalid_argument>("std::invalid_argument");
  check_with_message<std::domain_error>("std::domain_error");
  check_with_message<std::length_error>("std::length_error");
  check_with_message<std::out_of_range>("std::out_of_range");
  check_with_message<std::runtime_error>("std::runtime_error");
  check_with_message<std::range_error>("std::range_error");
  check_with_message<std::overflow_error>("std::overflow_error");
  check_with_message<std::underflow_error>("std::underflow_error");
}

TEST(WireRemoteException, StandardTypesWithoutAMessageConstructorAreCaughtAsThemselves) {
  check_without_message<std::exception>("std::exception");
  check_without_message<std::bad_alloc>("std::bad_alloc");
  check_without_message<std::bad_array_new_length>("std::bad_array_new_length");
  check_without_message<std::bad_cast>("std::bad_cast");
  check_without_message<std::bad_typeid>("std::bad_typeid");
  check_without_message<std::bad_exception>("std::bad_exception");
  check_without_message<std::bad_function_call>("std::bad_function_call");
  check_without_message<std::bad_optional_access>("std::bad_optional_access");
  check_without_message<std::bad_variant_access>("std::bad_variant_access");
  check_without_message<std::bad_any_cast>("std::bad_any_cast");
  check_without_message<std::bad_weak_ptr>("std::bad_weak_ptr");
}

TEST(WireRemoteException, TroupeTypesRoundTripAsThemselves) {
  check_with_message<troupe::Error>("troupe::Error");
  check_with_message<troupe::ValueError>("troupe::ValueError");
  check_with_message<troupe::TimeoutError>("troupe::TimeoutError");
  check_with_message<troupe::CancelledError>("troupe::CancelledError");
  check_with_message<troupe::InvalidStateError>("troupe::InvalidStateError");
  check_with_message<troupe::BrokenExecutor>("troupe::BrokenExecutor");
  check_with_message<troupe::BrokenBarrierError>("troupe::BrokenBarrierError");
  check_with_message<troupe::IndexError>("troupe::IndexError");
  check_with_message<troupe::KeyError>("troupe::KeyError");
}

TEST(WireRemoteException, MpiErrorKeepsCodeAndClass) {
  const auto e = round_trip(std::make_exception_ptr(troupe::MpiError("MPI_Send failed", 17, 5)));
  try {
    std::rethrow_exception(e);
  } catch (const troupe::MpiError& m) {
    EXPECT_EQ(m.code(), 17);
    EXPECT_EQ(m.error_class(), 5);
    EXPECT_STREQ(m.what(), "[rank 3/4 on node12] troupe::MpiError: MPI_Send failed");
  }
}

TEST(WireRemoteException, OriginWithoutSizeOrHost) {
  expect_rebuilt_as<std::out_of_range>(decode(encode(std::make_exception_ptr(std::out_of_range("i=9")), 2, "", 0)),
                                       "[rank 2] std::out_of_range: i=9");
  expect_rebuilt_as<std::out_of_range>(decode(encode(std::make_exception_ptr(std::out_of_range("")), 1, "n1", 0)),
                                       "[rank 1 on n1] std::out_of_range");
}

TEST(WireRemoteException, RegisteredUserTypeRoundTrips) {
  expect_rebuilt_as<UserError>(round_trip(std::make_exception_ptr(UserError("bad input"))),
                               "[rank 3/4 on node12] UserError: bad input");
  // Registration at run time (before the executor starts) works the same way.
  EXPECT_TRUE(troupe::register_exception<app::LateError>());
  EXPECT_TRUE(troupe::register_exception<app::LateError>());  // twice is harmless
  expect_rebuilt_as<app::LateError>(round_trip(std::make_exception_ptr(app::LateError("late"))),
                                    "[rank 3/4 on node12] app::LateError: late");
}

TEST(WireRemoteException, UnregisteredTypeArrivesAsRemoteError) {
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(app::NotRegistered("nope"))));
  } catch (const troupe::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "app::NotRegistered");
    EXPECT_EQ(e.message(), "nope");
    EXPECT_EQ(e.rank(), 3);
    EXPECT_STREQ(e.what(), "[rank 3/4 on node12] app::NotRegistered: nope");
  }
  // A standard type that is not in the table (std::system_error) too.
  try {
    std::rethrow_exception(
        round_trip(std::make_exception_ptr(std::system_error(std::make_error_code(std::errc::io_error)))));
  } catch (const troupe::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "std::system_error");
  }
}

TEST(WireRemoteException, NonStdExceptionsArriveAsRemoteError) {
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(42)));
  } catch (const troupe::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "int");
    EXPECT_EQ(e.message(), "");
    EXPECT_EQ(e.rank(), 3);
    EXPECT_STREQ(e.what(), "[rank 3/4 on node12] int");
  }
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr("plain text")));
  } catch (const troupe::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "const char*");
    EXPECT_EQ(e.message(), "plain text");
  }
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(std::string("a string"))));
  } catch (const troupe::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "std::string");
    EXPECT_EQ(e.message(), "a string");
  }
}

TEST(WireRemoteException, PassedOnThroughANestedTaskKeepsTheOriginalType) {
  // Rank 2 raises; rank 1 (waiting on it inside a task) re-raises; rank 0 receives.
  const auto at_rank1 = decode(encode(std::make_exception_ptr(app::NotRegistered("deep")), 2, "b", 4));
  try {
    std::rethrow_exception(decode(encode(at_rank1, 1, "a", 4)));
  } catch (const troupe::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "app::NotRegistered");
    EXPECT_EQ(e.rank(), 1);
    EXPECT_STREQ(e.what(), "[rank 1/4 on a] app::NotRegistered: [rank 2/4 on b] app::NotRegistered: deep");
  }
  const auto alloc = decode(encode(std::make_exception_ptr(std::bad_alloc()), 2, "b", 4));
  try {
    std::rethrow_exception(decode(encode(alloc, 1, "a", 4)));
  } catch (const std::bad_alloc& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[rank 1/4 on a] std::bad_alloc: [rank 2/4 on b] std::bad_alloc: ", 0), 0U)
        << e.what();
  }
}

TEST(WireRemoteException, EncodeRejectsBadArgumentsAndWritesNothing) {
  Writer w;
  EXPECT_THROW(troupe::wire::encode_exception(w, nullptr, 0, "h", 1), troupe::ValueError);
  EXPECT_THROW(troupe::wire::encode_exception(w, std::make_exception_ptr(1), -1, "h", 1), troupe::ValueError);
  EXPECT_THROW(troupe::wire::encode_exception(w, std::make_exception_ptr(1), 4, "h", 4), troupe::ValueError);
  EXPECT_EQ(w.size(), 0U);
}

TEST(WireRemoteException, TruncatedRecordIsADecodeError) {
  const auto full = encode(std::make_exception_ptr(troupe::MpiError("x", 1, 2)));
  for (std::size_t n = 0; n < full.size(); ++n) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    Reader in(cut);
    EXPECT_THROW((void)troupe::wire::decode_exception(in), troupe::wire::DecodeError) << "cut at " << n;
  }
}

TEST(WireRemoteException, MalformedRecordIsADecodeError) {
  auto bytes = encode(std::make_exception_ptr(std::runtime_error("x")));
  auto corrupt = [&bytes](std::size_t at, std::byte value) {
    auto copy = bytes;
    copy.at(at) = value;
    Reader in(copy);
    (void)troupe::wire::decode_exception(in);
  };
  EXPECT_THROW(corrupt(0, std::byte{0}), troupe::wire::DecodeError);                    // magic
  EXPECT_THROW(corrupt(1, std::byte{9}), troupe::wire::DecodeError);                    // version
  EXPECT_THROW(corrupt(bytes.size() - 1, std::byte{0x80}), troupe::wire::DecodeError);  // flags
  // A rank outside [0, size).
  Writer w;
  troupe::wire::encode_exception(w, std::make_exception_ptr(1), 0, "", 0);
  auto ranked = w.take();
  // Layout: magic, version, type ("int": 8 + 3), message (8 + 0), rank (4 bytes).
  const std::size_t rank_at = 2 + 8 + 3 + 8;
  ranked.at(rank_at + 3) = std::byte{0x80};  // negative
  Reader in(ranked);
  EXPECT_THROW((void)troupe::wire::decode_exception(in), troupe::wire::DecodeError);
}

TEST(WireRemoteException, DemangleFallsBackToTheInput) {
  EXPECT_EQ(troupe::wire::demangle(typeid(std::out_of_range).name()), "std::out_of_range");
  EXPECT_EQ(troupe::wire::demangle("not a mangled name"), "not a mangled name");
  EXPECT_EQ(troupe::wire::demangle(nullptr), "(unknown type)");
}
