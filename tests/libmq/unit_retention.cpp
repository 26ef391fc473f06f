// Unit tests of retention in one process: without groups the ring keeps the newest records; policy block never
// drops what a group has not consumed (publish returns full instead); policy overwrite never waits and tells a
// lapped reader exactly how many records it lost, never handing it overwritten bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "layout.hpp"
#include "libmq/libmq.hpp"
#include "segment.hpp"
#include "test_util.hpp"

namespace {

using mq::Offset;
using mqtest::bytes;
using mqtest::contains;
using mqtest::kNow;
using mqtest::text;
namespace d = mq::detail;

// 150-byte payloads make 192-byte records (header + payload in whole 64-byte lines).
constexpr std::size_t kSmall = 150;
constexpr std::size_t kRecord = 192;
static_assert(d::record_bytes(0, 0, kSmall) == kRecord);

using UnitRetention = mqtest::TopicTest;

constexpr std::chrono::milliseconds kShortBlock{50};

std::string payload_for(Offset offset, std::size_t size) {
  std::string s = "#" + std::to_string(offset) + ":";
  const std::size_t prefix = s.size();
  s.resize(size);
  for (std::size_t i = prefix; i < size; ++i) s[i] = static_cast<char>('a' + (offset * 7 + i) % 26);
  return s;
}

// Publishes records `first`, `first` + 1, ... until one is refused; returns how many went in (at most `max`).
std::size_t publish_until_full(mq::Producer& producer, Offset first, std::size_t size, std::size_t max) {
  for (std::size_t i = 0; i < max; ++i) {
    auto r = producer.publish(bytes(payload_for(first + i, size)));
    if (!r) {
      EXPECT_EQ(r.error().code(), mq::Errc::full) << r.error().what();
      return i;
    }
    EXPECT_EQ(*r, first + i);
  }
  return max;
}

// Polls and acks until nothing is left (bounded), checking that offsets run on from `expect_first` with no gap
// and that every payload is the one published at that offset. Returns the offset after the last one seen.
Offset drain_in_order(mq::Consumer& consumer, Offset expect_first, std::size_t size, std::size_t max = 100'000) {
  Offset expected = expect_first;
  for (std::size_t i = 0; i < max; ++i) {
    auto m = consumer.poll(kNow);
    if (!m) {
      EXPECT_EQ(m.error().code(), mq::Errc::timed_out) << m.error().what();
      break;
    }
    EXPECT_EQ(m->offset(), expected);
    EXPECT_EQ(text(m->payload()), payload_for(m->offset(), size)) << "offset " << m->offset();
    expected = m->offset() + 1;
    EXPECT_TRUE(consumer.ack(std::move(*m)));
  }
  return expected;
}

// ---------------------------------------------------------------------------------------------------------------
// No group: the ring keeps the newest

TEST_F(UnitRetention, WithoutGroupsTheRingKeepsTheNewest) {
  constexpr std::size_t kSize = kSmall;  // 1000 records of 192 bytes end off any index chunk boundary
  auto topic = mq::Topic::create("newest", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic, {.block_timeout = kShortBlock});
  for (Offset i = 0; i < 1000; ++i) {
    auto r = producer.publish(bytes(payload_for(i, kSize)));
    ASSERT_TRUE(r) << i << ": " << r.error().what() << " (without a group a block topic never waits)";
    ASSERT_EQ(*r, i);
  }
  const auto info = topic.info();
  EXPECT_EQ(info.latest, 1000u);
  EXPECT_GT(info.earliest, 0u) << "the oldest records were dropped";
  const std::uint64_t held = info.latest - info.earliest;
  EXPECT_LE(held, mq::kMinCapacity / kRecord) << "more records than fit in the ring";
  EXPECT_GE(held, (mq::kMinCapacity - mq::kMinCapacity / 64 - 2 * kRecord) / kRecord)
      << "earliest is within one index chunk of the oldest record held";

  mq::Consumer late(topic, {.group = "late", .start = mq::Start::earliest, .auto_ack = false});
  auto first = late.poll(kNow);
  ASSERT_TRUE(first) << first.error().what();
  EXPECT_EQ(first->offset(), info.earliest);
  EXPECT_EQ(text(first->payload()), payload_for(first->offset(), kSize));
  ASSERT_TRUE(late.ack(std::move(*first)));
  EXPECT_EQ(drain_in_order(late, info.earliest + 1, kSize), 1000u);
}

TEST_F(UnitRetention, EarliestIsTheOldestRecordHeldWhenTheTailIsOnAChunkBoundary) {
  // 1024-byte records: every tail position is a multiple of the boundary index's chunk (capacity / 64). After 65
  // records record 0 is overwritten and records 1..64 are held, so earliest must be 1 (within one chunk: <= 2).
  constexpr std::size_t kSize = 984;
  static_assert(d::record_bytes(0, 0, kSize) == 1024);
  auto topic = mq::Topic::create("chunk", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic, {.block_timeout = kShortBlock});
  for (Offset i = 0; i < 65; ++i) {
    auto r = producer.publish(bytes(payload_for(i, kSize)));
    ASSERT_TRUE(r) << r.error().what();
  }
  const auto info = topic.info();
  EXPECT_EQ(info.latest, 65u);
  EXPECT_GE(info.earliest, 1u);
  EXPECT_LE(info.earliest, 2u) << "earliest reports (almost) nothing held while the ring holds 64 records";

  mq::Consumer late(topic, {.group = "late", .start = mq::Start::earliest, .auto_ack = false});
  auto first = late.poll(kNow);
  ASSERT_TRUE(first) << first.error().what() << " (a new group at earliest got nothing)";
  EXPECT_LE(first->offset(), 2u);
  const Offset from = first->offset();
  ASSERT_TRUE(late.ack(std::move(*first)));
  EXPECT_EQ(drain_in_order(late, from + 1, kSize), 65u);
}

TEST_F(UnitRetention, DeletedRecordsStayDeletedUntilTheRingMovesPastThem) {
  auto topic = mq::Topic::create("trimmed", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic, {.block_timeout = kShortBlock});
  for (Offset i = 0; i < 100; ++i) ASSERT_TRUE(producer.publish(bytes(payload_for(i, kSmall))));
  ASSERT_EQ(topic.delete_records(40).value(), 40u);
  EXPECT_EQ(topic.earliest(), 40u);
  // 1000 more records lap the ring: the ring's own oldest is now past the deleted start, and earliest is it.
  for (Offset i = 100; i < 1100; ++i) ASSERT_TRUE(producer.publish(bytes(payload_for(i, kSmall))));
  const Offset oldest = topic.earliest();
  EXPECT_GT(oldest, 1100u - mq::kMinCapacity / kRecord - 1);
  mq::Consumer late(topic, {.group = "late", .start = mq::Start::earliest, .auto_ack = false});
  auto first = late.poll(kNow);
  ASSERT_TRUE(first) << first.error().what();
  EXPECT_EQ(first->offset(), oldest);
}

TEST_F(UnitRetention, ACorruptedLogStartIsIgnored) {
  auto topic = mq::Topic::create("badstart", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic, {.block_timeout = kShortBlock});
  for (Offset i = 0; i < 10; ++i) ASSERT_TRUE(producer.publish(bytes(payload_for(i, kSmall))));
  auto& start = topic.segment()->header().log_start;
  for (const d::Word16 bad : {d::Word16{1ull << 40, 5}, d::Word16{3 * kRecord, 1ull << 40}, d::Word16{0, 5}}) {
    start = bad;  // beyond the tail's position, beyond its offset, behind the oldest record's position
    EXPECT_EQ(topic.earliest(), 0u) << bad.lo << "/" << bad.hi;
    mq::Consumer reader(topic, {.group = "g" + std::to_string(bad.lo), .start = mq::Start::earliest});
    auto first = reader.poll(kNow);
    ASSERT_TRUE(first) << first.error().what();
    EXPECT_EQ(first->offset(), 0u);
  }
  start = d::Word16{3 * kRecord, 3};  // what delete_records(3) writes: honoured
  EXPECT_EQ(topic.earliest(), 3u);
}

// ---------------------------------------------------------------------------------------------------------------
// Policy block

TEST_F(UnitRetention, BlockTopicIsFullAfterTheTimeoutAndLosesNothing) {
  constexpr std::size_t kSize = 1000;  // 1088-byte records (whole 64-byte lines): 60 fit in 64 KiB
  static_assert(mq::kMinCapacity / d::record_bytes(0, 0, kSize) == 60);
  auto topic = mq::Topic::create("block", {.capacity = mq::kMinCapacity}).value();
  mq::Consumer slow(topic, {.group = "slow", .start = mq::Start::earliest, .auto_ack = false});
  mq::Producer producer(topic, {.block_timeout = kShortBlock});

  const std::size_t first_lap = publish_until_full(producer, 0, kSize, 200);
  ASSERT_EQ(first_lap, 60u) << "exactly what fits in the ring goes in; the rest waits for the group";
  auto refused = producer.publish(bytes(payload_for(first_lap, kSize)));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), mq::Errc::full);
  EXPECT_TRUE(contains(refused.error().message(), "topic=block")) << refused.error().what();
  EXPECT_EQ(topic.info().latest, 60u) << "a refused publish takes no offset";

  // The group consumes five and acks them (cumulatively, by acking the fifth): room for the next record.
  std::vector<mq::Message> got;
  for (Offset i = 0; i < 5; ++i) {
    auto m = slow.poll(kNow);
    ASSERT_TRUE(m) << m.error().what();
    ASSERT_EQ(m->offset(), i);
    ASSERT_EQ(text(m->payload()), payload_for(i, kSize));
    got.push_back(std::move(*m));
  }
  auto still_full = producer.publish(bytes(payload_for(60, kSize)));
  ASSERT_FALSE(still_full) << "held (unacked) records are not overwritten";
  EXPECT_EQ(still_full.error().code(), mq::Errc::full);
  ASSERT_TRUE(slow.ack(std::move(got.back())));
  auto after_ack = producer.publish(bytes(payload_for(60, kSize)));
  ASSERT_TRUE(after_ack) << after_ack.error().what();
  EXPECT_EQ(*after_ack, 60u);

  // Several more laps, alternating "publish until full" and "consume everything": every offset arrives once,
  // in order, with its own bytes.
  Offset published = 61;
  Offset next_expected = 5;
  for (int lap = 0; lap < 6; ++lap) {
    published += publish_until_full(producer, published, kSize, 200);
    next_expected = drain_in_order(slow, next_expected, kSize);
    ASSERT_EQ(next_expected, published) << "lap " << lap;
  }
  EXPECT_GT(topic.info().bytes_written, 5 * mq::kMinCapacity);
}

