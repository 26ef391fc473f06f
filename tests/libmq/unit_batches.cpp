// Unit tests of batches in one process: publish_batch and claim_batch (one claim for many records: consecutive
// offsets, all or nothing, pads at the ring's end), poll_batch (one run held as one entry, cumulative acks inside
// it, redelivery of a closed member's runs, overwrite losses counted exactly), and that an empty poll allocates
// nothing.
// The replaced operator new/delete below pair malloc with free; g++ sees `delete` of what it takes for a `new`.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "libmq/libmq.hpp"
#include "test_util.hpp"

// Counts this thread's heap allocations while `g_counting` is set (a replaced global operator new, for this binary).
namespace {
thread_local bool g_counting = false;
thread_local std::size_t g_allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting) ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using mq::Offset;
using mqtest::bytes;
using mqtest::kNow;
using mqtest::text;
using namespace std::chrono_literals;

using UnitBatches = mqtest::TopicTest;

std::string payload_for(Offset offset) { return "record-" + std::to_string(offset); }

// `n` payloads named after the offsets they will get from `first` on.
std::vector<std::string> payloads(Offset first, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(payload_for(first + i));
  return out;
}

mq::Result<Offset> publish_all(mq::Producer& p, const std::vector<std::string>& texts) {
  std::vector<std::span<const std::byte>> spans;
  for (const auto& t : texts) spans.push_back(bytes(t));
  return p.publish_batch(spans);
}

mq::ConsumerOptions member(bool auto_ack = false) {
  mq::ConsumerOptions o;
  o.group = "g";
  o.start = mq::Start::earliest;
  o.auto_ack = auto_ack;
  return o;
}

TEST_F(UnitBatches, PublishBatchGivesConsecutiveOffsetsAndPollBatchHoldsOneRun) {
  auto topic = mq::Topic::create("batch", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_TRUE(producer.publish(bytes(payload_for(0))));
  auto first = publish_all(producer, payloads(1, 40));
  ASSERT_TRUE(first) << first.error().what();
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ(topic->info().latest, 41u);

  mq::Consumer consumer(*topic, member());
  std::vector<mq::Message> batch;
  auto n = consumer.poll_batch(batch, 32, kNow);
  ASSERT_TRUE(n) << n.error().what();
  ASSERT_EQ(*n, 32u);
  ASSERT_EQ(batch.size(), 32u);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(batch[i].offset(), i);
    EXPECT_EQ(text(batch[i].payload()), payload_for(i));
  }
  EXPECT_EQ(consumer.unacked(), 1u) << "32 records, one held run";
  EXPECT_EQ(topic->info().groups[0].unacked, 32u);

  // Cumulative acks inside the run: through offset 9, then through 31.
  ASSERT_TRUE(consumer.ack(std::move(batch[9])));
  EXPECT_EQ(topic->info().groups[0].committed, 10u);
  EXPECT_EQ(topic->info().groups[0].unacked, 22u);
  auto again = consumer.ack(std::move(batch[5]));
  ASSERT_FALSE(again) << "offset 5 was acked with 9";
  EXPECT_EQ(again.error().code(), mq::Errc::invalid_argument);
  ASSERT_TRUE(consumer.ack(std::move(batch[31])));
  EXPECT_EQ(topic->info().groups[0].committed, 32u);
  EXPECT_EQ(consumer.unacked(), 0u);

  n = consumer.poll_batch(batch, 63, kNow);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 9u);
  EXPECT_EQ(batch.front().offset(), 32u);
  EXPECT_EQ(batch.back().offset(), 40u);
  n = consumer.poll_batch(batch, 63, kNow);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u) << "nothing left: 0, not an error";
  EXPECT_TRUE(batch.empty());
}

