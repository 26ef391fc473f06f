// What a topic keeps for its groups across processes: a restarted consumer resumes at its group's committed
// position; a block topic whose only consumer process is stopped fills, says `full` after the producer's timeout and
// loses nothing; an overwrite topic laps a slow reader, which is told exactly how many records it lost and is never
// handed overwritten bytes.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here, e.g. from test_util.hpp's
// SetUp; it must be silenced before the first standard header to take effect.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;

mq::ConsumerOptions member(bool auto_ack, mq::Start start = mq::Start::earliest) {
  return member_options("g", start, mq::Wait::spin_futex, auto_ack);
}

TEST_F(MultiProcess, RestartedConsumerResumesFromCommittedPosition) {
  constexpr std::uint64_t kRecords = 100;
  constexpr std::uint64_t kAcked = 40;
  constexpr std::uint64_t kUnacked = 3;  // received after the ack, not acked: handed back at close
  auto topic = mq::Topic::create("resume", {.capacity = std::size_t{64} << 10});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  for (std::uint64_t i = 0; i < kRecords; ++i) ASSERT_TRUE(producer.publish(numbered_payload(i)));

  mqtest::Child first([&]() -> int {
    auto t = mq::Topic::open("resume");
    if (!t) return child_fail(t.error().what());
    mq::Consumer c(*t, member(/*auto_ack=*/false));
    for (std::uint64_t i = 0; i < kAcked + kUnacked; ++i) {
      auto m = c.poll(20s);
      if (!m) return child_fail(m.error().what());
      if (m->offset() != i) return child_fail("offset " + std::to_string(m->offset()) + " at " + std::to_string(i));
      // Acks every 8th record (an ack covers the earlier ones too) up to offset 39; 40..42 stay unacked.
      if ((i % 8 == 7 || i == kAcked - 1) && i < kAcked)
        if (auto a = c.ack(std::move(*m)); !a) return child_fail(a.error().what());
    }
    if (c.unacked() != kUnacked) return child_fail("holds " + std::to_string(c.unacked()));
    return 0;  // clean exit: the Consumer's destructor hands 40..42 back to the group
  });
  ASSERT_EQ(first.wait(), 0);

  auto info = topic->info();
  ASSERT_EQ(info.groups.size(), 1u);
  EXPECT_EQ(info.groups[0].committed, kAcked);
  EXPECT_EQ(info.groups[0].members, 0u);
  EXPECT_EQ(info.groups[0].unacked, kUnacked);

  // Start::latest is ignored for a group that exists: it continues where it stopped.
  mqtest::Child second([&]() -> int {
    auto t = mq::Topic::open("resume");
    if (!t) return child_fail(t.error().what());
    mq::Consumer c(*t, member(/*auto_ack=*/true, mq::Start::latest));
    for (std::uint64_t want = kAcked; want < kRecords; ++want) {
      auto m = c.poll(20s);
      if (!m) return child_fail(m.error().what());
      std::string why;
      auto head = decode_payload(m->payload(), &why);
      if (!head) return child_fail(why);
      if (m->offset() != want || head->seq != want)
        return child_fail("got offset " + std::to_string(m->offset()) + " want " + std::to_string(want));
    }
    auto extra = c.poll(0ns);
    if (extra) return child_fail("extra record at offset " + std::to_string(extra->offset()));
    return 0;
  });
  EXPECT_EQ(second.wait(), 0);
  info = topic->info();
  EXPECT_EQ(info.groups[0].committed, kRecords) << "auto-ack acks the last record at close";
  EXPECT_EQ(info.groups[0].unacked, 0u);
}

