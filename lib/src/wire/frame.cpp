// Frame headers and batches: encoding, validation with messages that say what and where.
#include "troupe/wire/frame.hpp"

#include <cstdio>
#include <string>

#include "troupe/core/error.hpp"

namespace troupe::wire {

namespace {

using detail::load_le;
using detail::store_le;

std::string from_rank(int rank) {
  return rank >= 0 ? "from rank " + std::to_string(rank) : std::string("from an unknown rank");
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
  return buf;
}

// Printable rendering of the four magic bytes, so that a frame of another program shows up.
std::string magic_text(std::span<const std::byte> b) {
  std::string s = "\"";
  for (std::size_t i = 0; i < 4; ++i) {
    const auto c = std::to_integer<unsigned char>(b[i]);
    if (c >= 0x20 && c < 0x7f) {
      s += static_cast<char>(c);
    } else {
      s += '.';
    }
  }
  return s + "\"";
}

// Validates the header at the start of `bytes`. `where` is "" for a whole message, or
// " (frame i of a batch, at offset o)". With exact, the payload must fill `bytes` exactly.
FrameHeader check_header(std::span<const std::byte> bytes, int rank, bool exact, const std::string& where) {
  if (bytes.size() < kFrameHeaderSize) {
    throw DecodeError("troupe wire: message of " + std::to_string(bytes.size()) + " bytes " + from_rank(rank) +
                      where + " is shorter than the " + std::to_string(kFrameHeaderSize) + "-byte frame header");
  }
  const std::byte* p = bytes.data();
  FrameHeader h;
  h.magic = load_le<std::uint32_t>(p);
  h.version = load_le<std::uint16_t>(p + 4);
  const auto type = load_le<std::uint16_t>(p + 6);
  h.flags = load_le<std::uint32_t>(p + 8);
  h.tag = load_le<std::uint32_t>(p + 12);
  h.payload_size = load_le<std::uint64_t>(p + 16);
  if (h.magic != kFrameMagic) {
    throw DecodeError("troupe wire: bad magic " + hex32(h.magic) + " " + magic_text(bytes) + " in frame " +
                      from_rank(rank) + where + " (expected " + hex32(kFrameMagic) +
                      " \"TRPE\"); is every rank running the same troupe version?");
  }
  if (h.version != kWireVersion) {
    throw DecodeError("troupe wire: frame " + from_rank(rank) + where + " has wire version " +
                      std::to_string(h.version) + ", this rank speaks version " + std::to_string(kWireVersion) +
                      "; is every rank running the same troupe version?");
  }
  if (type == 0 || type > kMaxMessageType) {
    throw DecodeError("troupe wire: unknown message type " + std::to_string(type) + " in frame " +
                      from_rank(rank) + where + " (known: 1.." + std::to_string(kMaxMessageType) +
                      "); is every rank running the same troupe version?");
  }
  h.type = static_cast<MessageType>(type);
  const std::size_t available = bytes.size() - kFrameHeaderSize;
  if (exact ? h.payload_size != available : h.payload_size > available) {
    throw DecodeError("troupe wire: " + std::string(to_string(h.type)) + " frame " + from_rank(rank) + where +
                      " announces a payload of " + std::to_string(h.payload_size) + " bytes but " +
                      std::to_string(available) + " bytes follow its header" +
                      (exact ? "" : " (at most)"));
  }
  return h;
}

void patch_payload_size(Writer& w, std::size_t frame_start) {
  auto& buf = w.buffer();
  if (frame_start > buf.size() || buf.size() - frame_start < kFrameHeaderSize) {
    throw ValueError("troupe::wire::end_frame: frame_start " + std::to_string(frame_start) +
                     " is not the offset of a frame header in a buffer of " + std::to_string(buf.size()) +
                     " bytes");
  }
  store_le(buf.data() + frame_start + 16, static_cast<std::uint64_t>(buf.size() - frame_start - kFrameHeaderSize));
}

}  // namespace

std::string_view to_string(MessageType type) noexcept {
  switch (type) {
    case MessageType::Task: return "Task";
    case MessageType::Result: return "Result";
    case MessageType::Error: return "Error";
    case MessageType::Cancel: return "Cancel";
    case MessageType::Shutdown: return "Shutdown";
    case MessageType::Credit: return "Credit";
    case MessageType::Batch: return "Batch";
    case MessageType::Control: return "Control";
  }
  return "unknown";
}

std::array<std::byte, kFrameHeaderSize> encode_header(const FrameHeader& h) noexcept {
  std::array<std::byte, kFrameHeaderSize> out{};
  store_le(out.data(), h.magic);
  store_le(out.data() + 4, h.version);
  store_le(out.data() + 6, static_cast<std::uint16_t>(h.type));
  store_le(out.data() + 8, h.flags);
  store_le(out.data() + 12, h.tag);
  store_le(out.data() + 16, h.payload_size);
  return out;
}

void encode_header(Writer& w, const FrameHeader& h) {
  const auto bytes = encode_header(h);
  w.write_bytes(bytes.data(), bytes.size());
}

FrameHeader decode_header(std::span<const std::byte> message, int source_rank) {
  return check_header(message, source_rank, true, "");
}

FrameHeader peek_header(std::span<const std::byte> bytes, int source_rank) {
  return check_header(bytes, source_rank, false, "");
}

Frame decode_frame(std::span<const std::byte> message, int source_rank) {
  const FrameHeader h = decode_header(message, source_rank);
  return Frame{h, message.subspan(kFrameHeaderSize)};
}

std::size_t begin_frame(Writer& w, MessageType type, std::uint32_t flags, std::uint32_t tag) {
  const std::size_t at = w.size();
  FrameHeader h;
  h.type = type;
  h.flags = flags;
  h.tag = tag;
  encode_header(w, h);
  return at;
}

void end_frame(Writer& w, std::size_t frame_start) { patch_payload_size(w, frame_start); }

// ---- BatchWriter ----------------------------------------------------------------------------

BatchWriter::BatchWriter(std::uint32_t flags, std::uint32_t tag) : flags_(flags), tag_(tag) { start(); }

void BatchWriter::start() {
  w_ = Writer();
  count_ = 0;
  open_ = false;
  begin_frame(w_, MessageType::Batch, flags_, tag_);
}

void BatchWriter::add(MessageType type, std::span<const std::byte> payload, std::uint32_t flags,
                      std::uint32_t tag) {
  const std::size_t at = begin(type, flags, tag);
  w_.write_bytes(payload.data(), payload.size());
  end(at);
}

std::size_t BatchWriter::begin(MessageType type, std::uint32_t flags, std::uint32_t tag) {
  if (open_) throw InvalidStateError("troupe::wire::BatchWriter::begin: the previous frame is still open");
  if (type == MessageType::Batch) {
    throw InvalidStateError("troupe::wire::BatchWriter::begin: a Batch cannot hold another Batch");
  }
  open_ = true;
  return begin_frame(w_, type, flags, tag);
}

void BatchWriter::end(std::size_t frame_start) {
  if (!open_) throw InvalidStateError("troupe::wire::BatchWriter::end: no frame is open");
  end_frame(w_, frame_start);
  open_ = false;
  ++count_;
}

std::vector<std::byte> BatchWriter::finish() {
  if (open_) throw InvalidStateError("troupe::wire::BatchWriter::finish: a frame is still open");
  end_frame(w_, 0);
  std::vector<std::byte> out = w_.take();
  start();
  return out;
}

// ---- BatchView ------------------------------------------------------------------------------

BatchView::BatchView(std::span<const std::byte> batch_payload, int source_rank) : bytes_(batch_payload) {
  std::size_t offset = 0;
  while (offset < bytes_.size()) {
    const auto rest = bytes_.subspan(offset);
    const std::string where = " (frame " + std::to_string(count_) + " of a batch, at offset " +
                              std::to_string(offset) + ")";
    const FrameHeader h = check_header(rest, source_rank, false, where);
    if (h.type == MessageType::Batch) {
      throw DecodeError("troupe wire: nested Batch frame " + from_rank(source_rank) + where);
    }
    offset += kFrameHeaderSize + static_cast<std::size_t>(h.payload_size);
    ++count_;
  }
}

BatchView::BatchView(const Frame& batch_frame, int source_rank) : BatchView(batch_frame.payload, source_rank) {
  if (batch_frame.header.type != MessageType::Batch) {
    throw DecodeError("troupe wire: expected a Batch frame " + from_rank(source_rank) + ", got " +
                      std::string(to_string(batch_frame.header.type)));
  }
}

BatchView::iterator::iterator(std::span<const std::byte> bytes, std::size_t offset) noexcept
    : bytes_(bytes), offset_(offset) {
  if (offset_ < bytes_.size()) {
    // Validated by the BatchView constructor, so this decodes without checks.
    const std::byte* p = bytes_.data() + offset_;
    current_.header.magic = load_le<std::uint32_t>(p);
    current_.header.version = load_le<std::uint16_t>(p + 4);
    current_.header.type = static_cast<MessageType>(load_le<std::uint16_t>(p + 6));
    current_.header.flags = load_le<std::uint32_t>(p + 8);
    current_.header.tag = load_le<std::uint32_t>(p + 12);
    current_.header.payload_size = load_le<std::uint64_t>(p + 16);
    current_.payload = bytes_.subspan(offset_ + kFrameHeaderSize, static_cast<std::size_t>(current_.header.payload_size));
  } else {
    current_ = Frame{};
  }
}

BatchView::iterator& BatchView::iterator::operator++() noexcept {
  *this = iterator(bytes_, offset_ + kFrameHeaderSize + static_cast<std::size_t>(current_.header.payload_size));
  return *this;
}

}  // namespace troupe::wire
