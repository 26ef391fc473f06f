// Unit tests of the ring layout's edges: the pad at the ring's end, an exact fit, and the checked readers
// (validate_segment, inspect_record) on hand-crafted buffers. Single process; see test_util.hpp for the fixture.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "groups.hpp"
#include "layout.hpp"
#include "libmq/libmq.hpp"
#include "log.hpp"
#include "segment.hpp"
#include "test_util.hpp"

namespace {

using mq::Offset;
using mqtest::bytes;
using mqtest::contains;
using mqtest::kNow;
using mqtest::text;
namespace d = mq::detail;

using UnitLayout = mqtest::TopicTest;

// A payload that names its offset, so a record handed to the wrong reader or overwritten shows.
std::string payload_for(Offset offset, std::size_t size) {
  std::string s = "#" + std::to_string(offset) + ":";
  const std::size_t prefix = s.size();
  s.resize(size);
  for (std::size_t i = prefix; i < size; ++i) s[i] = static_cast<char>('a' + (offset + i) % 26);
  return s;
}

template <class T>
void put(std::vector<std::byte>& buf, std::size_t at, T value) {
  std::memcpy(buf.data() + at, &value, sizeof value);
}

// ---------------------------------------------------------------------------------------------------------------
// The ring's end

// 1000-byte payloads make 1088-byte records (header + payload, rounded up to whole 64-byte lines): 60 fill 65280
// bytes of a 64 KiB ring and leave 256.
constexpr std::size_t kWrapPayload = 1000;
constexpr std::size_t kWrapRecord = 1088;
constexpr std::size_t kFit = 60;
constexpr std::size_t kLeft = 256;
static_assert(d::record_bytes(0, 0, kWrapPayload) == kWrapRecord);
static_assert(kFit * kWrapRecord + kLeft == mq::kMinCapacity);

TEST_F(UnitLayout, ClaimAtRingEndPads) {
  auto topic = mq::Topic::create("pad", {.capacity = mq::kMinCapacity}).value();
  const auto& seg = *topic.segment();
  mq::Consumer consumer(topic, {.group = "g", .start = mq::Start::earliest, .auto_ack = false});
  mq::Producer producer(topic);
  for (Offset i = 0; i < kFit; ++i) {
    auto r = producer.publish(bytes(payload_for(i, kWrapPayload)));
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(*r, i);
  }
  for (Offset i = 0; i < kFit; ++i) {
    auto m = consumer.poll(std::chrono::nanoseconds(0));
    ASSERT_TRUE(m) << m.error().what();
    ASSERT_EQ(m->offset(), i);
    ASSERT_EQ(text(m->payload()), payload_for(i, kWrapPayload));
    ASSERT_TRUE(consumer.ack(std::move(*m)));
  }
  EXPECT_EQ(topic.info().bytes_written, kFit * kWrapRecord);

  // The next record does not fit in the last 256 bytes: the claim itself lands at the ring's start.
  auto claim = producer.claim(kWrapPayload);
  ASSERT_TRUE(claim) << claim.error().what();
  EXPECT_EQ(claim->offset(), kFit) << "the pad costs no offset";
  EXPECT_EQ(claim->bytes().data(), seg.ring() + d::kRecordHeaderBytes) << "the payload starts right after the header";
  EXPECT_EQ(claim->bytes().size(), kWrapPayload);
  const std::string last = payload_for(kFit, kWrapPayload);
  std::memcpy(claim->bytes().data(), last.data(), last.size());
  auto committed = std::move(*claim).commit();
  ASSERT_TRUE(committed) << committed.error().what();
  EXPECT_EQ(*committed, kFit);
  EXPECT_EQ(topic.info().bytes_written, kFit * kWrapRecord + kLeft + kWrapRecord);

  auto pad = d::read_record(seg, kFit * kWrapRecord);
  ASSERT_TRUE(pad) << pad.error().what();
  EXPECT_EQ(pad->state, d::kPad);
  EXPECT_EQ(pad->length, kLeft);
  auto wrapped = d::read_record(seg, mq::kMinCapacity);
  ASSERT_TRUE(wrapped) << wrapped.error().what();
  EXPECT_EQ(wrapped->state, d::kCommitted);
  EXPECT_EQ(wrapped->offset, kFit);

  auto m = consumer.poll(std::chrono::nanoseconds(0));
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->offset(), kFit);
  EXPECT_EQ(m->payload().data(), seg.ring() + d::kRecordHeaderBytes) << "one contiguous span at the ring's start";
  EXPECT_EQ(text(m->payload()), last);
  auto none = consumer.poll(std::chrono::nanoseconds(0));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), mq::Errc::timed_out);
}

