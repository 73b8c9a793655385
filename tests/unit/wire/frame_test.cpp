// Frame headers and batches: round trips, and each kind of corruption (magic, version, type,
// length, truncation, nested batch) gives a DecodeError that says what, where and from whom.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "troupe/wire/frame.hpp"
#include "wire_test_util.hpp"

namespace wire = troupe::wire;
using wire::MessageType;

namespace {

std::string error_of(const std::vector<std::byte>& message, int rank) {
  try {
    (void)wire::decode_header(message, rank);
  } catch (const wire::DecodeError& e) {
    return e.what();
  }
  return "";
}

std::vector<std::byte> frame_with(const wire::FrameHeader& h, std::size_t payload_bytes) {
  const auto head = wire::encode_header(h);
  std::vector<std::byte> out(head.size() + payload_bytes, std::byte{0x5a});
  std::memcpy(out.data(), head.data(), head.size());
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(WireFrame, HeaderLayoutIsFixed) {
  wire::FrameHeader h;
  h.type = MessageType::Result;
  h.flags = 0x01020304;
  h.tag = 0xa0b0c0d0;
  h.payload_size = 0x1122334455667788ull;
  const auto b = wire::encode_header(h);
  static_assert(wire::kFrameHeaderSize == 24);
  EXPECT_EQ(std::to_integer<char>(b[0]), 'T');
  EXPECT_EQ(std::to_integer<char>(b[1]), 'R');
  EXPECT_EQ(std::to_integer<char>(b[2]), 'P');
  EXPECT_EQ(std::to_integer<char>(b[3]), 'E');
  EXPECT_EQ(std::to_integer<int>(b[4]), wire::kWireVersion);
  EXPECT_EQ(std::to_integer<int>(b[6]), 2);
  EXPECT_EQ(std::to_integer<int>(b[8]), 0x04);
  EXPECT_EQ(std::to_integer<int>(b[12]), 0xd0);
  EXPECT_EQ(std::to_integer<int>(b[16]), 0x88);
  EXPECT_EQ(std::to_integer<int>(b[23]), 0x11);
}

TEST(WireFrame, HeaderRoundTrip) {
  for (std::uint16_t t = 1; t <= wire::kMaxMessageType; ++t) {
    wire::FrameHeader h;
    h.type = static_cast<MessageType>(t);
    h.flags = 0xdeadbeef;
    h.tag = t * 1000u;
    h.payload_size = t * 3u;
    const auto message = frame_with(h, h.payload_size);
    EXPECT_EQ(wire::decode_header(message, 0), h);
    const auto frame = wire::decode_frame(message, 0);
    EXPECT_EQ(frame.header, h);
    EXPECT_EQ(frame.payload.size(), h.payload_size);
    EXPECT_EQ(frame.payload.data(), message.data() + wire::kFrameHeaderSize);
    EXPECT_NE(wire::to_string(h.type), "unknown");
  }
}

TEST(WireFrame, MakeFrameCarriesAPayload) {
  const std::vector<std::string> words{"to", "be", "or"};
  const auto message = wire::make_frame(MessageType::Task, words, 7, 42);
  const auto frame = wire::decode_frame(message, 1);
  EXPECT_EQ(frame.header.type, MessageType::Task);
  EXPECT_EQ(frame.header.flags, 7u);
  EXPECT_EQ(frame.header.tag, 42u);
  EXPECT_EQ(wire::deserialize<std::vector<std::string>>(frame.payload), words);

  wire::Writer w;
  w.write(std::uint8_t{9});  // frames need not start at offset 0
  const auto at = wire::begin_frame(w, MessageType::Result, 0, 5);
  w.write(3.5);
  wire::end_frame(w, at);
  const auto bytes = w.take();
  const auto f = wire::decode_frame(std::span(bytes).subspan(1), 2);
  EXPECT_EQ(f.header.payload_size, sizeof(double));
  EXPECT_EQ(wire::deserialize<double>(f.payload), 3.5);
  EXPECT_THROW(wire::end_frame(w, 100), troupe::ValueError);
}

TEST(WireFrame, BadMagic) {
  auto message = wire::make_frame(MessageType::Task, 1);
  message[0] = std::byte{'X'};
  const std::string msg = error_of(message, 3);
  EXPECT_TRUE(contains(msg, "bad magic 0x45505258")) << msg;
  EXPECT_TRUE(contains(msg, "\"XRPE\"")) << msg;
  EXPECT_TRUE(contains(msg, "from rank 3")) << msg;
  EXPECT_TRUE(contains(msg, "expected 0x45505254")) << msg;
  EXPECT_TRUE(contains(msg, "same troupe version")) << msg;
  EXPECT_TRUE(contains(error_of(message, -1), "from an unknown rank"));
}

TEST(WireFrame, BadVersion) {
  wire::FrameHeader h;
  h.version = wire::kWireVersion + 1;
  const std::string msg = error_of(frame_with(h, 0), 2);
  EXPECT_TRUE(contains(msg, "from rank 2 has wire version 2, this rank speaks version 1")) << msg;
  EXPECT_TRUE(contains(msg, "same troupe version")) << msg;
}

TEST(WireFrame, BadType) {
  for (std::uint16_t t : {std::uint16_t{0}, std::uint16_t{wire::kMaxMessageType + 1}, std::uint16_t{0xffff}}) {
    wire::FrameHeader h;
    h.type = static_cast<MessageType>(t);
    const std::string msg = error_of(frame_with(h, 0), 1);
    EXPECT_TRUE(contains(msg, "unknown message type " + std::to_string(t))) << msg;
    EXPECT_TRUE(contains(msg, "from rank 1")) << msg;
  }
}

TEST(WireFrame, BadLength) {
  wire::FrameHeader h;
  h.type = MessageType::Result;
  h.payload_size = 10;
  const std::string longer = error_of(frame_with(h, 4), 5);
  EXPECT_TRUE(contains(longer, "Result frame from rank 5 announces a payload of 10 bytes but 4 bytes follow")) << longer;
  EXPECT_NE(error_of(frame_with(h, 11), 5), "");  // extra bytes are an error too
  h.payload_size = ~std::uint64_t{0};
  EXPECT_NE(error_of(frame_with(h, 4), 5), "");
  EXPECT_NO_THROW((void)wire::peek_header(frame_with(wire::FrameHeader{}, 11), 5));  // peek allows more
}

TEST(WireFrame, TruncatedHeader) {
  const auto message = wire::make_frame(MessageType::Credit, std::uint32_t{4});
  for (std::size_t n = 0; n < message.size(); ++n) {
    const std::vector<std::byte> prefix(message.begin(), message.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW((void)wire::decode_frame(prefix, 0), wire::DecodeError) << n;
  }
  const std::string msg = error_of(std::vector<std::byte>(10), 4);
  EXPECT_TRUE(contains(msg, "message of 10 bytes from rank 4 is shorter than the 24-byte frame header")) << msg;
}

TEST(WireFrame, BatchRoundTrip) {
  wire::BatchWriter batch(0, 99);
  EXPECT_TRUE(batch.empty());
  batch.add_value(MessageType::Result, std::string("first"), 1, 10);
  const std::vector<std::byte> raw{std::byte{1}, std::byte{2}};
  batch.add(MessageType::Credit, raw, 2, 11);
  batch.add(MessageType::Cancel, {}, 3, 12);  // empty payload
  const auto at = batch.begin(MessageType::Task, 4, 13);
  batch.writer().write(std::vector<int>{1, 2, 3});
  batch.end(at);
  EXPECT_EQ(batch.count(), 4u);
  const auto message = batch.finish();
  EXPECT_TRUE(batch.empty());  // ready for the next batch

  const auto outer = wire::decode_frame(message, 6);
  EXPECT_EQ(outer.header.type, MessageType::Batch);
  EXPECT_EQ(outer.header.tag, 99u);
  const wire::BatchView view(outer, 6);
  ASSERT_EQ(view.size(), 4u);
  std::vector<wire::Frame> frames(view.begin(), view.end());
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].header.type, MessageType::Result);
  EXPECT_EQ(wire::deserialize<std::string>(frames[0].payload), "first");
  EXPECT_EQ(frames[1].header.tag, 11u);
  EXPECT_EQ(frames[1].payload.size(), 2u);
  EXPECT_EQ(frames[2].payload.size(), 0u);
  EXPECT_EQ(frames[3].header.flags, 4u);
  EXPECT_EQ(wire::deserialize<std::vector<int>>(frames[3].payload), (std::vector<int>{1, 2, 3}));

  const auto empty = wire::decode_frame(wire::BatchWriter().finish(), 0);
  EXPECT_TRUE(wire::BatchView(empty).empty());
}

TEST(WireFrame, BatchMisuse) {
  wire::BatchWriter batch;
  EXPECT_THROW(batch.begin(MessageType::Batch), troupe::InvalidStateError);
  const auto at = batch.begin(MessageType::Task);
  EXPECT_THROW(batch.add(MessageType::Task, {}), troupe::InvalidStateError);
  EXPECT_THROW((void)batch.finish(), troupe::InvalidStateError);
  batch.end(at);
  EXPECT_THROW(batch.end(at), troupe::InvalidStateError);
  EXPECT_NO_THROW((void)batch.finish());

  EXPECT_THROW(wire::BatchView(wire::decode_frame(wire::make_frame(MessageType::Task, 1))), wire::DecodeError);
}

TEST(WireFrame, CorruptBatch) {
  wire::BatchWriter batch;
  batch.add_value(MessageType::Result, 1);
  batch.add_value(MessageType::Result, std::string("second"));
  const auto message = batch.finish();
  const auto payload = wire::decode_frame(message, 3).payload;
  const std::size_t second = wire::kFrameHeaderSize + sizeof(int);

  // Inner length larger than what remains.
  std::vector<std::byte> bad(payload.begin(), payload.end());
  bad[second + 16] = std::byte{0xff};
  std::string msg;
  try {
    wire::BatchView view(bad, 3);
  } catch (const wire::DecodeError& e) {
    msg = e.what();
  }
  EXPECT_TRUE(contains(msg, "frame 1 of a batch, at offset " + std::to_string(second))) << msg;
  EXPECT_TRUE(contains(msg, "from rank 3")) << msg;

  // Bad inner magic.
  bad.assign(payload.begin(), payload.end());
  bad[second] = std::byte{0};
  EXPECT_THROW(wire::BatchView(bad, 3), wire::DecodeError);

  // Nested batch.
  wire::FrameHeader nested;
  nested.type = MessageType::Batch;
  const auto nested_bytes = wire::encode_header(nested);
  try {
    wire::BatchView view(nested_bytes, 3);
    ADD_FAILURE() << "nested batch accepted";
  } catch (const wire::DecodeError& e) {
    EXPECT_TRUE(contains(e.what(), "nested Batch")) << e.what();
  }

  // Every truncation of the payload (a frame cut anywhere) is rejected.
  for (std::size_t n = 1; n < payload.size(); ++n) {
    if (n == second) continue;  // a cut between frames is a valid shorter batch
    const std::vector<std::byte> prefix(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(wire::BatchView(prefix, 0), wire::DecodeError) << n;
  }
}
