#pragma once
/// @file
/// @brief Remote exceptions: an exception thrown by a task on one rank, encoded as its
/// type name, message, rank and host, and rebuilt on the rank that waits for the task.
///
/// Rebuilding (decode_exception()):
/// - the standard exception types (`std::logic_error`, `invalid_argument`,
///   `domain_error`, `length_error`, `out_of_range`, `runtime_error`, `range_error`,
///   `overflow_error`, `underflow_error`) and troupe's own
///   (`troupe::Error`, `ValueError`, `TimeoutError`, `CancelledError`,
///   `InvalidStateError`, `BrokenExecutor`, `BrokenBarrierError`, `IndexError`, `KeyError`,
///   `MpiError` with its code
///   and class) are rethrown as themselves;
/// - the standard types without a message constructor (`std::exception`, `bad_alloc`,
///   `bad_array_new_length`, `bad_cast`, `bad_typeid`, `bad_exception`,
///   `bad_function_call`, `bad_optional_access`, `bad_variant_access`, `bad_any_cast`,
///   `bad_weak_ptr`) are rethrown as a class derived from that very type, so
///   `catch (const std::bad_alloc&)` catches them and what() carries the origin;
/// - user types registered with troupe::register_exception() / TROUPE_REGISTER_EXCEPTION
///   are rebuilt as themselves from their message;
/// - anything else (other types, `throw 42`) arrives as troupe::RemoteError, which keeps
///   the type name, the original message and the rank.
///
/// In every case what() reads `[rank 3/4 on node12] std::out_of_range: original what()`
/// (the mpi4py remote traceback header): the type name is part of the message because a
/// rebuilt exception cannot carry more fields than its type has.
///
/// @code
/// try { future.get(); }
/// catch (const std::invalid_argument& e) { /* e.what(): "[rank 2/4 on n1] std::invalid_argument: x < 0" */ }
/// catch (const troupe::RemoteError& e) { /* e.type_name(), e.message(), e.rank() */ }
/// @endcode

#include <exception>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "troupe/core/error.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe::wire {

/// @brief Demangles a `typeid(...).name()`; returns it unchanged if it cannot.
/// @note Thread-safe; throws only std::bad_alloc.
std::string demangle(const char* mangled);

/// @brief Writes exception @p error as thrown on world rank @p rank of @p size on @p host:
/// its (demangled, dynamic) type name, what(), the rank, the size and the host.
///
/// A non-std::exception is written with the name of its type (`int` for `throw 42`) and
/// an empty message (or the text, for a thrown `const char*` or `std::string`). A
/// troupe::RemoteError being passed on (a nested remote task) keeps the original type
/// name; its what() (with the inner origin) becomes the message.
/// @param out where the record is appended.
/// @param error a non-null exception.
/// @param rank world rank where it was thrown (>= 0).
/// @param host that rank's host name (may be empty).
/// @param size the number of ranks, for the `r/N` of the message; 0 to leave it out.
/// @throws troupe::ValueError for a null @p error or a negative rank (nothing written);
///         what the serializer throws.
/// @note Thread-safe for distinct writers; never blocks. Never rethrows @p error.
void encode_exception(Writer& out, std::exception_ptr error, int rank, const std::string& host, int size = 0);

/// @brief Reads a record written by encode_exception() and rebuilds the exception (see
/// the file comment for which types come back as themselves).
/// @return the rebuilt exception (not thrown: the caller stores it in a future).
/// @throws troupe::wire::DecodeError for truncated or malformed input.
/// @note Thread-safe (registrations are read under a lock); never blocks otherwise.
std::exception_ptr decode_exception(Reader& in);

}  // namespace troupe::wire

namespace troupe::wire::detail {

using ExceptionFactory = std::exception_ptr (*)(const std::string& what_text);

bool register_exception_factory(const char* mangled_name, ExceptionFactory factory);

template <class E>
std::exception_ptr make_exception(const std::string& what_text) {
  return std::make_exception_ptr(E(what_text));
}

}  // namespace troupe::wire::detail

namespace troupe {

/// @brief Lets exceptions of type @p E thrown by remote tasks be rebuilt as @p E on this
/// rank, from the text `[rank r/N on host] Type: original what()`.
///
/// The key is the demangled type name; register the same types on every rank (at static
/// initialization with TROUPE_REGISTER_EXCEPTION, or before the executor starts).
/// Registering a type twice is harmless; standard and troupe types need no registration.
/// @tparam E a class derived from std::exception, constructible from `std::string`.
/// @return true (so it can initialize a static).
/// @note Thread-safe; never blocks beyond a short lock.
/// @code
/// struct ParseError : std::runtime_error { using std::runtime_error::runtime_error; };
/// TROUPE_REGISTER_EXCEPTION(ParseError);
/// @endcode
template <class E>
bool register_exception() {
  static_assert(std::is_base_of_v<std::exception, E>,
                "troupe::register_exception<E>: E must derive from std::exception");
  static_assert(std::is_constructible_v<E, std::string>,
                "troupe::register_exception<E>: E must be constructible from a std::string (its message)");
  return wire::detail::register_exception_factory(typeid(E).name(), &wire::detail::make_exception<E>);
}

}  // namespace troupe

#define TROUPE_EXCEPTION_CAT_(a, b) a##b
#define TROUPE_EXCEPTION_CAT(a, b) TROUPE_EXCEPTION_CAT_(a, b)

/// @brief At namespace scope: troupe::register_exception<E>() during static initialization.
#define TROUPE_REGISTER_EXCEPTION(E)                                                                   \
  [[maybe_unused]] static const bool TROUPE_EXCEPTION_CAT(troupe_registered_exception_, __COUNTER__) = \
      ::troupe::register_exception<E>()