TEST_F(UnitLayout, PublishAtRingEndPadsAndKeepsOffsetsGapless) {
  // The same edge through publish() with a key and headers, over several laps.
  auto topic = mq::Topic::create("padlaps", {.capacity = mq::kMinCapacity}).value();
  mq::Consumer consumer(topic, {.group = "g", .start = mq::Start::earliest, .auto_ack = false});
  mq::Producer producer(topic);
  const std::string key = "key-7";
  const mq::Header headers[] = {{"h", bytes("v")}};
  Offset expected = 0;
  for (int round = 0; round < 300; ++round) {
    const std::string payload = payload_for(static_cast<Offset>(round), 700 + static_cast<std::size_t>(round) % 13);
    auto r = producer.publish(mq::Record{bytes(payload), bytes(key), headers, std::nullopt});
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(*r, static_cast<Offset>(round));
    auto m = consumer.poll(std::chrono::nanoseconds(0));
    ASSERT_TRUE(m) << m.error().what();
    ASSERT_EQ(m->offset(), expected++);
    ASSERT_EQ(text(m->payload()), payload);
    ASSERT_TRUE(m->key());
    ASSERT_EQ(text(*m->key()), key);
    ASSERT_TRUE(consumer.ack(std::move(*m)));
  }
  EXPECT_GT(topic.info().bytes_written, 3 * mq::kMinCapacity) << "the test should have lapped the ring";
}

TEST_F(UnitLayout, ExactFitAtRingEndNeedsNoPad) {
  // 984-byte payloads make 1024-byte records: 64 of them fill the 64 KiB ring exactly.
  constexpr std::size_t kPayload = 984;
  static_assert(d::record_bytes(0, 0, kPayload) == 1024);
  auto topic = mq::Topic::create("exact", {.capacity = mq::kMinCapacity}).value();
  const auto& seg = *topic.segment();
  mq::Consumer consumer(topic, {.group = "g", .start = mq::Start::earliest, .auto_ack = false});
  mq::Producer producer(topic);
  for (Offset i = 0; i < 64; ++i) {
    auto r = producer.publish(bytes(payload_for(i, kPayload)));
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(*r, i);
    auto m = consumer.poll(std::chrono::nanoseconds(0));
    ASSERT_TRUE(m) << m.error().what();
    ASSERT_EQ(m->offset(), i);
    ASSERT_TRUE(consumer.ack(std::move(*m)));
  }
  EXPECT_EQ(topic.info().bytes_written, mq::kMinCapacity);
  auto r = producer.publish(bytes(payload_for(64, kPayload)));
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(*r, 64u);
  EXPECT_EQ(topic.info().bytes_written, mq::kMinCapacity + 1024) << "no pad in front of the 65th record";
  auto v = d::read_record(seg, mq::kMinCapacity);
  ASSERT_TRUE(v) << v.error().what();
  EXPECT_EQ(v->state, d::kCommitted);
  EXPECT_EQ(v->offset, 64u);
  auto m = consumer.poll(std::chrono::nanoseconds(0));
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->offset(), 64u);
  EXPECT_EQ(m->payload().data(), seg.ring() + d::kRecordHeaderBytes);
  EXPECT_EQ(text(m->payload()), payload_for(64, kPayload));
}

// ---------------------------------------------------------------------------------------------------------------
// validate_segment on crafted images

class UnitValidateSegment : public mqtest::TopicTest {
 protected:
  void SetUp() override {
    mqtest::TopicTest::SetUp();
    auto topic = mq::Topic::create("image", {.capacity = mq::kMinCapacity}).value();
    const auto b = topic.segment()->bytes();
    image_.assign(b.begin(), b.end());
  }
  std::span<const std::byte> image() const { return image_; }
  mq::Result<void> validate() const { return d::validate_segment(image(), "image"); }
  std::vector<std::byte> image_;
};

TEST_F(UnitValidateSegment, FreshImageIsValid) {
  auto r = validate();
  EXPECT_TRUE(r) << r.error().what();
}

TEST_F(UnitValidateSegment, ImageSmallerThanTheHeaderIsBadSegment) {
  auto r = d::validate_segment(image().first(d::kRingOffset - 8), "image");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), mq::Errc::bad_segment);
  EXPECT_TRUE(contains(r.error().message(), "too small")) << r.error().what();
  auto empty = d::validate_segment({}, "image");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), mq::Errc::bad_segment);
}