TEST_F(UnitRetention, ConfiguredGroupKeepsRecordsBeforeItsFirstConsumer) {
  constexpr std::size_t kSize = 1000;
  auto topic = mq::Topic::create("configured", {.capacity = mq::kMinCapacity, .groups = {"email-service"}}).value();
  mq::Producer producer(topic, {.block_timeout = kShortBlock});
  const std::size_t n = publish_until_full(producer, 0, kSize, 200);
  ASSERT_EQ(n, 60u) << "the configured group holds the producer back before any consumer exists";
  mq::Consumer service(topic, {.group = "email-service", .start = mq::Start::latest, .auto_ack = false});
  EXPECT_EQ(drain_in_order(service, 0, kSize), 60u);
}

TEST_F(UnitRetention, GroupJoiningLaterHoldsBackAProducerThatSawNoGroup) {
  // The producer has published with no group (its cached limit is "none"); a group that joins must still stop it.
  constexpr std::size_t kSize = 1000;
  auto topic = mq::Topic::create("joinlate", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic, {.block_timeout = kShortBlock});
  for (Offset i = 0; i < 100; ++i) ASSERT_TRUE(producer.publish(bytes(payload_for(i, kSize))));
  mq::Consumer consumer(topic, {.group = "g", .start = mq::Start::latest, .auto_ack = false});
  const std::size_t n = publish_until_full(producer, 100, kSize, 200);
  EXPECT_GE(n, 59u);
  EXPECT_LE(n, 60u);
  EXPECT_EQ(drain_in_order(consumer, 100, kSize), 100 + n);
}

