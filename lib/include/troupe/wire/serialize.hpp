#pragma once
/// @file
/// @brief The wire format: how arguments, results and captures become bytes and back.
///
/// `serialize(v)` / `deserialize<T>(bytes)` for every type that satisfies
/// troupe::wire::Serializable:
///  - trivially copyable types (arithmetic, enums, plain structs, `std::array` of them, ...),
///    copied with one memcpy, and contiguous containers of them (`std::vector<double>`,
///    `std::string`) copied with one memcpy of the whole block;
///  - `bool` (one byte, checked to be 0 or 1 on decode) and `std::vector<bool>` (bit-packed);
///  - `std::string`, `std::vector`, `std::deque`, `std::list`, `std::array`, C arrays,
///    `std::pair`, `std::tuple`, `std::map`, `std::multimap`, `std::unordered_map`,
///    `std::unordered_multimap`, `std::set`, `std::multiset`, `std::unordered_set`,
///    `std::unordered_multiset`, `std::optional`, `std::variant`, `std::monostate`,
///    `std::chrono::duration`, `std::chrono::time_point`, nested in any combination;
///  - user types with troupe's hook: a member `template <class A> void troupe_fields(A& a)
///    { a(x, y, z); }` (or `TROUPE_FIELDS(x, y, z)` in the class body), or a free
///    `template <class A> void troupe_fields(A& a, T& v) { a(v.x, v.y); }` found by ADL;
///  - user types with a Boost.Serialization `serialize(Archive&, unsigned)` (member or free,
///    found by ADL; or opt in with troupe::wire::use_boost_serialization) once
///    `<troupe/wire/boost.hpp>` is included.
///
/// Raw pointers, references, `std::reference_wrapper`, views (`std::string_view`,
/// `std::span`), smart pointers, `std::function` and types with none of the above are
/// rejected at compile time by a `static_assert` whose text starts with "troupe::wire:" and
/// says why; the compiler's "required from" notes name the type.
///
/// Format: lengths and counts are fixed 64-bit little-endian (no 2 GiB limits), a
/// `std::optional` flag is one byte, a `std::variant` index is one byte (four when it has
/// 256 or more alternatives). Trivially copyable values are their object representation:
/// every rank must run the same binary on the same architecture, which the Runtime checks.
/// docs/wire.md describes the format byte by byte.
///
/// Decoding never has undefined behaviour on malformed input: every length is checked
/// against the bytes that remain before anything is allocated, and bad variant indices,
/// optional flags and bool values, duplicate map keys and leftover bytes are rejected with a
/// troupe::wire::DecodeError that says what was being decoded and at which offset.
///
/// @warning A trivially copyable struct is copied byte for byte: if it holds a pointer (or a
/// `bool` or an enum that may receive an out-of-range value) nothing can detect it. Give such
/// a type a troupe_fields hook.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "troupe/core/error.hpp"
#include "troupe/wire/detail/bytes.hpp"

namespace troupe::wire {

/// @brief Malformed or truncated input: the message says what was being decoded, at which
/// offset, and how many bytes were needed versus how many remained.
class DecodeError : public troupe::Error {
 public:
  using Error::Error;
};

/// @brief Opt-in for types whose Boost.Serialization `serialize` function troupe cannot find by
/// itself (a free function in namespace boost::serialization, typical for third-party types):
/// specialize as `std::true_type`.
template <class T>
struct use_boost_serialization : std::false_type {};

/// @brief Appends encoded values to an owned byte buffer.
///
/// Not thread-safe (one writer per thread); never blocks. Throws std::bad_alloc when the
/// buffer cannot grow, and troupe::ValueError for a valueless `std::variant`.
class Writer {
 public:
  /// @brief An empty writer.
  Writer() = default;
  /// @brief A writer that appends to @p buffer (e.g. after a frame header already in it).
  explicit Writer(std::vector<std::byte> buffer) noexcept : buf_(std::move(buffer)) {}

