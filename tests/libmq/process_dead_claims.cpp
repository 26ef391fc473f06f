// A producer that dies mid-claim on a ring that has wrapped: the claimed header position holds whatever an earlier
// lap left there (payload bytes of any value, or an old header), and recovery must still turn the claim into a skip
// record so that every reader moves on. Each trial kills a forked producer at one exact point (libmq's test points,
// or a fault inside publish's copy) after filling the ring with chosen stale bytes, then checks that the topic flows.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <map>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "scenario.hpp"
#include "test_point.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;
using mq::detail::TestPoint;

constexpr std::size_t kCapacity = std::size_t{64} << 10;
constexpr std::size_t kBigPayload = 4000;  // a 4096-byte record: records sit on 4 KiB boundaries
constexpr std::size_t kSmallPayload = 100;  // a 192-byte record: its header lands inside an older record's bytes

// What an earlier lap left at the position the dying producer claims.
enum class Stale { ff, random, old_header, zero };
// Where the producer dies. The wrap_* points die in a claim that pads to the ring's end and starts the next lap.
enum class Death { after_claim, inside_copy, header_written, wrap_claim_made, wrap_pad_written };

std::string stale_name(Stale s) {
  switch (s) {
    case Stale::ff: return "ff";
    case Stale::random: return "random";
    case Stale::old_header: return "old_header";
    case Stale::zero: return "zero";
  }
  return "?";
}

std::string death_name(Death d) {
  switch (d) {
    case Death::after_claim: return "after_claim";
    case Death::inside_copy: return "inside_copy";
    case Death::header_written: return "header_written";
    case Death::wrap_claim_made: return "wrap_claim_made";
    case Death::wrap_pad_written: return "wrap_pad_written";
  }
  return "?";
}

bool wraps(Death d) { return d == Death::wrap_claim_made || d == Death::wrap_pad_written; }

// Polls until the record with offset `last` arrived (a wait of 10 s without a record fails: a wedge), then checks
// that nothing follows it. Returns "" or what went wrong; the offsets seen go to `offsets`.
std::string drain_to(mq::Consumer& consumer, mq::Offset last, std::vector<mq::Offset>& offsets) {
  while (offsets.empty() || offsets.back() < last) {
    auto m = consumer.poll(10s);
    if (!m) return "after offset " + (offsets.empty() ? std::string("none") : std::to_string(offsets.back())) + ": " +
                  m.error().what();
    offsets.push_back(m->offset());
  }
  auto extra = consumer.poll(mqtest::kNow);
  if (extra) return "a record after the last: offset " + std::to_string(extra->offset());
  return extra.error().code() == mq::Errc::timed_out ? "" : std::string(extra.error().what());
}

class DeadClaimOnWrappedRing
    : public MultiProcess,
      public ::testing::WithParamInterface<std::tuple<Stale, Death, mq::Policy, bool /*group before*/>> {
 protected:
  // One trial: fill, `small` records of 100 bytes (or up to the ring's end for the wrap deaths), the death, one more
  // record, recovery, and the checks.
  void trial(std::size_t small, int round);
};