// ---------------------------------------------------------------------------------------------------------------
// Policy overwrite

TEST_F(UnitRetention, LappedReaderIsToldHowManyItLost) {
  constexpr std::size_t kSize = kSmall;
  auto topic = mq::Topic::create("lap", {.capacity = mq::kMinCapacity, .policy = mq::Policy::overwrite}).value();
  const auto& seg = *topic.segment();
  mq::Consumer reader(topic, {.group = "g", .start = mq::Start::earliest});
  mq::Producer producer(topic, {.block_timeout = kShortBlock});
  for (Offset i = 0; i < 5; ++i) ASSERT_TRUE(producer.publish(bytes(payload_for(i, kSize))));
  Offset last_seen = 0;
  for (Offset i = 0; i < 3; ++i) {
    auto m = reader.poll(kNow);
    ASSERT_TRUE(m) << m.error().what();
    ASSERT_EQ(m->offset(), i);
    EXPECT_EQ(text(m->payload()), payload_for(i, kSize));
    const auto* p = m->payload().data();
    EXPECT_FALSE(p >= seg.ring() && p < seg.ring() + seg.capacity()) << "overwrite reads hand out a copy";
    last_seen = m->offset();
  }
  // The group holds records and never acks; overwrite never waits for it.
  for (Offset i = 5; i < 1005; ++i) {
    auto r = producer.publish(bytes(payload_for(i, kSize)));
    ASSERT_TRUE(r) << i << ": " << r.error().what();
    ASSERT_EQ(*r, i);
  }
  auto lost = reader.poll(kNow);
  ASSERT_FALSE(lost) << "offset " << lost->offset() << " was overwritten long ago";
  ASSERT_EQ(lost.error().code(), mq::Errc::lost) << lost.error().what();
  const std::uint64_t n = lost.error().lost();
  EXPECT_GT(n, 0u);
  EXPECT_TRUE(contains(lost.error().message(), "lost=" + std::to_string(n))) << lost.error().what();

  auto next = reader.poll(kNow);
  ASSERT_TRUE(next) << next.error().what();
  EXPECT_EQ(next->offset(), last_seen + 1 + n) << "lost() counts exactly the records skipped";
  EXPECT_EQ(text(next->payload()), payload_for(next->offset(), kSize));
  EXPECT_GE(next->offset(), 1005 - mq::kMinCapacity / kRecord) << "records older than one ring cannot be held";
  EXPECT_LE(next->offset(), 1005 - (mq::kMinCapacity - mq::kMinCapacity / 64 - 2 * kRecord) / kRecord)
      << "the reader skipped records that were still held";
  const Offset resume = next->offset() + 1;
  EXPECT_EQ(drain_in_order(reader, resume, kSize), 1005u);
}

