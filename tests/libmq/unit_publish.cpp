// Unit tests of the publishing side: what a record carries (payload, key, headers, timestamp), the max message
// size, and zero-copy claims (commit, abort, destruction, one open claim per producer). Single process.
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

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

using UnitPublish = mqtest::TopicTest;

std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

mq::Consumer earliest_consumer(const mq::Topic& topic, const std::string& group = "g") {
  return mq::Consumer(topic, {.group = group, .start = mq::Start::earliest, .auto_ack = false});
}

// Polls until nothing is left (bounded), returning offsets; any error but timed_out fails the test.
std::vector<Offset> drain_offsets(mq::Consumer& consumer, std::size_t max = 10'000) {
  std::vector<Offset> offsets;
  for (std::size_t i = 0; i < max; ++i) {
    auto m = consumer.poll(kNow);
    if (!m) {
      EXPECT_EQ(m.error().code(), mq::Errc::timed_out) << m.error().what();
      break;
    }
    offsets.push_back(m->offset());
    EXPECT_TRUE(consumer.ack(std::move(*m)));
  }
  return offsets;
}

// ---------------------------------------------------------------------------------------------------------------
// Payload sizes

TEST_F(UnitPublish, EmptyPayloadIsARecordWithItsOwnOffset) {
  auto topic = mq::Topic::create("empty").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer producer(topic);
  auto a = producer.publish(std::span<const std::byte>{});
  ASSERT_TRUE(a) << a.error().what();
  EXPECT_EQ(*a, 0u);
  auto claim = producer.claim(0);
  ASSERT_TRUE(claim) << claim.error().what();
  EXPECT_TRUE(claim->bytes().empty());
  auto b = std::move(*claim).commit();
  ASSERT_TRUE(b) << b.error().what();
  EXPECT_EQ(*b, 1u);
  auto c = producer.publish(bytes("x"));
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, 2u);
  for (Offset i = 0; i < 2; ++i) {
    auto m = consumer.poll(kNow);
    ASSERT_TRUE(m) << m.error().what();
    EXPECT_EQ(m->offset(), i);
    EXPECT_TRUE(m->payload().empty());
    EXPECT_FALSE(m->key());
    EXPECT_TRUE(m->headers().empty());
  }
  auto m = consumer.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(text(m->payload()), "x");
}

TEST_F(UnitPublish, PayloadOfExactlyMaxMessageIsAccepted) {
  auto topic = mq::Topic::create("max", {.capacity = mq::kMinCapacity}).value();
  const std::size_t max = topic.info().max_message;
  ASSERT_EQ(max, mq::kMinCapacity / 4) << "the default max message is capacity / 4";
  auto consumer = earliest_consumer(topic);
  mq::Producer producer(topic);
  std::string payload(max, 'm');
  payload.front() = '<';
  payload.back() = '>';
  auto r = producer.publish(bytes(payload));
  ASSERT_TRUE(r) << r.error().what();
  auto m = consumer.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->payload().size(), max);
  EXPECT_EQ(text(m->payload()), payload);
  auto claim = producer.claim(max);
  ASSERT_TRUE(claim) << claim.error().what();
  EXPECT_EQ(claim->bytes().size(), max);
}

TEST_F(UnitPublish, OneByteOverMaxMessageIsTooLargeNamingBothSizes) {
  auto topic = mq::Topic::create("toolarge", {.capacity = mq::kMinCapacity, .max_message = 1000}).value();
  mq::Producer producer(topic);
  const std::string ok(1000, 'a');
  const std::string over(1001, 'a');
  auto first = producer.publish(bytes(ok));
  ASSERT_TRUE(first) << first.error().what();

  auto r = producer.publish(bytes(over));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), mq::Errc::too_large);
  EXPECT_TRUE(contains(r.error().message(), "1000")) << r.error().what();
  EXPECT_TRUE(contains(r.error().message(), "1001")) << r.error().what();
  EXPECT_TRUE(contains(r.error().message(), "topic=toolarge")) << r.error().what();

  auto claim = producer.claim(1001);
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().code(), mq::Errc::too_large);

  // The limit covers key + headers + payload: 990 + 11 = 1001.
  const std::string key(11, 'k');
  auto keyed = producer.publish(mq::Record{bytes(ok.substr(0, 990)), bytes(key), {}, std::nullopt});
  ASSERT_FALSE(keyed);
  EXPECT_EQ(keyed.error().code(), mq::Errc::too_large);
  EXPECT_TRUE(contains(keyed.error().message(), "1001")) << keyed.error().what();
  const mq::Header headers[] = {{"n", bytes("12")}};  // 8 + 1 + 2 = 11
  auto with_headers = producer.publish(mq::Record{bytes(ok.substr(0, 990)), std::nullopt, headers, std::nullopt});
  ASSERT_FALSE(with_headers);
  EXPECT_EQ(with_headers.error().code(), mq::Errc::too_large);
  auto exact = producer.publish(mq::Record{bytes(ok.substr(0, 989)), bytes(key), {}, std::nullopt});
  ASSERT_TRUE(exact) << exact.error().what();

  // Rejected records take no offset.
  EXPECT_EQ(*exact, 1u);
  EXPECT_EQ(topic.info().latest, 2u);
}