void DeadClaimOnWrappedRing::trial(std::size_t small, int round) {
  const auto [stale, death, policy, group_before] = GetParam();
  const std::string name = "wedge" + std::to_string(round);
  mq::TopicOptions options;
  options.capacity = kCapacity;
  options.policy = policy;
  auto topic = mq::Topic::create(name, options);
  ASSERT_TRUE(topic) << topic.error().what();
  std::optional<mq::Consumer> consumer;
  if (group_before) consumer.emplace(*topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, true));
  mq::Producer producer(*topic);
  std::mt19937_64 rng(static_cast<std::uint64_t>(round) * 1009 + 17);
  auto publish = [&](std::size_t size, int fill) {
    std::vector<std::byte> payload(size);
    for (auto& b : payload) b = static_cast<std::byte>(fill >= 0 ? fill : static_cast<int>(rng() & 0xff));
    auto r = producer.publish(payload);
    ASSERT_TRUE(r) << r.error().what();
    if (consumer) {
      auto m = consumer->poll(5s);
      ASSERT_TRUE(m) << m.error().what();
      ASSERT_EQ(m->offset(), *r);
    }
  };
  // The earlier laps.
  switch (stale) {
    case Stale::ff:
    case Stale::random:
      for (int i = 0; i < 47; ++i) publish(kBigPayload, stale == Stale::ff ? 0xff : -1);  // 2 laps + 15 records
      break;
    case Stale::old_header:
      for (int i = 0; i < 400; ++i) publish(kSmallPayload, 0);  // 341 a lap: every next position holds an old header
      break;
    case Stale::zero:
      break;
  }
  if (wraps(death)) {
    while ((topic->info().bytes_written & (kCapacity - 1)) != kCapacity - 64) publish(kSmallPayload, 0x11);
  } else {
    for (std::size_t i = 0; i < small; ++i) publish(kSmallPayload, 0x22);
  }
  const mq::Offset dead_offset = topic->info().latest;

  mqtest::Child dying([&, death = death]() -> int {
    auto t = mq::Topic::open(name);
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    switch (death) {
      case Death::after_claim: {
        auto claim = p.claim(kSmallPayload);
        if (!claim) return child_fail(claim.error().what());
        std::memset(claim->bytes().data(), 0x33, kSmallPayload / 2);
        ::kill(::getpid(), SIGKILL);
        break;
      }
      case Death::inside_copy: {
        // The source runs into a page without access: the copy into the ring faults half way.
        auto* pages = static_cast<std::byte*>(::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (pages == MAP_FAILED || ::mprotect(pages + 4096, 4096, PROT_NONE) != 0) return child_fail("mmap");
        std::memset(pages, 0x44, 4096);
        ::signal(SIGSEGV, SIG_DFL);  // die of the fault itself, also under ASan (whose handler would exit 1)
        (void)p.publish(std::span<const std::byte>(pages + 4096 - kSmallPayload / 2, kSmallPayload));
        return child_fail("publish copied from an unreadable page");
      }
      case Death::header_written:
        mq::detail::arm_test_point(TestPoint::header_written);
        (void)p.publish(numbered_payload(1, kSmallPayload - kHeadBytes));
        return child_fail("not killed at header_written");
      case Death::wrap_claim_made:
      case Death::wrap_pad_written:
        mq::detail::arm_test_point(death == Death::wrap_claim_made ? TestPoint::claim_made : TestPoint::pad_written);
        (void)p.publish(numbered_payload(1, kSmallPayload - kHeadBytes));
        return child_fail("not killed in the wrapping claim");
    }
    return child_fail("survived");
  });
  const int status = dying.wait(60s);
  ASSERT_GT(status, 128) << "the producer was meant to die (exit " << status << ")";
  ASSERT_EQ(topic->info().latest, dead_offset + 1) << "the dying producer's claim was made";

  publish(kSmallPayload, 0x55);  // (with a group member: waits for it, so its poll must pass the dead claim)
  if (HasFatalFailure()) {
    ADD_FAILURE() << "wedged: " << dump_topic(*topic);
    return;
  }
  (void)topic->recover_dead();
  EXPECT_EQ(topic->info().producers, 1u) << "the dead producer's slot is free again";

  // A group that joins now at the earliest record reads through the dead claim to the end.
  mq::Consumer late(*topic, member_options("late", mq::Start::earliest, mq::Wait::spin_futex, true));
  std::vector<mq::Offset> seen;
  ASSERT_EQ(drain_to(late, dead_offset + 1, seen), "") << dump_topic(*topic);
  EXPECT_EQ(seen.back(), dead_offset + 1);
  EXPECT_TRUE(std::find(seen.begin(), seen.end(), dead_offset) == seen.end()) << "the dead claim was delivered";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_TRUE(topic->info().stuck.empty());
}