TEST_F(UnitValidateSegment, BadMagicIsBadSegment) {
  put<std::uint64_t>(image_, offsetof(d::SegmentHeader, magic), 0x1234);
  auto r = validate();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), mq::Errc::bad_segment);
  EXPECT_TRUE(contains(r.error().message(), "magic")) << r.error().what();
}

TEST_F(UnitValidateSegment, OtherVersionIsVersionMismatchNamingBoth) {
  put<std::uint32_t>(image_, offsetof(d::SegmentHeader, version), d::kLayoutVersion + 1);
  auto r = validate();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), mq::Errc::version_mismatch);
  EXPECT_TRUE(contains(r.error().message(), "version " + std::to_string(d::kLayoutVersion + 1))) << r.error().what();
  EXPECT_TRUE(contains(r.error().message(), "version " + std::to_string(d::kLayoutVersion))) << r.error().what();
}

TEST_F(UnitValidateSegment, EachCorruptedHeaderFieldIsBadSegment) {
  struct Case {
    const char* what;
    std::size_t at;
    std::uint64_t value;
    int width;  // bytes
  };
  const Case cases[] = {
      {"header_bytes", offsetof(d::SegmentHeader, header_bytes), 4096, 4},
      {"ring_offset", offsetof(d::SegmentHeader, ring_offset), 8192, 8},
      {"producer_slots", offsetof(d::SegmentHeader, producer_slots), 65, 4},
      {"group_slots", offsetof(d::SegmentHeader, group_slots), 1000, 4},
      {"member_slots", offsetof(d::SegmentHeader, member_slots), 0, 4},
      {"held_slots", offsetof(d::SegmentHeader, held_slots), 33, 4},
      {"redeliver_slots", offsetof(d::SegmentHeader, redeliver_slots), 1, 4},
      {"index_slots", offsetof(d::SegmentHeader, index_slots), 128, 4},
      {"capacity not a power of two", offsetof(d::SegmentHeader, capacity), mq::kMinCapacity + 8, 8},
      {"capacity too small", offsetof(d::SegmentHeader, capacity), 4096, 8},
      {"capacity too big", offsetof(d::SegmentHeader, capacity), std::uint64_t{1} << 50, 8},
      {"capacity not the mapping's", offsetof(d::SegmentHeader, capacity), 2 * mq::kMinCapacity, 8},
      {"total_bytes", offsetof(d::SegmentHeader, total_bytes), d::kRingOffset + 2 * mq::kMinCapacity, 8},
      {"max_message zero", offsetof(d::SegmentHeader, max_message), 0, 8},
      {"max_message over capacity/4", offsetof(d::SegmentHeader, max_message), mq::kMinCapacity / 4 + 1, 8},
      {"policy", offsetof(d::SegmentHeader, policy), 2, 4},
      {"storage", offsetof(d::SegmentHeader, storage), 9, 4},
      {"name_len zero", offsetof(d::SegmentHeader, name_len), 0, 4},
      {"name_len too long", offsetof(d::SegmentHeader, name_len), d::kNameBytes, 4},
      {"group state", d::kGroupTableOffset + 3 * d::kGroupBlockBytes + offsetof(d::GroupBlock, state), 3, 4},
  };
  const std::vector<std::byte> pristine = image_;
  for (const auto& c : cases) {
    image_ = pristine;
    if (c.width == 4) put<std::uint32_t>(image_, c.at, static_cast<std::uint32_t>(c.value));
    else put<std::uint64_t>(image_, c.at, c.value);
    auto r = validate();
    ASSERT_FALSE(r) << c.what;
    EXPECT_EQ(r.error().code(), mq::Errc::bad_segment) << c.what << ": " << r.error().what();
    EXPECT_TRUE(contains(r.error().message(), "topic=image")) << r.error().what();
  }
}

TEST_F(UnitValidateSegment, ActiveGroupWithBadNameLengthIsBadSegment) {
  const std::size_t block = d::kGroupTableOffset + 5 * d::kGroupBlockBytes;
  put<std::uint32_t>(image_, block + offsetof(d::GroupBlock, state), d::kGroupActive);
  put<std::uint32_t>(image_, block + offsetof(d::GroupBlock, name_len), 0);
  auto r = validate();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), mq::Errc::bad_segment);
  put<std::uint32_t>(image_, block + offsetof(d::GroupBlock, name_len), 3);
  EXPECT_TRUE(validate());
}

TEST_F(UnitValidateSegment, ImageWithTrailingBytesIsBadSegment) {
  image_.resize(image_.size() + d::kPageSize);
  auto r = validate();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), mq::Errc::bad_segment);
}

// ---------------------------------------------------------------------------------------------------------------
// inspect_record on a crafted ring

