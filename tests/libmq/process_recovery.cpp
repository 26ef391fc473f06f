// Peers that die (or merely stop) at the worst moment, across processes: a member killed while holding records, a
// producer killed between claim and commit (also in a claim that wraps the ring), a stopped producer that must not be
// robbed, and zombies (exited, not yet reaped), which count as dead. Every exact moment is a pipe handshake.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here, e.g. from test_util.hpp's
// SetUp; it must be silenced before the first standard header to take effect.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "scenario.hpp"
#include "test_point.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;

mq::TopicOptions block_topic(std::size_t capacity = std::size_t{64} << 10) {
  mq::TopicOptions o;
  o.capacity = capacity;
  o.policy = mq::Policy::block;
  return o;
}

mq::ConsumerOptions member(bool auto_ack = false, mq::Wait wait = mq::Wait::spin_futex) {
  return member_options("g", mq::Start::earliest, wait, auto_ack);
}

// Publishes `count` numbered records (seq first_seq, first_seq + 1, ...) and returns their offsets.
std::vector<mq::Offset> publish_numbered(mq::Producer& producer, std::uint64_t first_seq, std::size_t count,
                                         std::size_t filler = 64) {
  std::vector<mq::Offset> offsets;
  for (std::size_t i = 0; i < count; ++i) {
    auto r = producer.publish(numbered_payload(first_seq + i, filler));
    EXPECT_TRUE(r) << r.error().what();
    if (!r) break;
    offsets.push_back(*r);
  }
  return offsets;
}

// A child member that polls `k` records without acking them, says "holding FIRST LAST", then either blocks forever
// (to be killed) or exits at once without running any destructor (to become a zombie holding them).
enum class AfterHolding { block, exit_now };
std::function<int()> holding_member(mqtest::Pipe& pipe, const std::string& topic, std::size_t k, AfterHolding after) {
  return [&pipe, topic, k, after]() -> int {
    auto t = mq::Topic::open(topic);
    if (!t) return child_fail(t.error().what());
    auto c = mq::Consumer::make(*t, member(/*auto_ack=*/false));
    if (!c) return child_fail(c.error().what());
    std::vector<Got> got;
    if (auto e = take_records(*c, k, got, /*ack=*/false); !e.empty()) return child_fail(e);
    pipe.send("holding " + std::to_string(got.front().offset) + " " + std::to_string(got.back().offset));
    if (after == AfterHolding::exit_now) ::_exit(0);  // dies holding them: no destructor hands them back
    for (;;) ::pause();
  };
}

// Every offset in [0, n) exactly once; redelivered() exactly on [held_first, held_last].
void expect_each_once(const std::vector<Got>& got, std::uint64_t n, std::uint64_t held_first,
                      std::uint64_t held_last) {
  std::vector<int> seen(n, 0);
  for (const Got& g : got) {
    ASSERT_LT(g.offset, n);
    ++seen[g.offset];
    EXPECT_EQ(g.seq, g.offset) << "payload of another record at offset " << g.offset;
    EXPECT_EQ(g.redelivered, g.offset >= held_first && g.offset <= held_last) << "offset " << g.offset;
  }
  for (std::uint64_t i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "offset " << i << " delivered " << seen[i] << "x";
}

void expect_drained(mq::Consumer& consumer, const mq::Topic& topic, std::uint64_t n) {
  auto more = consumer.poll(std::chrono::milliseconds(0));
  EXPECT_FALSE(more) << "an extra record: offset " << more->offset();
  if (!more) {
    EXPECT_EQ(more.error().code(), mq::Errc::timed_out) << more.error().what();
  }
  const auto info = topic.info();
  ASSERT_EQ(info.groups.size(), 1u);
  EXPECT_EQ(info.groups[0].committed, n);
  EXPECT_EQ(info.groups[0].unacked, 0u);
  EXPECT_EQ(info.latest, n);
}

// ---------------------------------------------------------------------------------------------------------------

TEST_F(MultiProcess, MemberKilledWhileHoldingRecordsIsRedelivered) {
  constexpr std::uint64_t kRecords = 200;
  constexpr std::size_t kHeld = 10;
  auto topic = mq::Topic::create("held", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, kRecords).size(), kRecords);
  // The live member joins first but polls only once the other has died.
  mq::Consumer live(*topic, member());

  mqtest::Pipe pipe;
  mqtest::Child holder(holding_member(pipe, "held", kHeld, AfterHolding::block));
  ASSERT_EQ(pipe.receive(), "holding 0 9");
  holder.kill9();
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);

  // No explicit recovery: the live member takes 10..199, runs dry, and its waiting poll's slow path hands it the dead
  // member's records.
  std::vector<Got> got;
  ASSERT_EQ(take_records(live, kRecords, got), "");
  expect_each_once(got, kRecords, 0, kHeld - 1);
  expect_drained(live, *topic, kRecords);
  EXPECT_EQ(topic->info().groups[0].members, 1u);
}