TEST_P(DeadClaimOnWrappedRing, BecomesSkipRecordAndTopicFlows) {
  const auto death = std::get<1>(GetParam());
  const std::vector<std::size_t> smalls = wraps(death) ? std::vector<std::size_t>{0} : std::vector<std::size_t>{1, 7, 20};
  int round = 0;
  for (const std::size_t small : smalls) {
    SCOPED_TRACE("small records before the claim: " + std::to_string(small));
    trial(small, round++);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllStalesAndDeaths, DeadClaimOnWrappedRing,
    ::testing::Combine(::testing::Values(Stale::ff, Stale::random, Stale::old_header, Stale::zero),
                       ::testing::Values(Death::after_claim, Death::inside_copy, Death::header_written,
                                         Death::wrap_claim_made, Death::wrap_pad_written),
                       ::testing::Values(mq::Policy::block, mq::Policy::overwrite), ::testing::Bool()),
    [](const auto& info) {
      return stale_name(std::get<0>(info.param)) + "_" + death_name(std::get<1>(info.param)) + "_" +
             (std::get<2>(info.param) == mq::Policy::block ? "block" : "overwrite") +
             (std::get<3>(info.param) ? "_group" : "_nogroup");
    });

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The property: on a small ring that wraps all the time, with random bytes everywhere, producers die at a random
// point of a random claim (or live and commit), thousands of times; recovery runs after each death. Both groups
// always reach the tail, every committed record arrives exactly once per group with its checksum intact, and a claim
// whose producer died after its tail CAS and before its commit is a skip record (its offset never arrives).

namespace {

// The points a producer passes in order; `none` lets it commit.
constexpr std::array kProducerPoints = {TestPoint::claim_announced, TestPoint::claim_made,     TestPoint::pad_written,
                                        TestPoint::payload_written, TestPoint::header_written, TestPoint::committed};

class DeadClaimProperty : public MultiProcess, public ::testing::WithParamInterface<mq::Policy> {};

// Drains `consumer` up to the topic's latest offset (skip records included), recording payload checks into `seen`.
std::string drain_group(mq::Consumer& consumer, const std::string& group, const mq::Topic& topic,
                        std::map<mq::Offset, int>& seen) {
  const mq::Offset latest = topic.info().latest;
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    auto m = consumer.poll(1ms);
    if (m) {
      std::string why;
      if (!decode_payload(m->payload(), &why)) return "offset " + std::to_string(m->offset()) + ": " + why;
      ++seen[m->offset()];
      continue;
    }
    if (m.error().code() != mq::Errc::timed_out) return m.error().what();
    const auto info = topic.info();
    for (const auto& g : info.groups)
      if (g.name == group && g.next == latest && g.unacked == 0) return "";
    if (Clock::now() > deadline) return "wedged before offset " + std::to_string(latest) + "\n" + dump_topic(topic);
  }
}

}  // namespace