// ---------------------------------------------------------------------------------------------------------------
// Keys, headers, timestamps

TEST_F(UnitPublish, NullKeyDiffersFromEmptyKey) {
  auto topic = mq::Topic::create("keys").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer producer(topic);
  ASSERT_TRUE(producer.publish(mq::Record{bytes("null"), std::nullopt, {}, std::nullopt}));
  ASSERT_TRUE(producer.publish(mq::Record{bytes("empty"), std::span<const std::byte>{}, {}, std::nullopt}));
  ASSERT_TRUE(producer.publish(mq::Record{bytes("some"), bytes("user-42"), {}, std::nullopt}));
  ASSERT_TRUE(producer.publish(bytes("plain")));

  auto null_key = consumer.poll(kNow);
  ASSERT_TRUE(null_key) << null_key.error().what();
  EXPECT_FALSE(null_key->key().has_value());
  auto empty_key = consumer.poll(kNow);
  ASSERT_TRUE(empty_key) << empty_key.error().what();
  ASSERT_TRUE(empty_key->key().has_value()) << "an empty key is not a null key";
  EXPECT_TRUE(empty_key->key()->empty());
  EXPECT_EQ(text(empty_key->payload()), "empty");
  auto some = consumer.poll(kNow);
  ASSERT_TRUE(some) << some.error().what();
  ASSERT_TRUE(some->key().has_value());
  EXPECT_EQ(text(*some->key()), "user-42");
  EXPECT_EQ(text(some->payload()), "some");
  auto plain = consumer.poll(kNow);
  ASSERT_TRUE(plain) << plain.error().what();
  EXPECT_FALSE(plain->key().has_value()) << "publish(span) has a null key";
}

TEST_F(UnitPublish, RepeatedHeaderNamesAreKeptInOrderWithEmptyValues) {
  auto topic = mq::Topic::create("headers").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer producer(topic);
  const std::string binary("\0\x01\xff", 3);
  const mq::Header sent[] = {
      {"trace", bytes("a")}, {"retry", bytes("")}, {"trace", bytes("b")}, {"", bytes("nameless")},
      {"trace", bytes(binary)}, {"retry", {}},
  };
  ASSERT_TRUE(producer.publish(mq::Record{bytes("body"), bytes("k"), sent, std::nullopt}));
  auto m = consumer.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  std::vector<std::pair<std::string, std::string>> got;
  for (const mq::Header h : m->headers()) got.emplace_back(std::string(h.name), text(h.value));
  const std::vector<std::pair<std::string, std::string>> want = {
      {"trace", "a"}, {"retry", ""}, {"trace", "b"}, {"", "nameless"}, {"trace", binary}, {"retry", ""},
  };
  EXPECT_EQ(got, want);
  EXPECT_EQ(text(m->payload()), "body");
  ASSERT_TRUE(m->key());
  EXPECT_EQ(text(*m->key()), "k");
}

TEST_F(UnitPublish, GivenTimestampIsKeptAndDefaultIsNow) {
  auto topic = mq::Topic::create("time").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer producer(topic);
  constexpr std::int64_t kGiven = 1'600'000'000'123'456'789;
  ASSERT_TRUE(producer.publish(mq::Record{bytes("given"), std::nullopt, {}, kGiven}));
  ASSERT_TRUE(producer.publish(mq::Record{bytes("zero"), std::nullopt, {}, std::int64_t{0}}));
  const std::int64_t before = realtime_ns();
  ASSERT_TRUE(producer.publish(bytes("default")));
  const std::int64_t after = realtime_ns();

  auto given = consumer.poll(kNow);
  ASSERT_TRUE(given) << given.error().what();
  EXPECT_EQ(given->timestamp_ns(), kGiven);
  auto zero = consumer.poll(kNow);
  ASSERT_TRUE(zero) << zero.error().what();
  EXPECT_EQ(zero->timestamp_ns(), 0) << "a given 0 is a timestamp, not 'unset'";
  auto now = consumer.poll(kNow);
  ASSERT_TRUE(now) << now.error().what();
  EXPECT_GE(now->timestamp_ns(), before - mqtest::kClockSlackNs);
  EXPECT_LE(now->timestamp_ns(), after + mqtest::kClockSlackNs);
}

