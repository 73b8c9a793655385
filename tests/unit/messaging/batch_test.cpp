// The one batch/frame layout of inter-rank traffic: frames round-trip in order, records are
// written by the wire codec, and every kind of malformed batch is named, never UB.
#include "troupe/messaging/detail/batch.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using troupe::messaging::detail::append_frame;
using troupe::messaging::detail::parse_batch;

namespace {

struct Frame {
  std::uint16_t kind;
  std::vector<std::byte> record;
};

std::pair<std::vector<Frame>, std::optional<std::string>> parse(const std::vector<std::byte>& batch) {
  std::vector<Frame> frames;
  auto problem = parse_batch(batch, [&](std::uint16_t kind, std::span<const std::byte> record) {
    frames.push_back(Frame{kind, std::vector<std::byte>(record.begin(), record.end())});
  });
  return {std::move(frames), std::move(problem)};
}

std::vector<std::byte> three_frames() {
  std::vector<std::byte> batch;
  append_frame(batch, 3, [](troupe::wire::Writer& w) { troupe::wire::save(w, std::uint64_t{42}); });
  append_frame(batch, 4, [](troupe::wire::Writer&) {});  // an empty record
  append_frame(batch, 5, [](troupe::wire::Writer& w) { troupe::wire::save(w, std::string("hello")); });
  return batch;
}

}  // namespace

TEST(Batch, FramesRoundTripInOrder) {
  const auto [frames, problem] = parse(three_frames());
  ASSERT_FALSE(problem) << *problem;
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].kind, 3);
  EXPECT_EQ(troupe::wire::deserialize<std::uint64_t>(frames[0].record), 42u);
  EXPECT_EQ(frames[1].kind, 4);
  EXPECT_TRUE(frames[1].record.empty());
  EXPECT_EQ(frames[2].kind, 5);
  EXPECT_EQ(troupe::wire::deserialize<std::string>(frames[2].record), "hello");
}

TEST(Batch, AFailedEncodeLeavesNoHalfFrame) {
  auto batch = three_frames();
  const auto before = batch;
  EXPECT_THROW(append_frame(batch, 6,
                            [](troupe::wire::Writer& w) {
                              troupe::wire::save(w, std::uint64_t{7});
                              throw std::runtime_error("encode failed");
                            }),
               std::runtime_error);
  EXPECT_EQ(batch, before);
  EXPECT_EQ(parse(batch).first.size(), 3u);
}

TEST(Batch, ShortBatchIsNamed) {
  const auto [frames, problem] = parse(std::vector<std::byte>(5));
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("shorter than its header"), std::string::npos) << *problem;
  EXPECT_TRUE(frames.empty());
}

TEST(Batch, BadMagicAndVersionAreNamed) {
  auto batch = three_frames();
  auto bad = batch;
  bad[0] = std::byte{0x00};
  auto p = parse(bad).second;
  ASSERT_TRUE(p);
  EXPECT_NE(p->find("bad magic"), std::string::npos) << *p;
  bad = batch;
  bad[4] = std::byte{0x09};  // the version's low byte
  p = parse(bad).second;
  ASSERT_TRUE(p);
  EXPECT_NE(p->find("wire version 9"), std::string::npos) << *p;
}

TEST(Batch, CutAndOverlongFramesAreNamedAfterTheGoodOnes) {
  auto batch = three_frames();
  batch.resize(batch.size() - 2);  // the last record loses two bytes
  auto [frames, problem] = parse(batch);
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("frame 2 claims"), std::string::npos) << *problem;
  EXPECT_EQ(frames.size(), 2u) << "the frames before the fault are delivered";

  batch = three_frames();
  batch.push_back(std::byte{1});  // a frame header cut short
  std::tie(frames, problem) = parse(batch);
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("frame 3 is cut short"), std::string::npos) << *problem;
  EXPECT_EQ(frames.size(), 3u);
}