TEST_P(DeadClaimProperty, GroupsReachTheTailAndEveryLostClaimIsASkip) {
  const mq::Policy policy = GetParam();
  const int trials = kSanitized ? 250 : 1500;
  mq::TopicOptions options;
  options.capacity = kCapacity;
  options.policy = policy;
  auto topic = mq::Topic::create("property", options);
  ASSERT_TRUE(topic) << topic.error().what();
  mq::Consumer first(*topic, member_options("first", mq::Start::earliest, mq::Wait::spin_futex, true));
  mq::Consumer second(*topic, member_options("second", mq::Start::earliest, mq::Wait::spin_futex, true));
  mq::Producer producer(*topic);
  std::mt19937_64 rng(20261203);
  const std::size_t max_payload = topic->info().max_message;
  std::set<mq::Offset> must_arrive, must_not_arrive;
  std::map<std::string, int> deaths;
  std::map<mq::Offset, int> seen_first, seen_second;
  std::uint64_t seq = 0;
  for (int trial = 0; trial < trials; ++trial) {
    // The parent's own records (at most 24 KiB a trial with the child's: the groups drain every trial, so an
    // overwrite topic never laps them).
    for (int n = static_cast<int>(rng() % 3); n > 0; --n) {
      const auto payload = numbered_payload(seq++, rng() % 8000);
      auto r = producer.publish(payload);
      ASSERT_TRUE(r) << r.error().what();
      must_arrive.insert(*r);
    }
    const mq::Offset before = topic->info().latest;
    const std::size_t point = rng() % (kProducerPoints.size() + 1);  // == size(): no kill, it commits
    // One record (publish or claim), or a batch of 2..6 (publish_batch or claim_batch, each record up to 4 KiB).
    const int how_published = static_cast<int>(rng() % 4);  // 0 publish, 1 claim, 2 publish_batch, 3 claim_batch
    const std::size_t records = how_published < 2 ? 1 : 2 + rng() % 5;
    std::vector<std::size_t> sizes;
    for (std::size_t i = 0; i < records; ++i)
      sizes.push_back(kHeadBytes + rng() % ((records == 1 ? max_payload : 4096) - kHeadBytes + 1));
    const std::uint64_t child_seq = seq;
    seq += records;
    mqtest::Child child([&]() -> int {
      auto t = mq::Topic::open("property");
      if (!t) return child_fail(t.error().what());
      mq::Producer p(*t);
      if (point < kProducerPoints.size()) mq::detail::arm_test_point(kProducerPoints[point]);
      std::vector<std::vector<std::byte>> payloads;
      for (std::size_t i = 0; i < records; ++i) payloads.push_back(numbered_payload(child_seq + i, sizes[i] - kHeadBytes, 1));
      if (how_published == 1) {
        auto one = p.claim(sizes[0]);
        if (!one) return child_fail(one.error().what());
        std::memcpy(one->bytes().data(), payloads[0].data(), sizes[0]);
        auto c = std::move(*one).commit();
        return c ? 0 : child_fail(c.error().what());
      }
      if (how_published == 3) {
        auto claim = p.claim_batch(sizes);
        if (!claim) return child_fail(claim.error().what());
        for (std::size_t i = 0; i < records; ++i) std::memcpy(claim->bytes(i).data(), payloads[i].data(), sizes[i]);
        auto c = std::move(*claim).commit();
        return c ? 0 : child_fail(c.error().what());
      }
      if (how_published == 0) {
        auto r = p.publish(payloads[0]);
        return r ? 0 : child_fail(r.error().what());
      }
      std::vector<std::span<const std::byte>> spans(payloads.begin(), payloads.end());
      auto r = p.publish_batch(spans);
      return r ? 0 : child_fail(r.error().what());
    });
    const int status = child.wait(60s);
    ASSERT_TRUE(status == 0 || status == 128 + SIGKILL) << "trial " << trial << ": child exit " << status;
    const mq::Offset after = topic->info().latest;
    ASSERT_TRUE(after == before || after == before + records) << "one claim for all " << records << " records";
    const std::string how = status == 0 ? "lived" : std::string(mq::detail::test_point_name(kProducerPoints[point]));
    ++deaths[how];
    if (after == before + records) {
      // Committed (it lived, or died after a record's seq exchange: a batch publishes its records in order, and
      // `committed` kills after the first): those must arrive. The rest of a claim whose producer died between its
      // CAS and its commit must be skip records.
      const std::size_t arrived = status == 0 ? records : kProducerPoints[point] == TestPoint::committed ? 1 : 0;
      for (std::size_t i = 0; i < records; ++i) (i < arrived ? must_arrive : must_not_arrive).insert(before + i);
    }
    (void)topic->recover_dead();
    ASSERT_EQ(drain_group(first, "first", *topic, seen_first), "") << "trial " << trial << " (" << how << ")";
    ASSERT_EQ(drain_group(second, "second", *topic, seen_second), "") << "trial " << trial << " (" << how << ")";
  }
  for (const auto* seen : {&seen_first, &seen_second}) {
    for (const mq::Offset o : must_arrive) EXPECT_EQ(seen->count(o) ? seen->at(o) : 0, 1) << "offset " << o;
    for (const mq::Offset o : must_not_arrive) EXPECT_EQ(seen->count(o), 0u) << "the dead claim at " << o << " arrived";
    EXPECT_EQ(seen->size(), must_arrive.size());
  }
  const auto info = topic->info();
  EXPECT_EQ(info.latest, must_arrive.size() + must_not_arrive.size()) << "an offset neither arrived nor was lost";
  EXPECT_EQ(info.producers, 1u) << "dead producers' slots are free";
  EXPECT_TRUE(info.stuck.empty());
  std::string tally;
  for (const auto& [how, n] : deaths) tally += how + "=" + std::to_string(n) + " ";
  std::printf("trials %d: %s; skip records %zu\n", trials, tally.c_str(), must_not_arrive.size());
  EXPECT_GT(deaths["pad_written"], 0) << "no claim died in its pad: the ring did not wrap under a dying claim";
}