  /// @brief Appends @p n raw bytes from @p p.
  void write_bytes(const void* p, std::size_t n) {
    if (n == 0) return;
    if (n <= kSmallWrite) {
      // Scalars and headers. (Also keeps GCC 12 from warning falsely about vector::insert
      // of a constant small size under -O3.)
      const std::size_t old = buf_.size();
      buf_.resize(old + n);
      std::memcpy(buf_.data() + old, p, n);
    } else {
      const auto* b = static_cast<const std::byte*>(p);
      buf_.insert(buf_.end(), b, b + n);  // one reallocation at most, no zero-fill first
    }
  }

  /// @brief Appends @p v encoded as troupe::wire::save does.
  template <class T>
  void write(const T& v);

  /// @brief Appends a length or count: 64-bit little-endian.
  void write_length(std::uint64_t n) {
    std::array<std::byte, 8> le;
    detail::store_le(le.data(), n);
    write_bytes(le.data(), le.size());
  }

  /// @brief Makes room for @p extra more bytes.
  void reserve(std::size_t extra) { buf_.reserve(buf_.size() + extra); }

  /// @brief The bytes written so far (and anything the writer was constructed with).
  std::vector<std::byte>& buffer() noexcept { return buf_; }
  /// @brief The bytes written so far.
  const std::vector<std::byte>& buffer() const noexcept { return buf_; }
  /// @brief Moves the buffer out; the writer is empty afterwards.
  std::vector<std::byte> take() noexcept { return std::exchange(buf_, {}); }
  /// @brief Number of bytes in the buffer.
  std::size_t size() const noexcept { return buf_.size(); }

 private:
  static constexpr std::size_t kSmallWrite = 64;
  std::vector<std::byte> buf_;
};

/// @brief A bounds-checked, non-owning cursor over encoded bytes.
///
/// Not thread-safe; never blocks. Every read checks the bytes that remain first and throws
/// troupe::wire::DecodeError (never reads past the end).
class Reader {
 public:
  /// @brief Reads from @p bytes, which must outlive the reader and every view it returns.
  explicit Reader(std::span<const std::byte> bytes) noexcept : data_(bytes) {}

  /// @brief Copies the next @p n bytes to @p p. @throws DecodeError if fewer remain.
  void read_bytes(void* p, std::size_t n) { read_bytes_for("raw bytes", p, n); }

  /// @brief The next @p n bytes, without copying. @throws DecodeError if fewer remain.
  std::span<const std::byte> read_view(std::size_t n) {
    require(n, "a byte view");
    auto view = data_.subspan(pos_, n);
    pos_ += n;
    return view;
  }

  /// @brief Decodes the next value as troupe::wire::load does. T must be default-constructible.
  template <class T>
  T read();

  /// @brief Reads a 64-bit length and checks that @p count elements of at least
  /// @p min_element_size bytes each can still follow. @p what names the decoded type.
  std::uint64_t read_length(std::string_view what, std::size_t min_element_size) {
    require(8, what);
    const auto n = detail::load_le<std::uint64_t>(data_.data() + pos_);
    pos_ += 8;
    if (min_element_size != 0 && n > remaining() / min_element_size) {
      detail::throw_bad_count(what, n, min_element_size, pos_ - 8, remaining());
    }
    return n;
  }

  /// @brief Skips @p n bytes. @throws DecodeError if fewer remain.
  void skip(std::size_t n) {
    require(n, "skipped bytes");
    pos_ += n;
  }

  /// @brief Throws DecodeError (naming @p what) unless @p n more bytes remain.
  void require(std::size_t n, std::string_view what) const {
    if (n > remaining()) detail::throw_truncated(what, n, pos_, remaining());
  }

  /// @brief read_bytes whose error message names @p what.
  void read_bytes_for(std::string_view what, void* p, std::size_t n) {
    require(n, what);
    if (n != 0) std::memcpy(p, data_.data() + pos_, n);
    pos_ += n;
  }

