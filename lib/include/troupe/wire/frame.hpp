#pragma once
/// @file
/// @brief Frames: the fixed header in front of every engine message, and batches that pack
/// several frames into one MPI message.
///
/// Header layout (24 bytes, every field little-endian):
///
/// | offset | size | field        | value                                            |
/// |--------|------|--------------|--------------------------------------------------|
/// | 0      | 4    | magic        | bytes "TRPE" (kFrameMagic)                       |
/// | 4      | 2    | version      | kWireVersion                                     |
/// | 6      | 2    | type         | MessageType                                      |
/// | 8      | 4    | flags        | meaning chosen by the engine per type            |
/// | 12     | 4    | tag          | sequence number / correlation id, engine's choice |
/// | 16     | 8    | payload_size | bytes that follow the header                     |
///
/// A Batch frame's payload is a sequence of complete frames (none of them a Batch).
/// Decoding validates magic, version, type and length and throws troupe::wire::DecodeError
/// with a message naming the sending rank; it never reads out of bounds.

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string_view>
#include <vector>

#include "troupe/wire/serialize.hpp"

namespace troupe::wire {

/// @brief What a frame carries. Values are part of the wire format: append, never renumber.
enum class MessageType : std::uint16_t {
  Task = 1,      ///< a task to run (callable identity + arguments)
  Result = 2,    ///< a task's value
  Error = 3,     ///< a task's exception
  Cancel = 4,    ///< cancel tasks not yet started
  Shutdown = 5,  ///< the executor is shutting down
  Credit = 6,    ///< flow control: the receiver may send more tasks
  Batch = 7,     ///< several frames in one message
  Control = 8,   ///< anything else the engine needs (barriers, termination detection, ...)
};

/// @brief The largest MessageType value this version knows.
inline constexpr std::uint16_t kMaxMessageType = 8;
/// @brief First four bytes of every frame: "TRPE" (read as a little-endian u32).
inline constexpr std::uint32_t kFrameMagic = 0x45505254u;
/// @brief Wire format version; bumped on any incompatible change of frames or encodings.
inline constexpr std::uint16_t kWireVersion = 1;
/// @brief Size of an encoded FrameHeader.
inline constexpr std::size_t kFrameHeaderSize = 24;

/// @brief The name of @p type ("Task", ...), or "unknown". Never throws.
std::string_view to_string(MessageType type) noexcept;

/// @brief A decoded (or to-be-encoded) frame header.
struct FrameHeader {
  std::uint32_t magic = kFrameMagic;
  std::uint16_t version = kWireVersion;
  MessageType type = MessageType::Task;
  std::uint32_t flags = 0;
  std::uint32_t tag = 0;
  std::uint64_t payload_size = 0;

  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

/// @brief A frame inside a message: its header and a view of its payload.
struct Frame {
  FrameHeader header;
  std::span<const std::byte> payload;
};

/// @brief The 24 header bytes of @p h (written as given, even if invalid: tests rely on it).
std::array<std::byte, kFrameHeaderSize> encode_header(const FrameHeader& h) noexcept;

/// @brief Appends the 24 header bytes of @p h to @p w.
void encode_header(Writer& w, const FrameHeader& h);

/// @brief Decodes and validates the header of @p message, which must be exactly one frame:
/// magic, version and type must be known and payload_size must equal
/// `message.size() - kFrameHeaderSize`.
/// @param source_rank the sender, named in error messages (-1: unknown).
/// @throws DecodeError naming what is wrong, e.g. "troupe wire: bad magic 0x... in frame
/// from rank 3 (expected 0x45505254 "TRPE"); is every rank running the same troupe version?"
FrameHeader decode_header(std::span<const std::byte> message, int source_rank = -1);

/// @brief Like decode_header, but @p bytes may hold more after the frame (payload_size must
/// fit in what follows the header).
FrameHeader peek_header(std::span<const std::byte> bytes, int source_rank = -1);

/// @brief decode_header plus a view of the payload.
Frame decode_frame(std::span<const std::byte> message, int source_rank = -1);

/// @brief Starts a frame at the end of @p w: writes a header with payload_size 0 and returns
/// its offset; write the payload with @p w, then call end_frame. Builds a frame without
/// copying the payload.
/// @code
///   troupe::wire::Writer w;
///   auto at = troupe::wire::begin_frame(w, troupe::wire::MessageType::Result, 0, seq);
///   w.write(result);
///   troupe::wire::end_frame(w, at);
/// @endcode
std::size_t begin_frame(Writer& w, MessageType type, std::uint32_t flags = 0, std::uint32_t tag = 0);

/// @brief Sets the payload_size of the frame begun at @p frame_start to the bytes written since.
/// @throws troupe::ValueError if @p frame_start is not inside the buffer.
void end_frame(Writer& w, std::size_t frame_start);

/// @brief A complete frame holding @p payload encoded with troupe::wire::save.
template <class T>
std::vector<std::byte> make_frame(MessageType type, const T& payload, std::uint32_t flags = 0,
                                  std::uint32_t tag = 0) {
  Writer w;
  w.reserve(kFrameHeaderSize + detail::size_hint(payload));
  const std::size_t at = begin_frame(w, type, flags, tag);
  save(w, payload);
  end_frame(w, at);
  return w.take();
}

/// @brief Packs several frames into one Batch frame.
///
/// Not thread-safe; never blocks; throws std::bad_alloc, and troupe::InvalidStateError for
/// calls out of order (add while a frame is open, finish with a frame open, nested batches).
/// @code
///   troupe::wire::BatchWriter batch;
///   batch.add(MessageType::Result, result_bytes, 0, seq);
///   auto at = batch.begin(MessageType::Task, 0, seq2);
///   batch.writer().write(args);
///   batch.end(at);
///   std::vector<std::byte> message = batch.finish();
/// @endcode
class BatchWriter {
 public:
  /// @brief Starts an empty batch whose outer frame has @p flags and @p tag.
  explicit BatchWriter(std::uint32_t flags = 0, std::uint32_t tag = 0);