TEST_F(MultiProcess, MemberKilledWhileHoldingRecordsIsRedeliveredFirstAfterRecoverDead) {
  constexpr std::uint64_t kRecords = 100;
  constexpr std::size_t kHeld = 25;
  auto topic = mq::Topic::create("held2", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, kRecords).size(), kRecords);

  mqtest::Pipe pipe;
  mqtest::Child holder(holding_member(pipe, "held2", kHeld, AfterHolding::block));
  ASSERT_EQ(pipe.receive(), "holding 0 24");
  holder.kill9();
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);
  EXPECT_EQ(topic->recover_dead(), 1u);
  EXPECT_EQ(topic->info().groups[0].unacked, kHeld);
  EXPECT_EQ(topic->info().groups[0].committed, 0u);
  EXPECT_EQ(topic->recover_dead(), 0u) << "recovered twice";

  // Another member process gets the redeliveries before anything new: offsets 0..24 flagged, then 25..99.
  mqtest::Child next_member([&]() -> int {
    auto t = mq::Topic::open("held2");
    if (!t) return child_fail(t.error().what());
    mq::Consumer c(*t, member());
    std::vector<Got> got;
    if (auto e = take_records(c, kRecords, got); !e.empty()) return child_fail(e);
    for (std::size_t i = 0; i < got.size(); ++i)
      if (got[i].offset != i || got[i].redelivered != (i < kHeld) || got[i].seq != i)
        return child_fail("record " + std::to_string(i) + ": offset " + std::to_string(got[i].offset) +
                          " redelivered " + std::to_string(got[i].redelivered));
    return 0;
  });
  EXPECT_EQ(next_member.wait(), 0);
  const auto info = topic->info();
  EXPECT_EQ(info.groups[0].committed, kRecords);
  EXPECT_EQ(info.groups[0].unacked, 0u);
  EXPECT_EQ(info.groups[0].members, 0u);
}

// A member parked on the topic's word (an event loop's wait: prepare_wait, then a futex wait it does not wake from
// by itself) must be woken when a recovery hands it a dead member's records; nothing else would wake it while no
// producer publishes (the Node consumer's heir waited for ever, bench load made it visible).
TEST_F(MultiProcess, ARecoveryWakesAMemberParkedOnTheTopicWord) {
  constexpr std::uint64_t kRecords = 6;
  auto topic = mq::Topic::create("parked", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, kRecords).size(), kRecords);

  mqtest::Pipe pipe;
  mqtest::Child holder(holding_member(pipe, "parked", kRecords, AfterHolding::block));
  ASSERT_EQ(pipe.receive(), "holding 0 5");
  mq::Consumer heir(*topic, member());
  auto empty = heir.poll(std::chrono::milliseconds(0));
  ASSERT_FALSE(empty) << "the holder took them all, offset " << empty->offset();
  const auto word = heir.prepare_wait();
  ASSERT_TRUE(word) << "nothing to take yet: the heir parks";
  holder.kill9();
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);

  ASSERT_EQ(topic->recover_dead(), 1u);
  EXPECT_NE(std::atomic_ref<const std::uint32_t>(*word->word).load(), word->value)
      << "the recovery handed the parked member records without waking its word";
  heir.done_waiting();
  std::vector<Got> got;
  ASSERT_EQ(take_records(heir, kRecords, got), "");
  expect_each_once(got, kRecords, 0, kRecords - 1);
}

