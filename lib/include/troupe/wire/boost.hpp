#pragma once
/// @file
/// @brief Sends user types that have a Boost.Serialization `serialize(Archive&, unsigned)`.
///
/// Include this header in the files that send or receive such types (troupe/wire/serialize.hpp
/// alone does not, to keep Boost's archive headers out of every other translation unit; a
/// static_assert says so if it is missing).
///
/// Encoding: a 64-bit little-endian length, then a `boost::archive::binary_oarchive`
/// written with `no_header`. Decoding reads exactly that many bytes with a
/// `binary_iarchive`; any exception from Boost or from the type's serialize function becomes a
/// troupe::wire::DecodeError, and so do bytes the archive leaves unread.
///
/// @code
///   struct Point {
///     double x, y;
///     std::vector<int> ids;
///     template <class Archive>
///     void serialize(Archive& ar, const unsigned /*version*/) { ar & x & y & ids; }
///   };  // with <boost/serialization/vector.hpp> for the vector
///   auto bytes = troupe::wire::serialize(Point{1, 2, {3}});
/// @endcode
/// @warning troupe bounds the archive to its length-prefixed bytes, but Boost's own decoding
/// of what is inside is not hardened against malformed input (a corrupt count inside the
/// archive may make Boost allocate before it fails). Frames come from ranks of the same
/// binary, so this matters for corrupted messages, not for hostile ones.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <streambuf>
#include <vector>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>

#include "troupe/wire/serialize.hpp"

namespace troupe::wire::detail {

/// A streambuf that appends to a byte vector (no intermediate std::stringstream copy).
class VectorSink final : public std::streambuf {
 public:
  explicit VectorSink(std::vector<std::byte>& buf) noexcept : buf_(buf) {}

 protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) buf_.push_back(static_cast<std::byte>(c));
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const auto* b = reinterpret_cast<const std::byte*>(s);
    buf_.insert(buf_.end(), b, b + n);
    return n;
  }

 private:
  std::vector<std::byte>& buf_;
};

/// A read-only streambuf over a byte span.
class SpanSource final : public std::streambuf {
 public:
  explicit SpanSource(std::span<const std::byte> bytes) noexcept {
    // The get area is never written through: pbackfail and the put area keep their defaults.
    char* b = const_cast<char*>(reinterpret_cast<const char*>(bytes.data()));
    setg(b, b, b + bytes.size());
  }
  std::size_t consumed() const noexcept { return static_cast<std::size_t>(gptr() - eback()); }
};

template <class T, class>
struct BoostBridge {
  static void save(Writer& w, const T& v) {
    auto& buf = w.buffer();
    const std::size_t at = buf.size();
    w.write_length(0);  // patched below
    {
      VectorSink sink(buf);
      boost::archive::binary_oarchive ar(sink, boost::archive::no_header);
      ar << v;
    }
    store_le(buf.data() + at, static_cast<std::uint64_t>(buf.size() - at - 8));
  }

  static void load(Reader& r, T& v) {
    constexpr auto what = type_name<T>();
    const std::size_t at = r.offset();
    const auto n = r.read_length(what, 1);
    const auto bytes = r.read_view(static_cast<std::size_t>(n));
    SpanSource source(bytes);
    try {
      boost::archive::binary_iarchive ar(source, boost::archive::no_header);
      ar >> v;
    } catch (const DecodeError&) {
      throw;
    } catch (const std::exception& e) {
      throw_boost_failure(what, at, e.what());
    }
    if (source.consumed() != bytes.size()) {
      throw_boost_failure(what, at, "the archive left bytes unread; sender and receiver disagree on the type");
    }
  }
};

}  // namespace troupe::wire::detail
