#include "troupe/messaging/detail/batch.hpp"

#include <cstdio>

namespace troupe::messaging::detail {

std::optional<std::string> parse_batch(std::span<const std::byte> batch,
                                       const std::function<void(std::uint16_t, std::span<const std::byte>)>& visit) {
  wire::Reader in(batch);
  BatchHeader head;
  try {
    wire::load(in, head);
  } catch (const wire::DecodeError&) {
    return "a batch of " + std::to_string(batch.size()) + " bytes is shorter than its header";
  }
  if (head.magic != kMagic) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "bad magic 0x%08x (expected 0x%08x); is every rank running the same troupe?",
                  head.magic, kMagic);
    return std::string(buf);
  }
  if (head.version != kVersion) {
    return "wire version " + std::to_string(head.version) + ", this rank speaks " + std::to_string(kVersion);
  }
  for (std::size_t i = 0; in.remaining() != 0; ++i) {
    FrameHeader f;
    const std::size_t at = in.offset();
    try {
      wire::load(in, f);
    } catch (const wire::DecodeError&) {
      return "frame " + std::to_string(i) + " is cut short at byte " + std::to_string(at);
    }
    if (f.length > in.remaining()) {
      return "frame " + std::to_string(i) + " claims " + std::to_string(f.length) + " bytes, " +
             std::to_string(in.remaining()) + " remain";
    }
    visit(f.kind, in.read_view(static_cast<std::size_t>(f.length)));
  }
  return std::nullopt;
}

}  // namespace troupe::messaging::detail