// Records with and without key, headers or a timestamp of their own, in one batch: the batch publish and both takes
// (poll_batch's walk, poll's one record) read each as it was written, the plain ones by the inline path.
TEST_F(UnitBatches, MixedRecordsInOneBatchKeepTheirKeysHeadersAndTimestamps) {
  auto topic = mq::Topic::create("mixed", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("batch", mq::Start::earliest));
  ASSERT_TRUE(topic->create_group("single", mq::Start::earliest));
  const mq::Header header{"h", bytes("v")};
  std::vector<mq::Record> records(7);
  records[0].payload = bytes("plain");
  records[1].payload = bytes("keyed");
  records[1].key = bytes("k1");
  records[2].payload = bytes("empty key");
  records[2].key = bytes("");
  records[3].payload = bytes("with a header");
  records[3].headers = std::span(&header, 1);
  records[4].payload = bytes("own time");
  records[4].timestamp_ns = 1234;
  records[6].payload = bytes("plain again");  // records[5]: an empty payload, nothing else
  const auto before = std::chrono::system_clock::now().time_since_epoch();
  mq::Producer producer(*topic);
  ASSERT_TRUE(producer.publish_batch(records));
  const auto after = std::chrono::system_clock::now().time_since_epoch();

  const auto check = [&](const mq::Message& m, std::size_t i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(m.offset(), i);
    EXPECT_EQ(text(m.payload()), text(records[i].payload));
    ASSERT_EQ(m.key().has_value(), records[i].key.has_value());
    if (m.key()) {
      EXPECT_EQ(text(*m.key()), text(*records[i].key));
    }
    std::size_t headers = 0;
    for (const mq::Header h : m.headers()) {
      EXPECT_EQ(h.name, "h");
      EXPECT_EQ(text(h.value), "v");
      ++headers;
    }
    EXPECT_EQ(headers, records[i].headers.size());
    if (records[i].timestamp_ns) {
      EXPECT_EQ(m.timestamp_ns(), *records[i].timestamp_ns);
    } else {  // the publish's time (TSC-extrapolated: allow its documented drift of well under a millisecond)
      EXPECT_GE(m.timestamp_ns(), std::chrono::nanoseconds(before).count() - 1'000'000);
      EXPECT_LE(m.timestamp_ns(), std::chrono::nanoseconds(after).count() + 1'000'000);
    }
  };
  mq::Consumer batch_member(*topic, {.group = "batch", .auto_ack = false});
  std::vector<mq::Message> got;
  auto n = batch_member.poll_batch(got, 32, kNow);
  ASSERT_TRUE(n) << n.error().what();
  ASSERT_EQ(*n, records.size());
  for (std::size_t i = 0; i < got.size(); ++i) check(got[i], i);

  mq::Consumer single_member(*topic, {.group = "single", .auto_ack = true});
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto m = single_member.poll(kNow);
    ASSERT_TRUE(m) << m.error().what();
    check(*m, i);
  }
  auto none = single_member.poll(kNow);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), mq::Errc::timed_out);
}

TEST_F(UnitBatches, BadBatchSizesAreRefusedAndWriteNothing) {
  auto topic = mq::Topic::create("limits", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(topic);
  mq::Producer producer(*topic);
  std::vector<std::span<const std::byte>> none;
  auto empty = producer.publish_batch(none);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), mq::Errc::invalid_argument);
  // 3 records of 12 KiB: each under the max message (16 KiB), together over half the 64 KiB ring.
  const std::string big(12 << 10, 'x');
  auto too_big = publish_all(producer, {big, big, big});
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), mq::Errc::too_large);
  EXPECT_TRUE(mqtest::contains(too_big.error().message(), "batch too large")) << too_big.error().what();
  const std::string huge(20 << 10, 'x');
  auto one_too_big = publish_all(producer, {"a", huge});
  ASSERT_FALSE(one_too_big);
  EXPECT_TRUE(mqtest::contains(one_too_big.error().message(), "record=1")) << one_too_big.error().what();
  EXPECT_EQ(topic->info().latest, 0u) << "all or nothing";
  EXPECT_EQ(topic->info().bytes_written, 0u);

  mq::Consumer consumer(*topic, member());
  std::vector<mq::Message> batch;
  for (const std::size_t max : {std::size_t{0}, mq::kMaxBatch + 1}) {
    auto n = consumer.poll_batch(batch, max, kNow);
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code(), mq::Errc::invalid_argument);
  }
}

TEST_F(UnitBatches, BatchAtTheRingsEndPadsAndStartsTheNextLapWhole) {
  auto topic = mq::Topic::create("wrap", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(topic);
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  mq::Consumer consumer(*topic, member(true));
  // 60 records of 1024 bytes leave 4 KiB before the ring's end; a batch of 8 such records does not fit there.
  const std::string kib(1024 - 64, 'k');
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(producer.publish(bytes(kib)));
    ASSERT_TRUE(consumer.poll(kNow));
  }
  ASSERT_EQ(topic->info().bytes_written, 60u * 1024);
  auto first = publish_all(producer, std::vector<std::string>(8, kib));
  ASSERT_TRUE(first) << first.error().what();
  EXPECT_EQ(topic->info().bytes_written, 64u * 1024 + 8 * 1024) << "a 4 KiB pad, then the batch at the lap's start";
  std::vector<mq::Message> batch;
  auto n = consumer.poll_batch(batch, 63, kNow);
  ASSERT_TRUE(n) << n.error().what();
  ASSERT_EQ(*n, 8u);
  EXPECT_EQ(batch.front().offset(), 60u);
  EXPECT_EQ(batch.back().offset(), 67u);
}