TEST_F(MultiProcess, BlockTopicFullAcrossProcessesLosesNothing) {
  constexpr std::size_t kCapacity = std::size_t{64} << 10;
  constexpr std::size_t kFiller = 200;
  constexpr std::uint64_t kAfter = 300;  // published once the consumer runs again
  auto topic = mq::Topic::create("full", {.capacity = kCapacity, .policy = mq::Policy::block});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  SharedMap shared(sizeof(std::uint64_t));
  std::uint64_t& expected = *reinterpret_cast<std::uint64_t*>(shared.data());  // 0 until the parent knows N

  mqtest::Pipe from_consumer;
  mqtest::Child consumer([&]() -> int {
    auto t = mq::Topic::open("full");
    if (!t) return child_fail(t.error().what());
    mq::Consumer c(*t, member(/*auto_ack=*/true));
    from_consumer.send("ready");
    std::uint64_t got = 0;
    auto progress_at = Clock::now();
    for (;;) {
      auto m = c.poll(20ms);
      if (!m) {
        if (m.error().code() != mq::Errc::timed_out) return child_fail(m.error().what());
        const std::uint64_t n = atomic_load(expected);
        if (n != 0 && got == n) break;
        if (Clock::now() - progress_at > kStallLimit) return child_fail("wedged after " + std::to_string(got));
        continue;
      }
      progress_at = Clock::now();
      std::string why;
      auto head = decode_payload(m->payload(), &why);
      if (!head) return child_fail(why);
      if (m->offset() != got || head->seq != got)
        return child_fail("got offset " + std::to_string(m->offset()) + " seq " + std::to_string(head->seq) +
                          " want " + std::to_string(got));
      ++got;
    }
    from_consumer.send("done " + std::to_string(got));
    return 0;
  });
  ASSERT_EQ(from_consumer.receive(), "ready");
  ASSERT_TRUE(stop_process(consumer.pid()));

  mqtest::Pipe from_producer;
  mqtest::Child producer([&]() -> int {
    auto t = mq::Topic::open("full");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t, mq::ProducerOptions{200ms});
    for (std::uint64_t seq = 0;; ++seq) {
      auto r = p.publish(numbered_payload(seq, kFiller));
      if (r) {
        if (*r != seq) return child_fail("offset " + std::to_string(*r) + " for seq " + std::to_string(seq));
        continue;
      }
      if (r.error().code() != mq::Errc::full) return child_fail(r.error().what());
      from_producer.send("full after " + std::to_string(seq));
      return 0;
    }
  });
  const std::string line = from_producer.receive();
  ASSERT_EQ(line.rfind("full after ", 0), 0u) << line;
  EXPECT_EQ(producer.wait(), 0);
  const std::uint64_t n = std::stoull(line.substr(11));
  const std::uint64_t record = mq::detail::record_bytes(0, 0, kHeadBytes + kFiller);
  EXPECT_GT((n + 1) * record, kCapacity) << "full before the ring was";
  EXPECT_LE(n * record, kCapacity);
  EXPECT_EQ(topic->info().latest, n);
  EXPECT_EQ(topic->info().groups[0].committed, 0u);

  ASSERT_TRUE(continue_process(consumer.pid()));
  mq::Producer more(*topic);
  for (std::uint64_t seq = n; seq < n + kAfter; ++seq) ASSERT_TRUE(more.publish(numbered_payload(seq, kFiller)));
  atomic_add(expected, n + kAfter);
  EXPECT_EQ(from_consumer.receive(), "done " + std::to_string(n + kAfter));
  EXPECT_EQ(consumer.wait(), 0);
  EXPECT_EQ(topic->info().groups[0].committed, n + kAfter);
}

TEST_F(MultiProcess, OverwriteLapsAcrossProcessesCountEveryLoss) {
  // Phase 1 publishes ~5 rings' worth before the reader starts (it is lapped for sure); phase 2 publishes while
  // it reads. Every offset is either delivered intact (its claim wrote the offset and a checksum into the payload)
  // or counted in exactly one `lost` report.
  constexpr std::size_t kCapacity = std::size_t{64} << 10;
  const std::uint64_t phase1 = 1500;
  const std::uint64_t phase2 = kSanitized ? 20'000 : 200'000;
  const std::uint64_t total = phase1 + phase2;
  auto topic = mq::Topic::create("laps", {.capacity = kCapacity, .policy = mq::Policy::overwrite});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));

  mqtest::Pipe to_parent;
  mqtest::Pipe to_child;
  mqtest::Child producer([&]() -> int {
    auto t = mq::Topic::open("laps");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    std::mt19937_64 rng(42);
    for (std::uint64_t seq = 0; seq < total; ++seq) {
      if (seq == phase1) {
        to_parent.send("phase1");
        if (to_child.receive() != "go") return child_fail("no go");
      }
      auto claim = p.claim(kHeadBytes + rng() % 256);
      if (!claim) return child_fail(claim.error().what());
      if (claim->offset() != seq) return child_fail("claim offset " + std::to_string(claim->offset()));
      encode_payload(claim->bytes(), 0, seq, claim->offset(), rng);
      if (auto c = std::move(*claim).commit(); !c) return child_fail(c.error().what());
    }
    return 0;
  });
  ASSERT_EQ(to_parent.receive(), "phase1");

  mq::Consumer reader(*topic, member(/*auto_ack=*/true));
  std::uint64_t expect_next = 0;  // the offset the next delivery must have, given every loss reported so far
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;
  std::uint64_t reports = 0;
  bool told_go = false;
  while (expect_next < total) {
    auto m = reader.poll(20s);
    if (!told_go) {
      to_child.send("go");
      told_go = true;
    }
    if (!m) {
      ASSERT_EQ(m.error().code(), mq::Errc::lost) << m.error().what() << " at " << expect_next;
      ASSERT_GT(m.error().lost(), 0u) << m.error().what();
      lost += m.error().lost();
      expect_next += m.error().lost();
      ++reports;
      continue;
    }
    ASSERT_EQ(m->offset(), expect_next) << "a record was skipped without a loss report, or a loss over-counted";
    std::string why;
    auto head = decode_payload(m->payload(), &why);
    ASSERT_TRUE(head) << "offset " << m->offset() << ": " << why;
    ASSERT_EQ(head->offset, m->offset()) << "bytes of another record";
    ASSERT_EQ(head->seq, m->offset());
    ++delivered;
    ++expect_next;
  }
  EXPECT_EQ(expect_next, total);
  EXPECT_EQ(delivered + lost, total);
  EXPECT_GT(lost, 0u) << "phase 1 alone laps the reader";
  EXPECT_GE(reports, 1u);
  auto extra = reader.poll(0ns);
  EXPECT_FALSE(extra);
  EXPECT_EQ(producer.wait(), 0);
  std::printf("overwrite: %llu delivered, %llu lost in %llu reports\n", static_cast<unsigned long long>(delivered),
              static_cast<unsigned long long>(lost), static_cast<unsigned long long>(reports));
}

}  // namespace