INSTANTIATE_TEST_SUITE_P(BlockAndOverwrite, DeadClaimProperty,
                         ::testing::Values(mq::Policy::block, mq::Policy::overwrite),
                         [](const auto& info) { return info.param == mq::Policy::block ? "block" : "overwrite"; });

// ---------------------------------------------------------------------------------------------------------------
// Recovery's own hazards: the recoverer dies holding producers back; two dead producers announced one tail word with
// different sizes; a position no claim covers any more (an orphan); a new group whose oldest record is an open claim.

namespace {

mq::TopicOptions small_topic(mq::Policy policy) {
  mq::TopicOptions o;
  o.capacity = kCapacity;
  o.policy = policy;
  return o;
}

// A child that claims `payload` bytes (writing half of them) and dies with the claim open.
int claim_and_die(const std::string& name, std::size_t payload) {
  auto t = mq::Topic::open(name);
  if (!t) return child_fail(t.error().what());
  mq::Producer p(*t);
  auto claim = p.claim(payload);
  if (!claim) return child_fail(claim.error().what());
  std::memset(claim->bytes().data(), 0x5a, payload / 2);
  ::kill(::getpid(), SIGKILL);
  return child_fail("survived SIGKILL");
}

// Forgets the intent of the dead producer whose slot holds `offset` (what an older libmq's recovery did): its claim
// becomes an orphan that no producer slot covers.
void forget_intent(const mq::Topic& topic, mq::Offset offset) {
  const auto& seg = *topic.segment();
  for (std::size_t i = 0; i < mq::kMaxProducers; ++i) {
    auto& slot = seg.producer(i);
    if (slot.owner.load() == 0 || slot.intent_off.load() != offset || slot.intent_pos.load() == mq::detail::kNone)
      continue;
    slot.intent_pos.store(mq::detail::kNone);
    slot.owner.store(0);
    return;
  }
  ADD_FAILURE() << "no slot claims offset " << offset;
}

}  // namespace

TEST_P(DeadClaimProperty, RecovererKilledWhileHoldingProducersIsTakenOver) {
  auto topic = mq::Topic::create("dead-recoverer", small_topic(GetParam()));
  ASSERT_TRUE(topic) << topic.error().what();
  mq::Consumer consumer(*topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, true));
  mq::Producer producer(*topic);
  ASSERT_TRUE(producer.publish(numbered_payload(0)));
  mqtest::Child dying([&] { return claim_and_die("dead-recoverer", 300); });
  ASSERT_EQ(dying.wait(), 128 + SIGKILL);
  // A recoverer dies while it holds the table lock and the producers' hold, between the pad and the skip record.
  mqtest::Child recoverer([&]() -> int {
    auto t = mq::Topic::open("dead-recoverer");
    if (!t) return child_fail(t.error().what());
    mq::detail::arm_test_point(TestPoint::recovery_writing);
    (void)t->recover_dead();
    return child_fail("not killed while recovering");
  });
  ASSERT_EQ(recoverer.wait(), 128 + SIGKILL);
  ASSERT_NE(topic->segment()->header().hold.load(), 0u) << "the recoverer died holding producers back";

  // Producers go on: two capacities' worth, in records the hold alone would stop after one.
  std::uint64_t published = 0;
  const auto start = Clock::now();
  for (std::uint64_t seq = 1; published < 2 * kCapacity; ++seq) {
    const auto payload = numbered_payload(seq, 4000);
    auto r = producer.publish(payload);
    ASSERT_TRUE(r) << "publish " << seq << ": " << r.error().what() << "\n" << dump_topic(*topic);
    published += payload.size();
    auto m = consumer.poll(10s);  // the member keeps up (a block topic needs it; it reads past the dead claim)
    ASSERT_TRUE(m) << m.error().what() << "\n" << dump_topic(*topic);
  }
  EXPECT_LT(Clock::now() - start, 60s);
  EXPECT_EQ(topic->segment()->header().hold.load(), 0u);
  EXPECT_EQ(topic->info().producers, 1u) << "the dead producer's slot is free";
  EXPECT_TRUE(topic->info().stuck.empty());
}

