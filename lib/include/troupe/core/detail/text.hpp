#pragma once
// Text helpers shared by the layers' error messages.
#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::detail {

/// `0x` and 16 lower-case hex digits of @p v, e.g. `0x00000000000000ff` (digests, keys).
std::string hex(std::uint64_t v);

/// Readable C++ name of a mangled one (`typeid(T).name()`); @p mangled itself when it
/// cannot be demangled, "(unknown type)" for nullptr. Thread-safe.
std::string demangle(const char* mangled);

/// The message of the exception being handled (call it inside a catch block): its what(),
/// or "an exception not derived from std::exception".
std::string describe_current_exception();

/// Appends @p text to @p out as a JSON string literal, quotes included, with every character
/// JSON requires escaped (RFC 8259 §7: quote, backslash, control characters); UTF-8 passes
/// through. Used by every JSON troupe writes (the trace file, troupe-info --json).
void append_json_string(std::string& out, std::string_view text);

}  // namespace troupe::detail