// ---------------------------------------------------------------------------------------------------------------
// Claims

TEST_F(UnitPublish, ClaimReturnsWritableSpanAndCommitReturnsOffset) {
  auto topic = mq::Topic::create("claim").value();
  const auto& seg = *topic.segment();
  auto consumer = earliest_consumer(topic);
  mq::Producer producer(topic);
  ASSERT_TRUE(producer.publish(bytes("zero")));
  auto claim = producer.claim(13);
  ASSERT_TRUE(claim) << claim.error().what();
  EXPECT_EQ(claim->offset(), 1u);
  ASSERT_EQ(claim->bytes().size(), 13u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(claim->bytes().data()) % 8, 0u) << "payloads are 8-byte aligned";
  EXPECT_GE(claim->bytes().data(), seg.ring());
  EXPECT_LE(claim->bytes().data() + 13, seg.ring() + seg.capacity()) << "the span is inside the ring";
  std::memcpy(claim->bytes().data(), "hello, claims", 13);
  auto offset = std::move(*claim).commit();
  ASSERT_TRUE(offset) << offset.error().what();
  EXPECT_EQ(*offset, 1u);

  auto zero = consumer.poll(kNow);
  ASSERT_TRUE(zero);
  auto m = consumer.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->offset(), 1u);
  EXPECT_EQ(text(m->payload()), "hello, claims");
  EXPECT_FALSE(m->key());
}

TEST_F(UnitPublish, AbortedClaimIsASkipRecordNeverDelivered) {
  auto topic = mq::Topic::create("abort").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer producer(topic);
  ASSERT_EQ(*producer.publish(bytes("0")), 0u);
  auto claim = producer.claim(64);
  ASSERT_TRUE(claim) << claim.error().what();
  EXPECT_EQ(claim->offset(), 1u);
  std::memset(claim->bytes().data(), 'X', 64);
  const std::uint64_t position =
      static_cast<std::uint64_t>(claim->bytes().data() - topic.segment()->ring()) - d::kRecordHeaderBytes;
  std::move(*claim).abort();
  auto skip = d::read_record(*topic.segment(), position);
  ASSERT_TRUE(skip) << skip.error().what();
  EXPECT_EQ(skip->state, d::kSkip);
  EXPECT_EQ(skip->offset, 1u) << "the aborted claim keeps its offset";

  auto next = producer.publish(bytes("2"));
  ASSERT_TRUE(next) << next.error().what();
  EXPECT_EQ(*next, 2u) << "offsets continue after the aborted one";
  EXPECT_EQ(drain_offsets(consumer), (std::vector<Offset>{0, 2})) << "the hole is exactly the aborted claim";
  EXPECT_EQ(topic.info().latest, 3u);
}

TEST_F(UnitPublish, DestroyedOpenClaimIsASkipRecord) {
  auto topic = mq::Topic::create("dtor").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer producer(topic);
  {
    auto claim = producer.claim(8);
    ASSERT_TRUE(claim) << claim.error().what();
    EXPECT_EQ(claim->offset(), 0u);
    std::memcpy(claim->bytes().data(), "ghostxyz", 8);
  }
  ASSERT_EQ(*producer.publish(bytes("a")), 1u);
  {
    auto claim = producer.claim(8);
    ASSERT_TRUE(claim);
    EXPECT_EQ(claim->offset(), 2u);
  }
  ASSERT_EQ(*producer.publish(bytes("b")), 3u);
  std::vector<std::string> payloads;
  for (int i = 0; i < 10; ++i) {
    auto m = consumer.poll(kNow);
    if (!m) {
      EXPECT_EQ(m.error().code(), mq::Errc::timed_out);
      break;
    }
    payloads.push_back(std::to_string(m->offset()) + "=" + text(m->payload()));
  }
  EXPECT_EQ(payloads, (std::vector<std::string>{"1=a", "3=b"}));
}