TEST_F(MultiProcess, ARecovererThatDiesMidMoveHandsEachRunOutOnce) {
  constexpr std::uint64_t kRecords = 100;
  constexpr std::size_t kHeld = 25;
  auto topic = mq::Topic::create("held3", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, kRecords).size(), kRecords);
  mqtest::Pipe pipe;
  mqtest::Child holder(holding_member(pipe, "held3", kHeld, AfterHolding::block));
  ASSERT_EQ(pipe.receive(), "holding 0 24");
  holder.kill9();
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);
  // A recoverer (mqd, or any client) dies after moving 3 of the dead member's 25 runs to the redelivery list.
  mqtest::Child recoverer([&]() -> int {
    auto t = mq::Topic::open("held3");
    if (!t) return child_fail(t.error().what());
    mq::detail::arm_test_point(mq::detail::TestPoint::redelivery_moving, 3);
    (void)t->recover_dead();
    return child_fail("not killed while moving the runs");
  });
  EXPECT_EQ(recoverer.wait(), 128 + SIGKILL);
  // The next recovery finishes the move; every record then reaches the group once: 0..24 redelivered, in order.
  EXPECT_GE(topic->recover_dead(), 1u);
  mqtest::Child next_member([&]() -> int {
    auto t = mq::Topic::open("held3");
    if (!t) return child_fail(t.error().what());
    mq::Consumer c(*t, member());
    std::vector<Got> got;
    if (auto e = take_records(c, kRecords, got); !e.empty()) return child_fail(e);
    for (std::size_t i = 0; i < got.size(); ++i)
      if (got[i].offset != i || got[i].redelivered != (i < kHeld))
        return child_fail("record " + std::to_string(i) + ": offset " + std::to_string(got[i].offset) +
                          " redelivered " + std::to_string(got[i].redelivered) + " (a run handed out twice?)");
    if (auto extra = c.poll(200ms); extra)
      return child_fail("offset " + std::to_string(extra->offset()) + " was handed out a second time");
    return 0;
  });
  EXPECT_EQ(next_member.wait(), 0);
  const auto info = topic->info();
  EXPECT_EQ(info.groups[0].committed, kRecords);
  EXPECT_EQ(info.groups[0].unacked, 0u);
}

TEST_F(MultiProcess, ZombieMemberCountsAsDead) {
  constexpr std::uint64_t kRecords = 60;
  constexpr std::size_t kHeld = 12;
  auto topic = mq::Topic::create("zombie-member", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, kRecords).size(), kRecords);

  mqtest::Pipe pipe;
  mqtest::Child holder(holding_member(pipe, "zombie-member", kHeld, AfterHolding::exit_now));
  ASSERT_EQ(pipe.receive(), "holding 0 11");
  ASSERT_TRUE(wait_zombie(holder.pid()));  // exited, NOT reaped
  ASSERT_EQ(proc_state(holder.pid()), 'Z');
  EXPECT_EQ(topic->recover_dead(), 1u);
  ASSERT_EQ(proc_state(holder.pid()), 'Z') << "still a zombie while its records were recovered";

  mq::Consumer live(*topic, member());
  std::vector<Got> got;
  ASSERT_EQ(take_records(live, kRecords, got), "");
  expect_each_once(got, kRecords, 0, kHeld - 1);
  for (std::size_t i = 0; i < kHeld; ++i) EXPECT_EQ(got[i].offset, i) << "redeliveries come first";
  expect_drained(live, *topic, kRecords);
  EXPECT_EQ(holder.wait(), 0);
}