TEST_F(MultiProcess, ProducersDeadOnTheSameTailWordAreToldApart) {
  // One announces the tail word and dies before its CAS; the other announces the same word with another size, wins
  // it, and dies before committing. Both intents name one start and one offset; the claim's end tells the winner.
  auto topic = mq::Topic::create("two-dead", small_topic(mq::Policy::block));
  ASSERT_TRUE(topic) << topic.error().what();
  mq::Consumer consumer(*topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, true));
  mq::Producer producer(*topic);
  for (int i = 0; i < 40; ++i) {  // wrapped, with 0xff bytes at every next header position
    ASSERT_TRUE(producer.publish(std::vector<std::byte>(2000, std::byte{0xff})));
    ASSERT_TRUE(consumer.poll(5s));
  }
  mqtest::Child loser([&]() -> int {
    auto t = mq::Topic::open("two-dead");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    mq::detail::arm_test_point(TestPoint::claim_announced);
    (void)p.publish(numbered_payload(1, 1000));
    return child_fail("not killed before its CAS");
  });
  ASSERT_EQ(loser.wait(), 128 + SIGKILL);
  mqtest::Child winner([&] { return claim_and_die("two-dead", 100); });
  ASSERT_EQ(winner.wait(), 128 + SIGKILL);
  ASSERT_EQ(topic->info().latest, 41u);
  ASSERT_TRUE(producer.publish(numbered_payload(2)));

  EXPECT_EQ(topic->recover_dead(), 1u) << dump_topic(*topic);
  auto m = consumer.poll(5s);
  ASSERT_TRUE(m) << m.error().what() << "\n" << dump_topic(*topic);
  EXPECT_EQ(m->offset(), 41u) << "offset 40 (the dead claim) is a skip record";
  EXPECT_EQ(topic->info().producers, 1u) << "both dead producers' slots are free";
}

TEST_F(MultiProcess, OrphanedPositionIsReportedAndRepaired) {
  auto topic = mq::Topic::create("orphan", small_topic(mq::Policy::block));
  ASSERT_TRUE(topic) << topic.error().what();
  mq::Consumer consumer(*topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, true));
  mq::Producer producer(*topic);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(producer.publish(std::vector<std::byte>(4000, std::byte{0xff})));
    ASSERT_TRUE(consumer.poll(5s));
  }
  // Two claims in a row die, and both intents are forgotten: a gap of two offsets no slot covers.
  for (const mq::Offset offset : {20u, 21u}) {
    mqtest::Child dying([&] { return claim_and_die("orphan", 100 + 500 * (offset - 20)); });
    ASSERT_EQ(dying.wait(), 128 + SIGKILL);
    forget_intent(*topic, offset);
  }
  ASSERT_TRUE(producer.publish(numbered_payload(22)));

  auto blocked = consumer.poll(50ms);
  ASSERT_FALSE(blocked) << "delivered offset " << blocked->offset() << " past an unreadable position";
  EXPECT_EQ(topic->recover_dead(), 0u) << "no slot claims the orphan";
  auto info = topic->info();
  ASSERT_EQ(info.stuck.size(), 1u);
  EXPECT_EQ(info.stuck[0].group, "g");
  EXPECT_EQ(info.stuck[0].offset, 20u);
  EXPECT_EQ(info.stuck[0].cause, mq::StuckInfo::Cause::orphaned);
  const std::uint64_t position = info.stuck[0].position;

  auto repaired = topic->repair_orphans();
  ASSERT_TRUE(repaired) << repaired.error().what();
  ASSERT_EQ(repaired->size(), 1u) << dump_topic(*topic);
  EXPECT_EQ((*repaired)[0].offset, 20u);
  EXPECT_EQ((*repaired)[0].position, position);
  EXPECT_EQ((*repaired)[0].records, 2u);
  auto m = consumer.poll(5s);
  ASSERT_TRUE(m) << m.error().what() << "\n" << dump_topic(*topic);
  EXPECT_EQ(m->offset(), 22u);
  EXPECT_TRUE(topic->info().stuck.empty());
  auto again = topic->repair_orphans();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty()) << "repaired twice";
}