TEST_F(UnitPublish, MoveAssigningOverAnOpenClaimAbortsIt) {
  auto topic = mq::Topic::create("moveclaim").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer p1(topic);
  mq::Producer p2(topic);
  auto first = p1.claim(4);
  auto second = p2.claim(4);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->offset(), 0u);
  EXPECT_EQ(second->offset(), 1u);
  std::memcpy(second->bytes().data(), "two!", 4);
  *first = std::move(*second);  // aborts offset 0; `first` now holds offset 1
  EXPECT_EQ(first->offset(), 1u);
  auto moved_from = std::move(*second).commit();
  ASSERT_FALSE(moved_from);
  EXPECT_EQ(moved_from.error().code(), mq::Errc::invalid_argument);
  auto committed = std::move(*first).commit();
  ASSERT_TRUE(committed) << committed.error().what();
  EXPECT_EQ(*committed, 1u);
  auto twice = std::move(*first).commit();
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), mq::Errc::invalid_argument);
  auto m = consumer.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->offset(), 1u);
  EXPECT_EQ(text(m->payload()), "two!");
  // p1 may claim again: its claim was aborted.
  auto again = p1.claim(1);
  EXPECT_TRUE(again) << again.error().what();
}

TEST_F(UnitPublish, SecondClaimWhileOneIsOpenIsBusy) {
  auto topic = mq::Topic::create("busy").value();
  mq::Producer producer(topic);
  auto claim = producer.claim(16);
  ASSERT_TRUE(claim) << claim.error().what();
  auto second = producer.claim(16);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), mq::Errc::busy);
  EXPECT_TRUE(contains(second.error().message(), "topic=busy")) << second.error().what();
  auto publish = producer.publish(bytes("x"));
  ASSERT_FALSE(publish);
  EXPECT_EQ(publish.error().code(), mq::Errc::busy);
  EXPECT_EQ(topic.info().latest, 1u) << "the refused calls took no offset";
  ASSERT_TRUE(std::move(*claim).commit());
  auto third = producer.claim(16);
  ASSERT_TRUE(third) << third.error().what();
  EXPECT_EQ(third->offset(), 1u);
}

TEST_F(UnitPublish, ReaderStopsAtAnOpenClaimUntilItIsCommitted) {
  auto topic = mq::Topic::create("stop").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer slow(topic);
  mq::Producer fast(topic);
  ASSERT_EQ(*fast.publish(bytes("0")), 0u);
  auto claim = slow.claim(1);
  ASSERT_TRUE(claim);
  ASSERT_EQ(*fast.publish(bytes("2")), 2u);

  auto zero = consumer.poll(kNow);
  ASSERT_TRUE(zero) << zero.error().what();
  EXPECT_EQ(zero->offset(), 0u);
  // Offset 2 is committed but behind the open claim: the reader must not skip ahead. The wait is long enough
  // for the consumer to reach its slow path, which flags the (live) producer as stalled instead of robbing it.
  auto blocked = consumer.poll(std::chrono::milliseconds(200));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code(), mq::Errc::timed_out);
  EXPECT_EQ(topic.info().stalled_producers, 1u);

  std::memcpy(claim->bytes().data(), "1", 1);
  auto committed = std::move(*claim).commit();
  ASSERT_TRUE(committed) << committed.error().what() << " (a live producer's claim must never be revoked)";
  EXPECT_EQ(topic.info().stalled_producers, 0u);
  auto one = consumer.poll(kNow);
  ASSERT_TRUE(one) << one.error().what();
  EXPECT_EQ(one->offset(), 1u);
  EXPECT_EQ(text(one->payload()), "1");
  auto two = consumer.poll(kNow);
  ASSERT_TRUE(two) << two.error().what();
  EXPECT_EQ(two->offset(), 2u);
}

TEST_F(UnitPublish, ProducerTableFullIsLimitAndASlotComesBack) {
  auto topic = mq::Topic::create("producers").value();
  std::vector<mq::Producer> producers;
  for (std::size_t i = 0; i < mq::kMaxProducers; ++i) {
    auto p = mq::Producer::make(topic);
    ASSERT_TRUE(p) << i << ": " << p.error().what();
    producers.push_back(std::move(*p));
  }
  EXPECT_EQ(topic.info().producers, mq::kMaxProducers);
  auto extra = mq::Producer::make(topic);
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error().code(), mq::Errc::limit);
  EXPECT_TRUE(contains(extra.error().message(), std::to_string(mq::kMaxProducers))) << extra.error().what();
  EXPECT_THROW(mq::Producer{topic}, mq::Error);
  producers.pop_back();
  auto again = mq::Producer::make(topic);
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_TRUE(again->publish(bytes("x")));
}

TEST_F(UnitPublish, OffsetsAreGaplessAcrossProducersInLogOrder) {
  auto topic = mq::Topic::create("order").value();
  auto consumer = earliest_consumer(topic);
  mq::Producer a(topic);
  mq::Producer b(topic);
  for (Offset i = 0; i < 20; ++i) {
    auto r = (i % 3 == 0 ? b : a).publish(bytes(std::to_string(i)));
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(*r, i);
  }
  std::vector<Offset> want(20);
  for (Offset i = 0; i < 20; ++i) want[i] = i;
  EXPECT_EQ(drain_offsets(consumer), want);
}