TEST_F(MultiProcess, ProducerKilledBetweenClaimAndCommitBecomesSkipRecord) {
  auto topic = mq::Topic::create("dead-claim", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, 5), (std::vector<mq::Offset>{0, 1, 2, 3, 4}));

  mqtest::Pipe pipe;
  mqtest::Child dying([&]() -> int {
    auto t = mq::Topic::open("dead-claim");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    auto claim = p.claim(512);
    if (!claim) return child_fail(claim.error().what());
    // Half the bytes of a valid payload: a reader must never see them.
    const auto full = numbered_payload(999, 512 - kHeadBytes, 0, claim->offset());
    std::memcpy(claim->bytes().data(), full.data(), full.size() / 2);
    pipe.send("claimed " + std::to_string(claim->offset()));
    for (;;) ::pause();
  });
  ASSERT_EQ(pipe.receive(), "claimed 5");
  dying.kill9();
  EXPECT_EQ(dying.wait(), 128 + SIGKILL);

  // Another producer goes on; the consumer skips the dead claim (on its slow path) and does not wedge.
  ASSERT_EQ(publish_numbered(producer, 5, 10).front(), 6u);
  mq::Consumer consumer(*topic, member());
  std::vector<Got> got;
  ASSERT_EQ(take_records(consumer, 15, got), "");
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].offset, i < 5 ? i : i + 1) << "record " << i;
    EXPECT_EQ(got[i].seq, i);
    EXPECT_FALSE(got[i].redelivered);
  }
  expect_drained(consumer, *topic, 16);
  const auto info = topic->info();
  EXPECT_EQ(info.producers, 1u) << "the dead producer's slot is free again";
  EXPECT_EQ(info.stalled_producers, 0u);
  EXPECT_EQ(topic->recover_dead(), 0u);
}

TEST_F(MultiProcess, ProducerKilledInWrappingClaimBecomesPadAndSkip) {
  // 60 records of 1088 bytes end 256 bytes before the ring's end: the next claim pads to the end and starts the
  // ring's next lap in the same CAS. Its producer dies there.
  constexpr std::size_t kCapacity = std::size_t{64} << 10;
  constexpr std::size_t kFiller = 1000 - kHeadBytes;  // payload 1000 bytes -> record 1088 bytes
  auto topic = mq::Topic::create("dead-wrap", block_topic(kCapacity));
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, 60, kFiller).size(), 60u);
  ASSERT_EQ(topic->info().bytes_written, kCapacity - 256);
  mq::Consumer consumer(*topic, member());
  std::vector<Got> got;
  ASSERT_EQ(take_records(consumer, 60, got), "");

  mqtest::Pipe pipe;
  mqtest::Child dying([&]() -> int {
    auto t = mq::Topic::open("dead-wrap");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    auto claim = p.claim(300);
    if (!claim) return child_fail(claim.error().what());
    pipe.send("claimed " + std::to_string(claim->offset()) + " written " +
              std::to_string(t->info().bytes_written));
    for (;;) ::pause();
  });
  // pad 256 + record 40 + 300 in whole lines (384) = 640 bytes claimed
  ASSERT_EQ(pipe.receive(), "claimed 60 written " + std::to_string(kCapacity + 384));
  dying.kill9();
  EXPECT_EQ(dying.wait(), 128 + SIGKILL);

  ASSERT_EQ(publish_numbered(producer, 60, 5, kFiller).front(), 61u);
  got.clear();
  ASSERT_EQ(take_records(consumer, 5, got), "");
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].offset, 61 + i);
    EXPECT_EQ(got[i].seq, 60 + i);
  }
  expect_drained(consumer, *topic, 66);
}

TEST_F(MultiProcess, ZombieProducerCountsAsDead) {
  auto topic = mq::Topic::create("zombie-claim", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, 3).size(), 3u);

  mqtest::Pipe pipe;
  mqtest::Child dying([&]() -> int {
    auto t = mq::Topic::open("zombie-claim");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    auto claim = p.claim(200);
    if (!claim) return child_fail(claim.error().what());
    pipe.send("claimed " + std::to_string(claim->offset()));
    ::_exit(0);  // exits with the claim open: no destructor aborts it
  });
  ASSERT_EQ(pipe.receive(), "claimed 3");
  ASSERT_TRUE(wait_zombie(dying.pid()));
  ASSERT_EQ(proc_state(dying.pid()), 'Z');
  EXPECT_EQ(topic->recover_dead(), 1u);
  ASSERT_EQ(proc_state(dying.pid()), 'Z');

  ASSERT_EQ(publish_numbered(producer, 3, 4).front(), 4u);
  mq::Consumer consumer(*topic, member());
  std::vector<Got> got;
  ASSERT_EQ(take_records(consumer, 7, got), "");
  const std::vector<mq::Offset> want{0, 1, 2, 4, 5, 6, 7};
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].offset, want[i]);
  expect_drained(consumer, *topic, 8);
  EXPECT_EQ(dying.wait(), 0);
}