  /// @brief Bytes not read yet.
  std::size_t remaining() const noexcept { return data_.size() - pos_; }
  /// @brief Bytes read so far (the offset of the next byte).
  std::size_t offset() const noexcept { return pos_; }
  /// @brief All bytes, read or not.
  std::span<const std::byte> bytes() const noexcept { return data_; }

 private:
  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
};

template <class T>
void save(Writer& w, const T& v);
template <class T>
void load(Reader& r, T& v);

namespace detail {  // defined in troupe/wire/detail/codec.hpp
template <class T>
struct Codec;
template <class T>
constexpr void explain();
template <class T>
std::size_t size_hint(const T& v);
}  // namespace detail

}  // namespace troupe::wire

#include "troupe/wire/detail/codec.hpp"

namespace troupe::wire {

/// @brief True for every type that troupe can send (see the file comment for the list).
///
/// Checks element types of std containers recursively; for user types with a hook it
/// cannot see the fields, which are checked when the hook is instantiated.
template <class T>
concept Serializable = !std::is_void_v<T> && detail::Codec<std::remove_cv_t<T>>::supported;

/// @brief Appends @p v to @p w.
/// @tparam T any Serializable type; any other type fails to compile with a static_assert
/// that starts with "troupe::wire:" and says why.
/// @throws std::bad_alloc, troupe::ValueError for a valueless variant, or whatever a user
/// hook throws.
template <class T>
void save(Writer& w, const T& v) {
  if constexpr (!Serializable<T>) {
    detail::explain<T>();
  } else {
    detail::Codec<std::remove_cv_t<T>>::save(w, v);
  }
}

/// @brief Decodes the next value from @p r into @p v (overwriting it).
/// @throws DecodeError on truncated or malformed input (then @p v holds a valid but
/// unspecified value).
template <class T>
void load(Reader& r, T& v) {
  if constexpr (!Serializable<T>) {
    detail::explain<T>();
  } else {
    static_assert(!std::is_const_v<T>, "troupe::wire: cannot load into a const object");
    detail::Codec<std::remove_cv_t<T>>::load(r, v);
  }
}

/// @brief Encodes @p v into a new buffer.
/// @code
///   auto bytes = troupe::wire::serialize(std::map<std::string, int>{{"a", 1}});
///   auto back = troupe::wire::deserialize<std::map<std::string, int>>(bytes);
/// @endcode
template <class T>
std::vector<std::byte> serialize(const T& v) {
  Writer w;
  if constexpr (Serializable<T>) w.reserve(detail::size_hint(v));
  save<T>(w, v);
  return w.take();
}

/// @brief Decodes a T that must occupy all of @p bytes.
/// @throws DecodeError on truncated or malformed input and when bytes are left over.
template <class T>
T deserialize(std::span<const std::byte> bytes) {
  static_assert(std::is_default_constructible_v<T> || !Serializable<T>,
                "troupe::wire: deserialize<T> needs a default-constructible T (decode into an "
                "existing object with troupe::wire::load instead)");
  if constexpr (!Serializable<T>) {
    detail::explain<T>();  // fails to compile, saying why
    throw DecodeError("unreachable");
  } else {
    Reader r(bytes);
    T v{};
    load<T>(r, v);
    if (r.remaining() != 0) detail::throw_trailing(detail::type_name<T>(), r.offset(), bytes.size());
    return v;
  }
}

template <class T>
void Writer::write(const T& v) {
  save<T>(*this, v);
}

template <class T>
T Reader::read() {
  T v{};
  load<T>(*this, v);
  return v;
}

}  // namespace troupe::wire

/// @brief Declares the troupe serialization hook inside a class body: the listed members
/// (and only they) are sent, in this order.
/// @code
///   struct Particle {
///     std::string name;
///     std::vector<double> pos;
///     TROUPE_FIELDS(name, pos)
///   };
/// @endcode
#define TROUPE_FIELDS(...)                                         \
  template <class TroupeFieldsArchive>                             \
  void troupe_fields(TroupeFieldsArchive& troupe_fields_archive) { \
    troupe_fields_archive(__VA_ARGS__);                            \
  }