TEST_F(UnitBatches, ClaimBatchCommitsInOrderAndAbortLeavesSkipRecords) {
  auto topic = mq::Topic::create("claims", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(topic);
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  const std::vector<std::size_t> sizes{9, 0, 100};
  {
    auto claim = producer.claim_batch(sizes);
    ASSERT_TRUE(claim) << claim.error().what();
    EXPECT_EQ(claim->size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      ASSERT_EQ(claim->bytes(i).size(), sizes[i]);
      std::fill(claim->bytes(i).begin(), claim->bytes(i).end(), std::byte{static_cast<unsigned char>('a' + i)});
    }
    EXPECT_FALSE(producer.publish(bytes("x"))) << "one open claim per producer";
    auto committed = std::move(*claim).commit();
    ASSERT_TRUE(committed) << committed.error().what();
    EXPECT_EQ(*committed, 0u);
  }
  {
    auto claim = producer.claim_batch(sizes);
    ASSERT_TRUE(claim);
    EXPECT_EQ(claim->offset(), 3u);
  }  // destroyed without commit: offsets 3..5 become skip records
  ASSERT_TRUE(producer.publish(bytes("after")));
  mq::Consumer consumer(*topic, member(true));
  std::vector<mq::Message> batch;
  auto n = consumer.poll_batch(batch, 63, kNow);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 4u) << "three records, three skip records, one record";
  EXPECT_EQ(text(batch[0].payload()), std::string(9, 'a'));
  EXPECT_TRUE(batch[1].payload().empty());
  EXPECT_EQ(text(batch[2].payload()), std::string(100, 'c'));
  EXPECT_EQ(batch[3].offset(), 6u);
  EXPECT_EQ(text(batch[3].payload()), "after");
}

TEST_F(UnitBatches, ARunAClosedMemberHeldGoesWholeToAnotherMember) {
  auto topic = mq::Topic::create("handback", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(topic);
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_TRUE(publish_all(producer, payloads(0, 50)));
  mq::Consumer stays(*topic, member());
  {
    mq::Consumer leaves(*topic, member());
    std::vector<mq::Message> batch;
    auto n = leaves.poll_batch(batch, 20, kNow);
    ASSERT_TRUE(n);
    ASSERT_EQ(*n, 20u);
    ASSERT_TRUE(leaves.ack(std::move(batch[4])));  // 0..4 acked; 5..19 go back when it leaves
  }
  // The other member gets 5..19 first, flagged redelivered, one poll at a time out of the one run, then 20..49.
  for (Offset o = 5; o < 50; ++o) {
    auto m = stays.poll(kNow);
    ASSERT_TRUE(m) << "offset " << o << ": " << m.error().what();
    EXPECT_EQ(m->offset(), o);
    EXPECT_EQ(m->redelivered(), o < 20) << "offset " << o;
    EXPECT_EQ(text(m->payload()), payload_for(o));
    ASSERT_TRUE(stays.ack(std::move(*m)));
  }
  EXPECT_EQ(topic->info().groups[0].committed, 50u);
  EXPECT_EQ(topic->info().groups[0].unacked, 0u);
}

TEST_F(UnitBatches, LappedOverwriteBatchIsLostWithAnExactCount) {
  auto topic = mq::Topic::create("lapped", {.capacity = mq::kMinCapacity, .policy = mq::Policy::overwrite});
  ASSERT_TRUE(topic);
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  mq::Consumer consumer(*topic, member(true));
  const std::string kib(1024 - 64, 'k');
  ASSERT_TRUE(publish_all(producer, std::vector<std::string>(10, kib)));
  std::vector<mq::Message> batch;
  auto n = consumer.poll_batch(batch, 5, kNow);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 5u);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(producer.publish(bytes(kib)));  // laps the ring (64 records) and more
  std::uint64_t lost = 0;
  std::vector<Offset> seen;
  for (int polls = 0; polls < 200; ++polls) {
    auto got = consumer.poll_batch(batch, 63, kNow);
    if (!got) {
      ASSERT_EQ(got.error().code(), mq::Errc::lost) << got.error().what();
      lost += got.error().lost();
      continue;
    }
    if (*got == 0) break;
    for (const auto& m : batch) seen.push_back(m.offset());
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), 109u);
  EXPECT_EQ(5 + lost + seen.size(), 110u) << "every record after the first five was either read or counted lost";
}

TEST_F(UnitBatches, EmptyPollsAllocateNothing) {
  auto topic = mq::Topic::create("quiet", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(topic);
  mq::Consumer consumer(*topic, member());
  std::vector<mq::Message> batch;
  batch.reserve(mq::kMaxBatch);
  (void)consumer.poll(kNow);  // warm: lazy statics
  g_allocations = 0;
  g_counting = true;
  for (int i = 0; i < 100; ++i) {
    auto m = consumer.poll(kNow);
    auto n = consumer.poll_batch(batch, 63, kNow);
    if (m || !n || *n != 0) break;
  }
  g_counting = false;
  EXPECT_EQ(g_allocations, 0u);
}

}  // namespace
