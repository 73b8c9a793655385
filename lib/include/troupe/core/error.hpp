#pragma once
/// @file
/// @brief The one exception hierarchy of troupe.
///
/// Every error that troupe raises derives from troupe::Error (itself a
/// std::runtime_error), so `catch (const troupe::Error&)` catches them all. The
/// names follow Python's concurrent.futures / threading where Python has one.

#include <stdexcept>
#include <string>

namespace troupe {

/// @brief Base of every exception that troupe throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @brief A bad argument (Python's ValueError): chunksize 0, negative timeout,
/// a Barrier of 0 parties, a BoundedSemaphore released too often, ...
/// The message names the API, the parameter and the value received.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// @brief A blocking call reached its deadline (concurrent.futures.TimeoutError).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// @brief The result of a cancelled future was asked for (concurrent.futures.CancelledError).
class CancelledError : public Error {
 public:
  using Error::Error;
};

/// @brief An operation is not allowed in the object's current state
/// (concurrent.futures.InvalidStateError), e.g. submitting after shutdown.
class InvalidStateError : public Error {
 public:
  using Error::Error;
};

/// @brief The executor can no longer run work (concurrent.futures.BrokenExecutor).
class BrokenExecutor : public Error {
 public:
  using Error::Error;
};

/// @brief A Barrier was aborted, reset or timed out while a party waited
/// (threading.BrokenBarrierError).
class BrokenBarrierError : public Error {
 public:
  using Error::Error;
};

/// @brief An index outside a container's bounds (Python's IndexError): a GlobalArray or
/// SharedArray element or range that does not exist. The message names the call, the
/// index and the bounds.
class IndexError : public Error {
 public:
  using Error::Error;
};

/// @brief A key a mapping does not hold (Python's KeyError): Dict::at of a missing key.
/// The message names the call.
class KeyError : public Error {
 public:
  using Error::Error;
};

/// @brief An exception raised by a task on another rank whose type could not be
/// rebuilt here; what() carries `[rank r/N on host] type: message`.
class RemoteError : public Error {
 public:
  RemoteError(std::string type_name, std::string message, int rank, std::string what_text)
      : Error(std::move(what_text)), type_name_(std::move(type_name)), message_(std::move(message)), rank_(rank) {}
  /// @brief Demangled type name of the original exception.
  const std::string& type_name() const noexcept { return type_name_; }
  /// @brief what() of the original exception.
  const std::string& message() const noexcept { return message_; }
  /// @brief World rank that raised it.
  int rank() const noexcept { return rank_; }

 private:
  std::string type_name_;
  std::string message_;
  int rank_;
};

/// @brief An MPI call failed; keeps the MPI error code, its class and MPI's text.
class MpiError : public Error {
 public:
  MpiError(const std::string& what_text, int code, int error_class)
      : Error(what_text), code_(code), class_(error_class) {}
  /// @brief The MPI return code.
  int code() const noexcept { return code_; }
  /// @brief MPI_Error_class of the code.
  int error_class() const noexcept { return class_; }

 private:
  int code_;
  int class_;
};

}  // namespace troupe