TEST_F(UnitPublish, EmptyPayloadWithKeyAndHeadersKeepsThem) {
  auto topic = mq::Topic::create("empty-with-key", {});
  ASSERT_TRUE(topic);
  mq::Consumer consumer(*topic, {.group = "g", .start = mq::Start::earliest});
  mq::Producer producer(*topic);
  const std::string key = "k";
  const mq::Header headers[] = {{"h", bytes("v")}};
  ASSERT_TRUE(producer.publish(mq::Record{std::span<const std::byte>{}, bytes(key), headers, std::nullopt}));
  auto msg = consumer.poll(std::chrono::seconds(5));
  ASSERT_TRUE(msg) << msg.error().message();
  EXPECT_TRUE(msg->payload().empty());
  ASSERT_TRUE(msg->key());
  EXPECT_EQ(text(*msg->key()), "k");
  auto it = msg->headers().begin();
  ASSERT_NE(it, msg->headers().end());
  EXPECT_EQ((*it).name, "h");
  EXPECT_EQ(text((*it).value), "v");
}

// ---------------------------------------------------------------------------------------------------------------
// Offsets by time (Kafka's ListOffsets by timestamp; kafkajs fetchTopicOffsetsByTimestamp)

// Publishes one record per timestamp (ns), each payload naming its index.
void publish_at(mq::Producer& producer, const std::vector<std::int64_t>& times) {
  for (std::size_t i = 0; i < times.size(); ++i) {
    const std::string text = "#" + std::to_string(i);
    const auto payload = bytes(text);
    ASSERT_TRUE(producer.publish(mq::Record{.payload = payload, .key = {}, .headers = {}, .timestamp_ns = times[i]}));
  }
}

// The first record at or after T, including equal times, repeated times and times out of order (the first in log
// order wins, as a replay "since T" must not skip a record); the next offset when no record is that new.
TEST_F(UnitPublish, OffsetForTimeIsTheFirstRecordAtOrAfterIt) {
  auto topic = mq::Topic::create("by-time", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic);
  EXPECT_EQ(topic.offset_for_time(0).value(), 0u) << "an empty topic: the next offset";
  publish_at(producer, {1000, 2000, 2000, 5000, 3000, 7000});
  const std::vector<std::pair<std::int64_t, Offset>> cases = {
      {0, 0}, {1000, 0}, {1001, 1}, {2000, 1}, {2001, 3}, {3000, 3}, {5000, 3}, {5001, 5}, {7000, 5}, {7001, 6}};
  for (const auto& [t, expected] : cases) {
    auto found = topic.offset_for_time(t);
    ASSERT_TRUE(found) << found.error().what();
    EXPECT_EQ(*found, expected) << "T=" << t;
  }
}

// When the oldest records are gone (an overwrite topic lapped its ring), a time before every record held answers
// the oldest record held, and later times still land on the exact record.
TEST_F(UnitPublish, OffsetForTimeAfterTheRingWrapped) {
  auto topic = mq::Topic::create("by-time-wrapped", {.capacity = mq::kMinCapacity, .policy = mq::Policy::overwrite});
  ASSERT_TRUE(topic) << topic.error().what();
  mq::Producer producer(*topic);
  std::vector<std::int64_t> times;
  for (std::int64_t i = 0; i < 3000; ++i) times.push_back(1'000'000 + i * 10);  // 64 KiB holds ~1000 of them
  publish_at(producer, times);
  const Offset earliest = topic->earliest();
  ASSERT_GT(earliest, 0u) << "the ring never wrapped";
  EXPECT_EQ(topic->offset_for_time(0).value(), earliest);
  EXPECT_EQ(topic->offset_for_time(1'000'000 + 2500 * 10).value(), 2500u);
  EXPECT_EQ(topic->offset_for_time(1'000'000 + 2500 * 10 - 5).value(), 2500u);
  EXPECT_EQ(topic->offset_for_time(1'000'000 + 3000 * 10).value(), 3000u);
  // Read back through a group reset there: the replay starts at that record.
  ASSERT_TRUE(topic->create_group("replay", mq::Start::latest));
  ASSERT_TRUE(topic->reset_group("replay", topic->offset_for_time(1'000'000 + 2999 * 10).value()));
  mq::Consumer consumer(*topic, {.group = "replay", .auto_ack = true});
  auto m = consumer.poll(std::chrono::seconds(5));
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->offset(), 2999u);
  EXPECT_EQ(m->timestamp_ns(), 1'000'000 + 2999 * 10);
}

}  // namespace