TEST_F(MultiProcess, StoppedProducerIsFlaggedNeverRobbed) {
  auto topic = mq::Topic::create("stopped-claim", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, 5).size(), 5u);

  mqtest::Pipe to_parent;
  mqtest::Pipe to_child;
  mqtest::Child slow([&]() -> int {
    auto t = mq::Topic::open("stopped-claim");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    auto claim = p.claim(kHeadBytes + 300);
    if (!claim) return child_fail(claim.error().what());
    const auto full = numbered_payload(5, 300, 0, claim->offset());
    std::memcpy(claim->bytes().data(), full.data(), full.size() / 2);
    to_parent.send("claimed " + std::to_string(claim->offset()));
    if (to_child.receive() != "commit") return child_fail("no commit order");
    std::memcpy(claim->bytes().data() + full.size() / 2, full.data() + full.size() / 2, full.size() - full.size() / 2);
    auto committed = std::move(*claim).commit();
    to_parent.send(committed ? "committed " + std::to_string(*committed)
                             : "commit failed: " + std::string(committed.error().what()));
    return 0;
  });
  ASSERT_EQ(to_parent.receive(), "claimed 5");
  ASSERT_TRUE(stop_process(slow.pid()));
  ASSERT_EQ(publish_numbered(producer, 6, 5).front(), 6u);

  mq::Consumer consumer(*topic, member());
  std::vector<Got> got;
  ASSERT_EQ(take_records(consumer, 5, got), "");
  // The stopped claim holds readers back: nothing after it is delivered yet, and it is not recovered.
  auto blocked = consumer.poll(std::chrono::milliseconds(200));
  ASSERT_FALSE(blocked) << "offset " << blocked->offset() << " delivered past a live producer's open claim";
  EXPECT_EQ(blocked.error().code(), mq::Errc::timed_out) << blocked.error().what();
  EXPECT_GE(topic->info().stalled_producers, 1u);
  EXPECT_EQ(topic->recover_dead(), 0u) << "a stopped producer was robbed";
  EXPECT_EQ(proc_state(slow.pid()), 'T');

  ASSERT_TRUE(continue_process(slow.pid()));
  to_child.send("commit");
  EXPECT_EQ(to_parent.receive(), "committed 5");
  EXPECT_EQ(slow.wait(), 0);
  ASSERT_EQ(take_records(consumer, 6, got), "");
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].offset, i);
    EXPECT_EQ(got[i].seq, i) << "the late commit carries the full payload";
  }
  EXPECT_EQ(got[5].claimed_offset, 5u);
  expect_drained(consumer, *topic, 11);
  EXPECT_EQ(topic->info().stalled_producers, 0u);
}