TEST_F(MultiProcess, OrphanAcrossTheRingsEndBecomesPadAndSkip) {
  auto topic = mq::Topic::create("orphan-wrap", small_topic(mq::Policy::block));
  ASSERT_TRUE(topic) << topic.error().what();
  mq::Consumer consumer(*topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, true));
  mq::Producer producer(*topic);
  mq::Offset next = 0;
  for (; (topic->info().bytes_written & (kCapacity - 1)) != kCapacity - 64; ++next) {
    ASSERT_TRUE(producer.publish(std::vector<std::byte>(kSmallPayload, std::byte{0xee})));
    ASSERT_TRUE(consumer.poll(5s));
  }
  mqtest::Child dying([&]() -> int {  // dies after the CAS of a wrapping claim, before its pad
    auto t = mq::Topic::open("orphan-wrap");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    mq::detail::arm_test_point(TestPoint::claim_made);
    (void)p.publish(numbered_payload(1, kSmallPayload));
    return child_fail("not killed");
  });
  ASSERT_EQ(dying.wait(), 128 + SIGKILL);
  forget_intent(*topic, next);
  ASSERT_TRUE(producer.publish(numbered_payload(2)));
  auto repaired = topic->repair_orphans();
  ASSERT_TRUE(repaired) << repaired.error().what();
  ASSERT_EQ(repaired->size(), 1u) << dump_topic(*topic);
  EXPECT_EQ((*repaired)[0].records, 1u);
  auto m = consumer.poll(5s);
  ASSERT_TRUE(m) << m.error().what() << "\n" << dump_topic(*topic);
  EXPECT_EQ(m->offset(), next + 1);
}

TEST_F(MultiProcess, NewGroupAtEarliestWaitsForAnOpenClaimThere) {
  // No group yet: the ring keeps the newest records. A producer's claim sits open exactly at the oldest record when a
  // group is created at `earliest`: the group must start at that claim, not at the tail.
  constexpr std::size_t kFiller = 1024 - 64 - kHeadBytes;  // 1024-byte records: one per index chunk
  auto topic = mq::Topic::create("open-oldest", small_topic(mq::Policy::block));
  ASSERT_TRUE(topic) << topic.error().what();
  mq::Producer producer(*topic);
  for (std::uint64_t seq = 0; seq < 100; ++seq) ASSERT_TRUE(producer.publish(numbered_payload(seq, kFiller)));
  mqtest::Pipe to_parent, to_child;
  mqtest::Child slow([&]() -> int {
    auto t = mq::Topic::open("open-oldest");
    if (!t) return child_fail(t.error().what());
    mq::Producer p(*t);
    auto claim = p.claim(kHeadBytes + kFiller);
    if (!claim) return child_fail(claim.error().what());
    to_parent.send("claimed " + std::to_string(claim->offset()));
    if (to_child.receive() != "commit") return child_fail("no commit order");
    const auto payload = numbered_payload(100, kFiller, 0, claim->offset());
    std::memcpy(claim->bytes().data(), payload.data(), payload.size());
    return std::move(*claim).commit() ? 0 : child_fail("commit failed");
  });
  ASSERT_EQ(to_parent.receive(), "claimed 100");
  for (std::uint64_t seq = 101; seq < 164; ++seq) ASSERT_TRUE(producer.publish(numbered_payload(seq, kFiller)));
  EXPECT_EQ(topic->info().earliest, 100u) << dump_topic(*topic);
  mq::Consumer late(*topic, member_options("late", mq::Start::earliest, mq::Wait::spin_futex, true));
  to_child.send("commit");
  EXPECT_EQ(slow.wait(), 0);
  std::vector<Got> got;
  ASSERT_EQ(take_records(late, 64, got), "") << dump_topic(*topic);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].offset, 100 + i);
}
