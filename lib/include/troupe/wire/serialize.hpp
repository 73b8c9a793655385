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

#include <algorithm>
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

/// @brief The smallest contiguous part of a value (the elements of a `std::vector` of
/// trivially copyable elements, the characters of a `std::string`) that a block-enabled
/// Writer records by reference instead of copying: such a block travels as its own MPI
/// message (docs/wire.md, "Large payloads"). Sender and receiver use the same constant.
inline constexpr std::size_t kBlockMin = std::size_t{1} << 20;

/// @brief The blocks of one received record (docs/wire.md, "Large payloads"): their sizes
/// as announced by the sender, and either their bytes (staged: received into buffers of
/// their own before decoding) or, filled while decoding (deferred), where each must go.
struct BlockSet {
  /// Announced sizes, in the order the value's blocks are encoded.
  std::vector<std::uint64_t> sizes;
  /// Staged mode: each block's bytes (sizes[i] long). Empty in deferred mode.
  std::vector<std::unique_ptr<std::byte[]>> staged;
  /// Deferred mode: where decoding put each block (the final memory of the value's parts).
  std::vector<std::span<std::byte>> dest;
  /// Blocks consumed so far by the reader.
  std::size_t next = 0;
  /// True: read_block leaves the memory alone and records it in dest.
  bool deferred = false;
};

/// @brief Appends encoded values to an owned byte buffer.
///
/// Not thread-safe (one writer per thread); never blocks. Throws std::bad_alloc when the
/// buffer cannot grow, and troupe::ValueError for a valueless `std::variant`.
///
/// **Blocks.** After enable_blocks(), write_block() records a contiguous part of at least
/// troupe::wire::kBlockMin bytes by reference (blocks()) instead of copying it: the memory
/// must stay valid and unchanged until whoever sends the blocks is done with them (keep()
/// ties owners to the writer). Only the messaging layer's large-payload path enables it.
class Writer {
 public:
  /// @brief A part of a value recorded by reference (see enable_blocks()).
  struct Block {
    const std::byte* data;
    std::size_t size;
  };
  /// @brief A position in the writer (bytes and blocks written), for rewind().
  struct Mark {
    std::size_t bytes;
    std::size_t blocks;
  };

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

