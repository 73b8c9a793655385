// Fuzz target: the messaging layer's batch parser (troupe/messaging/detail/batch.hpp), which
// sees every byte another rank sends, and the two records the messenger decodes itself
// (MailRecord, BrokenRecord).
//
// Besides "no crash, no sanitizer report", it checks the parser's contract:
//  - every record view lies inside the input, frames are visited in order and back to back;
//  - a well-formed batch re-encodes with append_frame to the same bytes (flags aside);
//  - a malformed one is named (non-empty reason), and the frames visited before the fault
//    re-encode to a prefix of the input.
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_target.hpp"
#include "troupe/messaging/detail/batch.hpp"
#include "troupe/messaging/kinds.hpp"
#include "troupe/messaging/messenger.hpp"
#include "troupe/wire/serialize.hpp"

namespace {

namespace md = troupe::messaging::detail;
namespace wire = troupe::wire;
using troupe::messaging::Kind;

constexpr std::size_t kHeaderBytes = 8;  // BatchHeader: u32 magic, u16 version, u16 flags

// Decodes a record as Messenger's dispatch does for its own kinds.
void decode_record(std::uint16_t kind, std::span<const std::byte> record) {
  wire::Reader in(record);
  try {
    if (kind == static_cast<std::uint16_t>(Kind::kMail)) {
      troupe::messaging::MailRecord m;
      wire::load(in, m);
      TROUPE_FUZZ_CHECK(m.bytes.size() <= record.size());
    } else if (kind == static_cast<std::uint16_t>(Kind::kBroken)) {
      troupe::messaging::BrokenRecord b;
      wire::load(in, b);
      TROUPE_FUZZ_CHECK(b.cause.size() <= record.size());
    }
  } catch (const wire::DecodeError& e) {
    TROUPE_FUZZ_CHECK(e.what()[0] != '\0');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> batch(reinterpret_cast<const std::byte*>(data), size);
  std::vector<std::pair<std::uint16_t, std::span<const std::byte>>> frames;
  const std::byte* next = batch.data() + std::min(size, kHeaderBytes + 10);  // first record
  const auto problem = md::parse_batch(batch, [&](std::uint16_t kind, std::span<const std::byte> record) {
    TROUPE_FUZZ_CHECK(record.data() >= batch.data());
    TROUPE_FUZZ_CHECK(record.data() + record.size() <= batch.data() + batch.size());
    TROUPE_FUZZ_CHECK(record.data() == next);  // back to back, after a 10-byte frame header
    next = record.data() + record.size() + 10;
    frames.emplace_back(kind, record);
    decode_record(kind, record);
  });

  std::vector<std::byte> again;
  for (const auto& frame : frames) {
    const auto record = frame.second;  // (clang 14 cannot capture a structured binding)
    md::append_frame(again, frame.first, [&](wire::Writer& w) { w.write_bytes(record.data(), record.size()); });
  }
  if (!problem) {
    TROUPE_FUZZ_CHECK(size >= kHeaderBytes);
    if (frames.empty()) {
      TROUPE_FUZZ_CHECK(size == kHeaderBytes);
    } else {
      TROUPE_FUZZ_CHECK(again.size() == size);
      TROUPE_FUZZ_CHECK(std::memcmp(again.data(), data, 6) == 0);  // magic and version; flags are not written
      TROUPE_FUZZ_CHECK(std::memcmp(again.data() + kHeaderBytes, data + kHeaderBytes, size - kHeaderBytes) == 0);
    }
  } else {
    TROUPE_FUZZ_CHECK(!problem->empty());
    if (!frames.empty()) {
      TROUPE_FUZZ_CHECK(again.size() < size);
      TROUPE_FUZZ_CHECK(std::memcmp(again.data() + kHeaderBytes, data + kHeaderBytes, again.size() - kHeaderBytes) ==
                        0);
    }
  }
  return 0;
}

namespace troupe_fuzz {

std::vector<std::vector<std::uint8_t>> seeds() {
  auto bytes = [](const std::vector<std::byte>& b) {
    return std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(b.data()),
                                     reinterpret_cast<const std::uint8_t*>(b.data()) + b.size());
  };
  std::vector<std::vector<std::uint8_t>> out;
  {  // a header alone
    wire::Writer w;
    wire::save(w, md::BatchHeader{});
    out.push_back(bytes(w.take()));
  }
  {  // one frame of each kind the messenger decodes, and a few others
    std::vector<std::byte> b;
    md::append_frame(b, static_cast<std::uint16_t>(Kind::kMail), [](wire::Writer& w) {
      wire::save(w, troupe::messaging::MailRecord{42, std::vector<std::byte>(5, std::byte{7})});
    });
    md::append_frame(b, static_cast<std::uint16_t>(Kind::kBroken),
                     [](wire::Writer& w) { wire::save(w, troupe::messaging::BrokenRecord{"bad task record"}); });
    md::append_frame(b, static_cast<std::uint16_t>(Kind::kTask), [](wire::Writer& w) {
      wire::save(w, std::uint64_t{9});
      wire::save(w, std::uint32_t{0});
    });
    md::append_frame(b, static_cast<std::uint16_t>(Kind::kResult), [](wire::Writer& w) {
      wire::save(w, std::uint64_t{9});
      wire::save(w, std::uint8_t{0});
      wire::save(w, 3.5);
    });
    md::append_frame(b, static_cast<std::uint16_t>(Kind::kCancelQueued), [](wire::Writer&) {});
    out.push_back(bytes(b));
  }
  {  // many small mail frames
    std::vector<std::byte> b;
    for (std::uint64_t k = 0; k < 16; ++k) {
      md::append_frame(b, static_cast<std::uint16_t>(Kind::kMail), [&](wire::Writer& w) {
        wire::save(w, troupe::messaging::MailRecord{k, std::vector<std::byte>(k, std::byte{1})});
      });
    }
    out.push_back(bytes(b));
  }
  return out;
}

}  // namespace troupe_fuzz
