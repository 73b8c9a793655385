// Cold paths of the wire format: every DecodeError is built here, so that the inline
// decoders in troupe/wire/detail/codec.hpp stay small.
#include "troupe/wire/serialize.hpp"

#include <string>

namespace troupe::wire::detail {

namespace {
std::string str(std::string_view s) { return std::string(s); }
}  // namespace

void throw_truncated(std::string_view what, std::size_t needed, std::size_t offset, std::size_t remaining) {
  throw DecodeError("troupe wire: truncated input while decoding " + str(what) + ": needed " + std::to_string(needed) +
                    " bytes at offset " + std::to_string(offset) + ", only " + std::to_string(remaining) + " remain");
}

void throw_bad_count(std::string_view what, std::uint64_t count, std::size_t min_element_size, std::size_t offset,
                     std::size_t remaining) {
  std::string msg = "troupe wire: bad length " + std::to_string(count) + " at offset " + std::to_string(offset) +
                    " while decoding " + str(what) + ": ";
  if (min_element_size == 0) {
    msg += "more elements than the " + std::to_string(remaining) + " remaining bytes can hold";
  } else {
    msg += "needs at least " + std::to_string(min_element_size) + " bytes per element, only " +
           std::to_string(remaining) + " bytes remain";
  }
  throw DecodeError(msg);
}

void throw_bad_value(std::string_view what, std::uint64_t value, std::size_t offset, std::string_view expected) {
  throw DecodeError("troupe wire: bad value " + std::to_string(value) + " at offset " + std::to_string(offset) +
                    " while decoding " + str(what) + " (expected " + str(expected) + ")");
}

void throw_duplicate_key(std::string_view what, std::uint64_t index, std::size_t offset) {
  throw DecodeError("troupe wire: duplicate key in element " + std::to_string(index) + " at offset " +
                    std::to_string(offset) + " while decoding " + str(what));
}

void throw_trailing(std::string_view what, std::size_t consumed, std::size_t total) {
  throw DecodeError("troupe wire: " + std::to_string(total - consumed) + " bytes left over after decoding " +
                    str(what) + " (it used " + std::to_string(consumed) + " of " + std::to_string(total) +
                    " bytes); sender and receiver disagree on the type");
}

void throw_too_many_empty(std::string_view what, std::uint64_t count, std::size_t offset) {
  throw DecodeError("troupe wire: bad length " + std::to_string(count) + " while decoding " + str(what) +
                    " near offset " + std::to_string(offset) + ": more than " + std::to_string(kMaxEmptyElements) +
                    " elements with an empty encoding");
}

void throw_valueless_variant(std::string_view what) {
  throw ValueError("troupe::wire::save: cannot send a valueless_by_exception " + str(what));
}

void throw_bad_block(std::string_view what, std::size_t bytes, std::size_t index, std::uint64_t announced,
                     std::size_t count) {
  if (index >= count) {
    throw DecodeError("troupe wire: " + str(what) + " needs a block of " + std::to_string(bytes) +
                      " bytes, but the record announced only " + std::to_string(count) + " blocks");
  }
  throw DecodeError("troupe wire: " + str(what) + " needs a block of " + std::to_string(bytes) + " bytes, block " +
                    std::to_string(index) + " of the record has " + std::to_string(announced));
}

void throw_boost_failure(std::string_view what, std::size_t offset, const char* reason) {
  throw DecodeError("troupe wire: Boost.Serialization archive of " + str(what) + " at offset " +
                    std::to_string(offset) + " could not be decoded: " + reason);
}

}  // namespace troupe::wire::detail