TEST_F(UnitRetention, LappedReaderResumesAtTheOldestRecordStillHeld) {
  // The same lap with 1024-byte records, whose tail always sits on a boundary-index chunk start: the reader must
  // still resume at the oldest record held (offset 37 or 38 of 0..100), not be told it lost everything.
  constexpr std::size_t kSize = 984;
  auto topic = mq::Topic::create("lapchunk", {.capacity = mq::kMinCapacity, .policy = mq::Policy::overwrite}).value();
  mq::Consumer reader(topic, {.group = "g", .start = mq::Start::earliest});
  mq::Producer producer(topic);
  ASSERT_TRUE(producer.publish(bytes(payload_for(0, kSize))));
  auto first = reader.poll(kNow);
  ASSERT_TRUE(first) << first.error().what();
  for (Offset i = 1; i < 101; ++i) ASSERT_TRUE(producer.publish(bytes(payload_for(i, kSize))));
  auto lost = reader.poll(kNow);
  ASSERT_FALSE(lost);
  ASSERT_EQ(lost.error().code(), mq::Errc::lost) << lost.error().what();
  const std::uint64_t n = lost.error().lost();
  EXPECT_GE(n, 36u);
  EXPECT_LE(n, 37u) << "told it lost " << n << " of 100 records while 64 are still in the ring";
  auto next = reader.poll(kNow);
  ASSERT_TRUE(next) << next.error().what();
  EXPECT_EQ(next->offset(), 1 + n);
  EXPECT_EQ(drain_in_order(reader, next->offset() + 1, kSize), 101u);
}

TEST_F(UnitRetention, OverwriteReaderKeepsItsCopyWhileTheRingMovesOn) {
  constexpr std::size_t kSize = 300;
  auto topic = mq::Topic::create("copy", {.capacity = mq::kMinCapacity, .policy = mq::Policy::overwrite}).value();
  mq::Consumer reader(topic, {.group = "g", .start = mq::Start::earliest});
  mq::Producer producer(topic);
  ASSERT_TRUE(producer.publish(bytes(payload_for(0, kSize))));
  auto m = reader.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  // Overwrite the record's bytes in the ring several times over.
  for (Offset i = 1; i < 1000; ++i) ASSERT_TRUE(producer.publish(bytes(payload_for(i, kSize))));
  EXPECT_EQ(m->offset(), 0u);
  EXPECT_EQ(text(m->payload()), payload_for(0, kSize)) << "the message's bytes changed under the reader";
}

}  // namespace
