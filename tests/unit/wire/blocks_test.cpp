// Blocks of the wire format (docs/wire.md, "Large payloads"): a block-enabled Writer records
// large contiguous parts by reference, a Reader takes them from staged buffers or records
// where they go (deferred), and DeferredValue receives them in place or falls back.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "troupe/wire/serialize.hpp"

namespace wire = troupe::wire;

namespace {

constexpr std::size_t kBig = wire::kBlockMin / sizeof(double) + 3;

std::vector<double> ramp(std::size_t n, double seed) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = seed + static_cast<double>(i);
  return v;
}

// What the messenger does for a staged record: the blocks' bytes in buffers of their own.
std::shared_ptr<wire::BlockSet> staged_from(const wire::Writer& w) {
  auto set = std::make_shared<wire::BlockSet>();
  for (const auto& b : const_cast<wire::Writer&>(w).blocks()) {
    set->sizes.push_back(b.size);
    set->staged.emplace_back(new std::byte[b.size]);
    std::memcpy(set->staged.back().get(), b.data, b.size);
  }
  return set;
}

// What the engine does in deferred mode: copies each block where decoding put it.
void deliver(const wire::Writer& w, const wire::BlockSet& set) {
  auto& blocks = const_cast<wire::Writer&>(w).blocks();
  ASSERT_EQ(blocks.size(), set.dest.size());
  for (std::size_t i = 0; i < blocks.size(); ++i) std::memcpy(set.dest[i].data(), blocks[i].data, blocks[i].size);
}

// Copied, never moved (no move constructor): a map of it relocates parts while decoding.
struct Copier {
  std::vector<double> data;
  Copier() = default;
  explicit Copier(std::vector<double> d) : data(std::move(d)) {}
  Copier(const Copier&) = default;
  Copier& operator=(const Copier&) = default;
  ~Copier() = default;
  TROUPE_FIELDS(data)
  bool operator==(const Copier&) const = default;
};

template <class T>
T round_trip_deferred(const T& value, std::size_t expect_blocks, bool in_place = true) {
  wire::Writer w;
  w.enable_blocks();
  wire::save(w, std::uint64_t{42});  // a record's head before the value
  wire::save(w, value);
  EXPECT_EQ(w.blocks().size(), expect_blocks);
  auto set = std::make_shared<wire::BlockSet>();
  for (const auto& b : w.blocks()) set->sizes.push_back(b.size);
  set->deferred = true;
  wire::Reader r(w.buffer());
  r.attach_blocks(set);
  EXPECT_EQ(r.read<std::uint64_t>(), 42u);
  wire::DeferredValue<T> pending;
  pending.begin(r);
  EXPECT_EQ(set->staged.empty(), in_place) << "received in place, or staged after a copy";
  deliver(w, *set);
  return pending.finish(set);
}

}  // namespace

TEST(WireBlocks, SmallPartsAreCopiedLargeOnesRecorded) {
  const std::vector<double> big = ramp(kBig, 1);
  const std::string text(wire::kBlockMin, 'x');
  const std::vector<double> small = ramp(10, 2);
  wire::Writer w;
  w.enable_blocks();
  wire::save(w, big);
  wire::save(w, small);
  wire::save(w, text);
  ASSERT_EQ(w.blocks().size(), 2u);
  EXPECT_EQ(w.blocks()[0].data, reinterpret_cast<const std::byte*>(big.data()));
  EXPECT_EQ(w.blocks()[0].size, kBig * sizeof(double));
  EXPECT_EQ(w.blocks()[1].size, wire::kBlockMin);
  EXPECT_LT(w.size(), 200u) << "only the small parts are inline";
  // Without blocks the same value is one buffer, as before.
  EXPECT_EQ(wire::serialize(big).size(), 8 + kBig * sizeof(double));
}

TEST(WireBlocks, StagedReaderDecodesFromTheBlocks) {
  const auto value = std::make_pair(ramp(kBig, 5), std::string(wire::kBlockMin + 1, 'q'));
  wire::Writer w;
  w.enable_blocks();
  wire::save(w, value);
  wire::Reader r(w.buffer());
  r.attach_blocks(staged_from(w));
  std::remove_cvref_t<decltype(value)> back;
  wire::load(r, back);
  EXPECT_EQ(back, value);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(WireBlocks, DeferredValueReceivesInPlace) {
  EXPECT_EQ(round_trip_deferred(ramp(kBig, 9), 1), ramp(kBig, 9));
  EXPECT_EQ(round_trip_deferred(std::string(wire::kBlockMin, 'z'), 1), std::string(wire::kBlockMin, 'z'));
  std::vector<std::vector<double>> nested{ramp(kBig, 1), ramp(3, 2), ramp(kBig * 2, 3)};
  EXPECT_EQ(round_trip_deferred(nested, 2), nested);
  std::unordered_map<int, std::vector<double>> hashed;
  for (int i = 0; i < 9; ++i) hashed[i * 31] = ramp(kBig, i);
  EXPECT_EQ(round_trip_deferred(hashed, 9), hashed);
}

TEST(WireBlocks, DeferredValueFallsBackWhenDecodingCopies) {
  std::map<int, Copier> copied;
  for (int i = 0; i < 4; ++i) copied.emplace(i, Copier(ramp(kBig, i * 10)));
  EXPECT_EQ(round_trip_deferred(copied, 4, false), copied);
}

TEST(WireBlocks, MismatchedBlocksAreDecodeErrors) {
  wire::Writer w;
  w.enable_blocks();
  const auto value = ramp(kBig, 1);  // a block is recorded by reference: keep it alive
  wire::save(w, value);
  auto set = staged_from(w);
  set->sizes[0] += 8;  // announced otherwise
  wire::Reader r(w.buffer());
  r.attach_blocks(set);
  std::vector<double> back;
  EXPECT_THROW(wire::load(r, back), wire::DecodeError);
  // No blocks announced at all.
  wire::Reader r2(w.buffer());
  r2.attach_blocks(std::make_shared<wire::BlockSet>());
  EXPECT_THROW(wire::load(r2, back), wire::DecodeError);
}

TEST(WireBlocks, SaveKeptKeepsARvalueAlive) {
  wire::Writer w;
  w.enable_blocks();
  const std::byte* where = nullptr;
  {
    auto v = ramp(kBig, 4);
    where = reinterpret_cast<const std::byte*>(v.data());
    wire::save_kept(w, std::move(v));
  }
  ASSERT_EQ(w.blocks().size(), 1u);
  EXPECT_EQ(w.blocks()[0].data, where) << "moved, not copied";
  auto keep = w.take_keep();
  ASSERT_EQ(keep.size(), 1u);
  const auto& held = *static_cast<const std::vector<double>*>(keep[0].get());
  EXPECT_EQ(held, ramp(kBig, 4));
}