// A member killed while asleep on the topic's futex word must not stay counted as a sleeper after recovery (or every
// later publish would pay a FUTEX_WAKE syscall for nobody).
TEST_F(MultiProcess, MemberKilledWhileAsleepLeavesNoSleeperMark) {
  auto topic = mq::Topic::create("dead-sleeper", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  const auto& header = topic->segment()->header();
  mqtest::Child sleeper([&]() -> int {
    auto t = mq::Topic::open("dead-sleeper");
    if (!t) return child_fail(t.error().what());
    mq::Consumer c(*t, member(/*auto_ack=*/true, mq::Wait::futex));
    auto m = c.poll(std::chrono::seconds(120));
    return child_fail(m ? "got a record nobody published" : m.error().what());
  });
  ASSERT_TRUE(eventually([&] { return sleeping_members(header) == 1; })) << "the member never slept";
  sleeper.kill9();
  EXPECT_EQ(sleeper.wait(), 128 + SIGKILL);
  EXPECT_EQ(topic->recover_dead(), 1u);
  EXPECT_EQ(sleeping_members(header), 0u) << "a dead member still counts as asleep";
  const auto wakes = header.wake_seq.load();
  mq::Producer producer(*topic);
  ASSERT_TRUE(producer.publish(numbered_payload(0)));
  EXPECT_EQ(header.wake_seq.load(), wakes) << "a publish woke sleepers although none is left";
}

// The same for a producer killed while asleep waiting for room in a full block topic: recovery clears its mark, or
// every later ack would pay a FUTEX_WAKE syscall for nobody.
TEST_F(MultiProcess, ProducerKilledWhileWaitingForRoomLeavesNoWaiterMark) {
  auto topic = mq::Topic::create("dead-waiter", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  const auto& header = topic->segment()->header();
  {
    mq::Producer filler(*topic, {.block_timeout = std::chrono::milliseconds(0)});
    std::uint64_t n = 0;
    while (filler.publish(numbered_payload(n))) ++n;
    ASSERT_GT(n, 0u);
  }
  mqtest::Child waiter([&]() -> int {
    auto t = mq::Topic::open("dead-waiter");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t, {.block_timeout = std::chrono::seconds(120)});
    auto sent = p.publish(numbered_payload(999));
    return child_fail(sent ? "published into a full topic nobody drained" : sent.error().what());
  });
  ASSERT_TRUE(eventually([&] { return header.room_waiters.load() != 0; })) << "the producer never slept";
  waiter.kill9();
  EXPECT_EQ(waiter.wait(), 128 + SIGKILL);
  (void)topic->recover_dead();
  EXPECT_EQ(header.room_waiters.load(), 0u) << "a dead producer still counts as waiting for room";
  const auto wakes = header.room_seq.load();
  mq::Consumer consumer(*topic, member());
  auto m = consumer.poll(std::chrono::seconds(10));
  ASSERT_TRUE(m) << m.error().what();
  ASSERT_TRUE(consumer.ack(std::move(*m)));
  EXPECT_EQ(header.room_seq.load(), wakes) << "an ack woke producers although none is left";
}

}  // namespace

namespace {

// A member killed while it holds two runs taken by poll_batch (20 and 10 records, unacked): both go back to the
// group whole and reach the live member first, flagged redelivered; nothing twice, nothing lost.
TEST_F(MultiProcess, MemberKilledHoldingBatchRunsHasThemRedeliveredWhole) {
  constexpr std::uint64_t kRecords = 100;
  auto topic = mq::Topic::create("held-runs", block_topic());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  ASSERT_EQ(publish_numbered(producer, 0, kRecords).size(), kRecords);
  mqtest::Pipe pipe;
  mqtest::Child holder([&]() -> int {
    auto t = mq::Topic::open("held-runs");
    if (!t) return child_fail(t.error().what());
    mq::Consumer c(*t, member(/*auto_ack=*/false));
    std::vector<mq::Message> first, second;
    auto a = c.poll_batch(first, 20, std::chrono::seconds(5));
    auto b = c.poll_batch(second, 10, std::chrono::seconds(5));
    if (!a || !b || *a != 20 || *b != 10) return child_fail("could not take two runs");
    pipe.send("holding " + std::to_string(first.front().offset()) + " " + std::to_string(second.back().offset()) +
              " in " + std::to_string(c.unacked()) + " runs");
    for (;;) ::pause();
  });
  ASSERT_EQ(pipe.receive(), "holding 0 29 in 2 runs");
  holder.kill9();
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);
  EXPECT_EQ(topic->recover_dead(), 1u);
  EXPECT_EQ(topic->info().groups[0].unacked, 30u) << "both runs wait for redelivery";

  mq::Consumer live(*topic, member());
  std::vector<Got> got;
  ASSERT_EQ(take_records(live, kRecords, got), "");
  expect_each_once(got, kRecords, 0, 29);
  for (std::size_t i = 0; i < 30; ++i) EXPECT_EQ(got[i].offset, i) << "redeliveries come first, in order";
  expect_drained(live, *topic, kRecords);
}

}  // namespace