class UnitInspectRecord : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kCapacity = mq::kMinCapacity;
  static constexpr std::uint64_t kMax = kCapacity / 4;
  std::vector<std::byte> ring_ = std::vector<std::byte>(kCapacity);

  void header(std::uint64_t index, Offset offset, std::uint32_t length, std::uint32_t payload_len,
              std::uint32_t key_len, std::uint32_t headers_len) {
    put<std::uint64_t>(ring_, index + 8, offset);
    put<std::int64_t>(ring_, index + 16, 42);
    put<std::uint32_t>(ring_, index + 24, length);
    put<std::uint32_t>(ring_, index + 28, payload_len);
    put<std::uint32_t>(ring_, index + 32, key_len);
    put<std::uint32_t>(ring_, index + 36, headers_len);
  }
  mq::Result<d::RecordView> inspect(std::uint64_t position, std::uint64_t state) const {
    return d::inspect_record(ring_, position, position | state, kMax);
  }
  void expect_bad(std::uint64_t position, std::uint64_t state, std::string_view why) const {
    auto r = inspect(position, state);
    ASSERT_FALSE(r) << why;
    EXPECT_EQ(r.error().code(), mq::Errc::bad_segment) << why;
    EXPECT_TRUE(contains(r.error().message(), std::to_string(position))) << r.error().what();
  }
};

TEST_F(UnitInspectRecord, WellFormedRecordIsReadBack) {
  // key "k" (1) + one header {"h","v"} (8 + 1 + 1 = 10) + payload 5: align8(40 + 11) + 5 = 61, in one 64-byte line.
  header(128, 9, 64, 5, 1, 10);
  put<std::uint32_t>(ring_, 128 + 41, 1);
  put<std::uint32_t>(ring_, 128 + 45, 1);
  const std::uint64_t position = 3 * kCapacity + 128;  // a later lap: the index is position & mask
  auto r = inspect(position, d::kCommitted);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->state, d::kCommitted);
  EXPECT_EQ(r->length, 64u);
  EXPECT_EQ(r->offset, 9u);
  EXPECT_EQ(r->timestamp_ns, 42);
  EXPECT_EQ(r->payload_len, 5u);
  EXPECT_EQ(r->key_len, 1u);
  EXPECT_EQ(r->headers_len, 10u);
}

TEST_F(UnitInspectRecord, NullKeyCountsAsNoBytes) {
  header(0, 0, 64, 8, d::kNullKey, 0);
  auto r = inspect(0, d::kCommitted);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->key_len, d::kNullKey);
}

TEST_F(UnitInspectRecord, SeqOfAnotherLapIsEmptyOrOverwritten) {
  header(64, 0, 48, 8, d::kNullKey, 0);
  const std::uint64_t position = kCapacity + 64;
  auto behind = d::inspect_record(ring_, position, 64 | d::kCommitted, kMax);
  ASSERT_TRUE(behind);
  EXPECT_EQ(behind->state, d::kEmpty) << "an older lap's record: not written yet in this lap";
  auto ahead = d::inspect_record(ring_, position, (position + kCapacity) | d::kCommitted, kMax);
  ASSERT_TRUE(ahead);
  EXPECT_EQ(ahead->state, d::kNone) << "a later lap wrote here";
  auto never = d::inspect_record(ring_, 0, 0, kMax);
  ASSERT_TRUE(never);
  EXPECT_EQ(never->state, d::kEmpty);
}

TEST_F(UnitInspectRecord, PadRunsToTheRingsEnd) {
  auto r = inspect(kCapacity - 536, d::kPad);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->state, d::kPad);
  EXPECT_EQ(r->length, 536u);
  expect_bad(2 * kCapacity, d::kPad, "a pad at the ring's start would be a whole lap");
}

TEST_F(UnitInspectRecord, MisalignedPositionIsBadSegment) { expect_bad(12, d::kCommitted, "position % 8 != 0"); }

TEST_F(UnitInspectRecord, UnknownStateIsBadSegment) {
  header(0, 0, 48, 8, d::kNullKey, 0);
  for (std::uint64_t state : {5u, 6u, 7u}) expect_bad(0, state, "state " + std::to_string(state));
}

TEST_F(UnitInspectRecord, HeaderCrossingTheRingsEndIsBadSegment) {
  expect_bad(kCapacity - 32, d::kCommitted, "a 40-byte header 32 bytes before the end");
  expect_bad(kCapacity - 8, d::kSkip, "skip records are checked too");
}