  /// @brief Appends a complete frame whose payload is @p payload.
  void add(MessageType type, std::span<const std::byte> payload, std::uint32_t flags = 0,
           std::uint32_t tag = 0);
  /// @brief Appends a frame whose payload is @p value encoded with troupe::wire::save.
  template <class T>
  void add_value(MessageType type, const T& value, std::uint32_t flags = 0, std::uint32_t tag = 0) {
    const std::size_t at = begin(type, flags, tag);
    save(w_, value);
    end(at);
  }
  /// @brief Opens a frame; write its payload through writer(), then call end().
  std::size_t begin(MessageType type, std::uint32_t flags = 0, std::uint32_t tag = 0);
  /// @brief Closes the frame opened at @p frame_start.
  void end(std::size_t frame_start);
  /// @brief The writer positioned at the end of the batch.
  Writer& writer() noexcept { return w_; }

  /// @brief Frames added so far.
  std::size_t count() const noexcept { return count_; }
  /// @brief True before the first frame.
  bool empty() const noexcept { return count_ == 0; }
  /// @brief Bytes of the whole message so far, outer header included.
  std::size_t size() const noexcept { return w_.size(); }

  /// @brief The finished Batch message; the writer starts a new empty batch afterwards.
  std::vector<std::byte> finish();

 private:
  void start();
  Writer w_;
  std::uint32_t flags_;
  std::uint32_t tag_;
  std::size_t count_ = 0;
  bool open_ = false;
};

/// @brief The frames of a Batch, validated once on construction (every header, every length,
/// no nested batch), then iterated without further checks.
///
/// Views into the message bytes, which must outlive it. Iteration never throws.
class BatchView {
 public:
  /// @brief Validates @p batch, the payload of a Batch frame.
  /// @throws DecodeError naming the frame index, its offset and @p source_rank.
  explicit BatchView(std::span<const std::byte> batch_payload, int source_rank = -1);
  /// @brief Validates the payload of @p batch_frame, which must be of type Batch.
  explicit BatchView(const Frame& batch_frame, int source_rank = -1);

  /// @brief Forward iterator over the frames, yielding Frame values.
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Frame;
    using difference_type = std::ptrdiff_t;
    using pointer = const Frame*;
    using reference = const Frame&;

    iterator() = default;
    reference operator*() const noexcept { return current_; }
    pointer operator->() const noexcept { return &current_; }
    iterator& operator++() noexcept;
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.offset_ == b.offset_; }

   private:
    friend class BatchView;
    iterator(std::span<const std::byte> bytes, std::size_t offset) noexcept;
    std::span<const std::byte> bytes_;
    std::size_t offset_ = 0;
    Frame current_{};
  };

  iterator begin() const noexcept { return iterator(bytes_, 0); }
  iterator end() const noexcept { return iterator(bytes_, bytes_.size()); }
  /// @brief Number of frames in the batch.
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }

 private:
  std::span<const std::byte> bytes_;
  std::size_t count_ = 0;
};

}  // namespace troupe::wire