  /// @brief Appends the @p n bytes at @p p, a contiguous part of a value that stays where it
  /// is (a vector's or string's elements): recorded by reference when blocks are enabled and
  /// @p n >= kBlockMin, else copied as write_bytes() does.
  void write_block(const void* p, std::size_t n) {
    if (blocks_on_ && n >= kBlockMin) {
      blocks_.push_back(Block{static_cast<const std::byte*>(p), n});
      return;
    }
    write_bytes(p, n);
  }
  /// @brief Records parts of at least kBlockMin bytes by reference from now on (or, with
  /// false, copies everything again).
  void enable_blocks(bool on = true) noexcept { blocks_on_ = on; }
  /// @brief True after enable_blocks().
  bool blocks_enabled() const noexcept { return blocks_on_; }
  /// @brief The blocks recorded so far, in encoding order.
  std::vector<Block>& blocks() noexcept { return blocks_; }
  /// @brief Ties the life of @p owner (the memory of recorded blocks) to whoever takes it
  /// with take_keep().
  void keep(std::shared_ptr<const void> owner) { keep_.push_back(std::move(owner)); }
  /// @brief Moves the owners out (see keep()).
  std::vector<std::shared_ptr<const void>> take_keep() noexcept { return std::exchange(keep_, {}); }
  /// @brief The current position.
  Mark mark() const noexcept { return Mark{buf_.size(), blocks_.size()}; }
  /// @brief Drops what was written after @p m (bytes and blocks).
  void rewind(Mark m) {
    buf_.resize(m.bytes);
    blocks_.resize(m.blocks);
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
  std::vector<Block> blocks_;
  std::vector<std::shared_ptr<const void>> keep_;
  bool blocks_on_ = false;
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

  /// @brief Reads the length of a sequence whose @p elem_size -byte elements are read with
  /// read_block(): when they form a block of a record received with blocks (attach_blocks),
  /// the length must match the next announced block, else the bytes that remain.
  std::uint64_t read_block_length(std::string_view what, std::size_t elem_size) {
    if (!blocks_) return read_length(what, elem_size);
    require(8, what);
    const auto n = detail::load_le<std::uint64_t>(data_.data() + pos_);
    if (n > SIZE_MAX / elem_size || n * elem_size < kBlockMin) return read_length(what, elem_size);
    pos_ += 8;
    check_block(what, n * elem_size);
    return n;
  }
  /// @brief Reads @p n bytes of a contiguous part into @p p: from the record itself, or,
  /// for a block of a record received with blocks, from its staged bytes (staged mode) or
  /// not at all (deferred mode: @p p is recorded as where the block goes).
  void read_block(std::string_view what, void* p, std::size_t n) {
    if (!blocks_ || n < kBlockMin) {
      read_bytes_for(what, p, n);
      return;
    }
    check_block(what, n);
    const std::size_t i = blocks_->next++;
    if (blocks_->deferred) {
      blocks_->dest.emplace_back(static_cast<std::byte*>(p), n);
    } else {
      std::memcpy(p, blocks_->staged[i].get(), n);
    }
  }
  /// @brief Reads the record's blocks from @p blocks (see BlockSet).
  void attach_blocks(std::shared_ptr<BlockSet> blocks) noexcept { blocks_ = std::move(blocks); }
  /// @brief The blocks attached, or null.
  const std::shared_ptr<BlockSet>& blocks() const noexcept { return blocks_; }

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
  void check_block(std::string_view what, std::size_t n) const {
    const std::size_t i = blocks_->next;
    if (i >= blocks_->sizes.size() || blocks_->sizes[i] != n || (!blocks_->deferred && i >= blocks_->staged.size())) {
      detail::throw_bad_block(what, n, i, i < blocks_->sizes.size() ? blocks_->sizes[i] : 0, blocks_->sizes.size());
    }
  }

  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
  std::shared_ptr<BlockSet> blocks_;
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

/// @brief Appends @p v like save(); when @p w records blocks by reference and @p v has some,
/// the value is first moved (an lvalue: copied) to the heap and kept alive by @p w
/// (Writer::keep), so that its blocks outlive the caller's object.
template <class T>
void save_kept(Writer& w, T&& v) {
  using V = std::remove_cvref_t<T>;
  if constexpr (!std::is_constructible_v<V, T&&>) {
    const bool on = w.blocks_enabled();
    w.enable_blocks(false);  // nothing to keep it alive with: copy it
    save(w, static_cast<const V&>(v));
    w.enable_blocks(on);
  } else {
    const Writer::Mark at = w.mark();
    if constexpr (std::is_rvalue_reference_v<T&&>) {
      save(w, static_cast<const V&>(v));
      if (!w.blocks_enabled() || w.blocks().size() == at.blocks) return;  // nothing by reference
      w.rewind(at);
    } else if (!w.blocks_enabled()) {
      save(w, static_cast<const V&>(v));
      return;
    }
    auto held = std::make_shared<const V>(std::forward<T>(v));
    save(w, *held);
    if (w.blocks().size() != at.blocks) w.keep(std::move(held));
  }
}

/// @brief A value decoded before its blocks arrived (docs/wire.md, "Large payloads"): the
/// first step of receiving a record's blocks straight into the value's memory.
///
/// begin() decodes a T from a reader whose BlockSet is in deferred mode; its dest then
/// lists where each block must be received. If decoding moved a part after recording its
/// place (a type that copies instead of moving), the blocks are received into staged
/// buffers instead and finish() decodes again from them. finish() returns the value once
/// every block arrived. Not thread-safe; never blocks.
template <class T>
class DeferredValue {
 public:
  /// @brief Decodes @p r (all of it) with its blocks in deferred mode.
  /// @throws DecodeError for a malformed record or one whose blocks do not fit the value.
  void begin(Reader& r) {
    const auto& set = r.blocks();
    if (!set || !set->deferred) throw DecodeError("troupe wire: DeferredValue::begin needs deferred blocks");
    const std::size_t start = r.offset();
    value_ = std::make_unique<T>();
    load(r, *value_);
    if (r.remaining() != 0) detail::throw_trailing(detail::type_name<T>(), r.offset(), r.bytes().size());
    if (set->next != set->sizes.size()) {
      throw DecodeError("troupe wire: " + std::string(detail::type_name<T>()) + " used " + std::to_string(set->next) +
                        " of the record's " + std::to_string(set->sizes.size()) + " blocks");
    }
    // Where the value's parts are now, in the value's own order: the same places as those
    // recorded while decoding (as a set: unordered containers may list them differently).
    Writer scan;
    scan.enable_blocks();
    save(scan, *value_);
    std::vector<std::pair<const std::byte*, std::size_t>> now, recorded;
    for (const auto& b : scan.blocks()) now.emplace_back(b.data, b.size);
    for (const auto& d : set->dest) recorded.emplace_back(d.data(), d.size());
    std::sort(now.begin(), now.end());
    std::sort(recorded.begin(), recorded.end());
    if (now != recorded) {  // some part moved: receive into buffers, decode again at finish
      value_.reset();
      const auto bytes = r.bytes().subspan(start);
      record_.assign(bytes.begin(), bytes.end());
      set->dest.clear();
      for (const auto n : set->sizes) {
        set->staged.emplace_back(new std::byte[static_cast<std::size_t>(n)]);
        set->dest.emplace_back(set->staged.back().get(), static_cast<std::size_t>(n));
      }
    }
  }
  /// @brief The value, once every block of @p set arrived where begin() said.
  T finish(const std::shared_ptr<BlockSet>& set) {
    if (value_) return std::move(*value_);
    set->deferred = false;
    set->next = 0;
    Reader r(record_);
    r.attach_blocks(set);
    T v{};
    load(r, v);
    return v;
  }

 private:
  std::unique_ptr<T> value_;
  std::vector<std::byte> record_;
};

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
