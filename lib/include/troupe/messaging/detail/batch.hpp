#pragma once
// The one wire layout of troupe's inter-rank traffic. One MPI message is a batch:
//   BatchHeader {u32 magic "TRPE", u16 version, u16 flags}
//   then frames to the end of the message, each FrameHeader {u16 kind, u64 length} + record.
// Integers are little-endian (the wire codec's layout). A record's fields are written and
// read with the wire codec too; nothing here or above writes bytes at hand-made offsets.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "troupe/wire/serialize.hpp"

namespace troupe::messaging::detail {

inline constexpr std::uint32_t kMagic = 0x45505254;  // "TRPE" read as little-endian bytes
inline constexpr std::uint16_t kVersion = 2;

struct BatchHeader {
  std::uint32_t magic = kMagic;
  std::uint16_t version = kVersion;
  std::uint16_t flags = 0;
  TROUPE_FIELDS(magic, version, flags)
};

struct FrameHeader {
  std::uint16_t kind = 0;
  std::uint64_t length = 0;
  TROUPE_FIELDS(kind, length)
};

/// Appends one frame to @p batch (starting the batch header when @p batch is empty); the
/// record is whatever @p encode writes to the wire::Writer it is given.
template <class Encode>
void append_frame(std::vector<std::byte>& batch, std::uint16_t kind, Encode&& encode) {
  wire::Writer w(std::move(batch));
  if (w.size() == 0) wire::save(w, BatchHeader{});
  wire::save(w, kind);
  const std::size_t length_at = w.size();
  wire::save(w, std::uint64_t{0});  // patched below, once the record's size is known
  const std::size_t record_at = w.size();
  try {
    encode(w);
  } catch (...) {
    w.buffer().resize(length_at - sizeof(kind));  // drop the half-written frame
    batch = w.take();
    throw;
  }
  batch = w.take();
  wire::detail::store_le(batch.data() + length_at, static_cast<std::uint64_t>(batch.size() - record_at));
}

/// Calls @p visit(kind, record) for every frame of @p batch, in order. Returns nullopt for a
/// well-formed batch, else what is wrong with it (frames before the fault were visited).
std::optional<std::string> parse_batch(std::span<const std::byte> batch,
                                       const std::function<void(std::uint16_t, std::span<const std::byte>)>& visit);

}  // namespace troupe::messaging::detail