TEST_F(UnitInspectRecord, LengthThatDoesNotFitIsBadSegment) {
  header(0, 0, 0x7ffffff8u, 8, d::kNullKey, 0);
  expect_bad(0, d::kCommitted, "length past the ring");
  header(kCapacity - 64, 0, 72, 8, d::kNullKey, 0);
  expect_bad(kCapacity - 64, d::kCommitted, "length runs 8 past the end");
  expect_bad(kCapacity - 64, d::kClaimed, "claimed records' length is checked too");
  header(0, 0, 32, 0, d::kNullKey, 0);
  expect_bad(0, d::kCommitted, "length below the header size");
  header(0, 0, 44, 4, d::kNullKey, 0);
  expect_bad(0, d::kCommitted, "length not a multiple of 8");
}

TEST_F(UnitInspectRecord, PartsLargerThanMaxMessageAreBadSegment) {
  header(0, 0, 48, static_cast<std::uint32_t>(kMax) + 1, d::kNullKey, 0);
  expect_bad(0, d::kCommitted, "payload over max_message");
  header(0, 0, 48, 0, 0xfffffff0u, 0);
  expect_bad(0, d::kCommitted, "a huge (non-null) key");
  header(0, 0, 48, 0, d::kNullKey, 0xffffff00u);
  expect_bad(0, d::kCommitted, "huge headers");
}

TEST_F(UnitInspectRecord, LengthNotMatchingItsPartsIsBadSegment) {
  header(0, 0, 48, 100, d::kNullKey, 0);  // 100 bytes of payload need 40 + 100 in whole lines: 192
  expect_bad(0, d::kCommitted, "length too short for its payload");
  header(0, 0, 256, 8, d::kNullKey, 0);
  expect_bad(0, d::kCommitted, "length longer than its parts");
}

TEST_F(UnitInspectRecord, MalformedHeadersAreBadSegment) {
  // headers_len 16: one entry whose name claims 100 bytes.
  header(0, 0, 56, 0, d::kNullKey, 16);
  put<std::uint32_t>(ring_, 40, 100);
  put<std::uint32_t>(ring_, 44, 0);
  expect_bad(0, d::kCommitted, "header name past the headers");
  // headers_len 12: a well-formed empty entry (8 bytes) then 4 stray bytes, too few for another entry.
  header(0, 0, 56, 0, d::kNullKey, 12);
  put<std::uint32_t>(ring_, 40, 0);
  put<std::uint32_t>(ring_, 44, 0);
  expect_bad(0, d::kCommitted, "a truncated header entry");
  // value length overflowing what is left after the name.
  header(0, 0, 56, 0, d::kNullKey, 16);
  put<std::uint32_t>(ring_, 40, 4);
  put<std::uint32_t>(ring_, 44, 0xfffffffcu);
  expect_bad(0, d::kCommitted, "header value past the headers");
}

TEST_F(UnitInspectRecord, SkipAndClaimedRecordsAreNotReadPastTheirLength) {
  // Garbage payload/key fields must not matter for a record that is never delivered.
  header(256, 5, 48, 0xffffffffu, 0x12345678u, 0xffffffffu);
  auto skip = inspect(256, d::kSkip);
  ASSERT_TRUE(skip) << skip.error().what();
  EXPECT_EQ(skip->state, d::kSkip);
  EXPECT_EQ(skip->length, 48u);
  EXPECT_EQ(skip->offset, 5u);
  auto claimed = inspect(256, d::kClaimed);
  ASSERT_TRUE(claimed) << claimed.error().what();
  EXPECT_EQ(claimed->state, d::kClaimed);
}

// ---------------------------------------------------------------------------------------------------------------
// Lock requirements

// The table lock is held by this process exactly while a TableLock lives; debug builds (asan, fuzz) assert it in
// each function that REQUIRES it, so a group-table change without it stops the process rather than racing another
// process's change.
TEST_F(UnitLayout, GroupTableChangesRequireTheTableLock) {
  auto topic = mq::Topic::create("locked", {.capacity = mq::kMinCapacity}).value();
  const auto& seg = *topic.segment();
  EXPECT_FALSE(d::table_lock_held(seg));
  {
    d::TableLock lock(seg);
    ASSERT_TRUE(lock);
    EXPECT_TRUE(d::table_lock_held(seg));
    ASSERT_TRUE(d::create_group_locked(seg, "g", mq::Start::earliest, {}));
  }
  EXPECT_FALSE(d::table_lock_held(seg));
#ifndef NDEBUG
  EXPECT_DEATH((void)d::create_group_locked(seg, "h", mq::Start::earliest, {}), "table_lock_held");
#endif
}

}  // namespace
