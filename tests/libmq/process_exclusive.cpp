// The exclusive producer (ProducerOptions::exclusive) across processes: it keeps every other producer out and says
// whose it is; when it dies at any point of a claim the topic flows on and another producer may attach; and groups
// that move while it publishes, their mover killed in the middle of the handover included, lose nothing and read
// nothing it overwrote.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "membarrier.hpp"
#include "scenario.hpp"
#include "test_point.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;
using mq::detail::TestPoint;

mq::ProducerOptions exclusive() {
  mq::ProducerOptions options;
  options.exclusive = true;
  return options;
}

// Whether the topic's exclusive producer claims by plain stores (else by CAS: no AVX or no membarrier here).
bool claims_plain(const mq::Topic& topic) {
  return (topic.segment()->header().exclusive_slot.load() & mq::detail::kExclusivePlain) != 0;
}

TEST_F(MultiProcess, AnExclusiveProducerKeepsEveryOtherProducerOut) {
  auto topic = mq::Topic::create("solo", small_ring()).value();
  const std::string self = std::to_string(::getpid());
  {
    auto shared = mq::Producer::make(topic);
    ASSERT_TRUE(shared) << shared.error().what();
    EXPECT_EQ(topic.info().exclusive_pid, 0) << "a shared producer reported as exclusive";
    auto refused = mq::Producer::make(topic, exclusive());
    ASSERT_FALSE(refused) << "an exclusive producer attached beside another one";
    EXPECT_EQ(refused.error().code(), mq::Errc::busy);
    EXPECT_TRUE(mqtest::contains(refused.error().message(), "another producer is attached (pid " + self + ")"))
        << refused.error().what();
  }
  std::optional<mq::Producer> solo;
  {
    auto made = mq::Producer::make(topic, exclusive());
    ASSERT_TRUE(made) << made.error().what();
    solo.emplace(std::move(*made));
  }
  const std::string why = "exclusive producer (pid " + self + ")";
  for (const bool second_exclusive : {false, true}) {
    mq::ProducerOptions options;
    options.exclusive = second_exclusive;
    auto other = mq::Producer::make(topic, options);
    ASSERT_FALSE(other) << "a second producer attached beside an exclusive one";
    EXPECT_EQ(other.error().code(), mq::Errc::busy);
    EXPECT_TRUE(mqtest::contains(other.error().message(), why)) << other.error().what();
  }
  mqtest::Child outsider([&]() -> int {
    auto t = mq::Topic::open("solo");
    if (!t) return child_fail(t.error().what());
    auto p = mq::Producer::make(*t);
    if (p) return child_fail("another process's producer attached beside an exclusive one");
    if (p.error().code() != mq::Errc::busy || !mqtest::contains(p.error().message(), why))
      return child_fail(std::string("wrong refusal: ") + p.error().what());
    return 0;
  });
  EXPECT_EQ(outsider.wait(60s), 0);
  EXPECT_EQ(topic.info().producers, 1u) << "a refused producer kept its slot";
  EXPECT_EQ(topic.info().exclusive_pid, ::getpid()) << "TopicInfo does not name the exclusive producer";
  EXPECT_EQ(topic.info().exclusive_plain, mq::detail::plain_handover_possible());

  // It publishes as any producer does, across many laps of the ring: single records, claims and batches.
  mq::Consumer member(topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, true));
  std::uint64_t seq = 0;
  for (int round = 0; round < 400; ++round) {
    auto one = solo->publish(numbered_payload(seq));
    ASSERT_TRUE(one) << one.error().what();
    ASSERT_EQ(*one, seq++);
    const auto payload = numbered_payload(seq);
    auto claim = solo->claim(payload.size());
    ASSERT_TRUE(claim) << claim.error().what();
    std::memcpy(claim->bytes().data(), payload.data(), payload.size());
    auto committed = std::move(*claim).commit();
    ASSERT_TRUE(committed) << committed.error().what();
    ASSERT_EQ(*committed, seq++);
    const std::vector<std::vector<std::byte>> batch = {numbered_payload(seq), numbered_payload(seq + 1),
                                                       numbered_payload(seq + 2)};
    std::vector<std::span<const std::byte>> spans(batch.begin(), batch.end());
    auto first = solo->publish_batch(spans);
    ASSERT_TRUE(first) << first.error().what();
    ASSERT_EQ(*first, seq);
    seq += 3;
    std::vector<Got> got;
    ASSERT_EQ(take_records(member, 5, got), "");
    for (const Got& g : got) ASSERT_EQ(g.seq, g.offset);
  }
  EXPECT_GT(topic.info().bytes_written, 4 * small_ring().capacity) << "the ring did not wrap";

  solo.reset();  // its slot and its mark go: a shared producer may come
  EXPECT_EQ(topic.segment()->header().exclusive_owner.load(), 0u);
  EXPECT_EQ(topic.info().exclusive_pid, 0) << "a closed exclusive producer still named";
  auto after = mq::Producer::make(topic);
  ASSERT_TRUE(after) << after.error().what();
}

// The exclusive producer dies at one point of a claim. Groups that existed, and one made while its mark and its
// claim are still there (the handover must not wait for a dead producer), read through to a record published after
// by a new producer, which attaches once the dead one is recovered; the dead claim is a skip record (or, died after
// its commit, delivered).
class ExclusiveDeath : public MultiProcess, public ::testing::WithParamInterface<TestPoint> {};

TEST_P(ExclusiveDeath, TheTopicFlowsOnAndAnotherProducerMayAttach) {
  const TestPoint point = GetParam();
  auto topic = mq::Topic::create("dies", small_ring()).value();
  mq::Consumer before(topic, member_options("before", mq::Start::earliest, mq::Wait::spin_futex, true));
  mqtest::Child dying([&]() -> int {
    auto t = mq::Topic::open("dies");
    if (!t) return child_fail(t.error().what());
    auto p = mq::Producer::make(*t, exclusive());
    if (!p) return child_fail(p.error().what());
    for (std::uint64_t seq = 0; seq < 5; ++seq)
      if (auto r = p->publish(numbered_payload(seq)); !r) return child_fail(r.error().what());
    mq::detail::arm_test_point(point);
    (void)p->publish(numbered_payload(5));
    return child_fail("not killed at " + std::string(mq::detail::test_point_name(point)));
  });
  const int status = dying.wait(60s);
  ASSERT_GT(status, 128) << "the producer was meant to die (exit " << status << ")";
  RecordProperty("plain_claims", claims_plain(topic) ? "yes" : "no");

  auto late = mq::Consumer::make(topic, member_options("late", mq::Start::earliest, mq::Wait::spin_futex, true));
  ASSERT_TRUE(late) << late.error().what();
  auto next = mq::Producer::make(topic);
  ASSERT_TRUE(next) << "the dead exclusive producer still keeps others out: " << next.error().what();
  auto last = next->publish(numbered_payload(6));
  ASSERT_TRUE(last) << last.error().what();
  EXPECT_EQ(topic.segment()->header().exclusive_owner.load(), 0u) << "the dead producer's mark is still up";

  const bool delivered = point == TestPoint::committed;
  for (mq::Consumer* member : {&before, &*late}) {
    std::vector<Got> got;
    ASSERT_EQ(take_records(*member, delivered ? 7 : 6, got), "") << dump_topic(topic);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(got[i].offset, i);
    if (delivered) {
      EXPECT_EQ(got[5].seq, 5u);
    }
    EXPECT_EQ(got.back().offset, *last);
    EXPECT_EQ(got.back().seq, 6u);
    auto extra = member->poll(mqtest::kNow);
    EXPECT_FALSE(extra) << "a record after the last: offset " << extra->offset();
  }
  EXPECT_TRUE(topic.info().stuck.empty()) << dump_topic(topic);
}

INSTANTIATE_TEST_SUITE_P(EveryPointOfAClaim, ExclusiveDeath,
                         ::testing::Values(TestPoint::claim_announced, TestPoint::claim_made,
                                           TestPoint::payload_written, TestPoint::header_written,
                                           TestPoint::committed),
                         [](const auto& info) { return std::string(mq::detail::test_point_name(info.param)); });

// A child publishes `records` with an exclusive producer into a full block topic while this process moves groups
// (move_groups_until) and a thread reads every record through group "base". Half way, a second child starts a
// group move and is killed in the middle of the handover (the table lock held, the group moving, the producer
// fenced): the producer waits on that group until a recovery takes the lock over and finishes the move.
TEST_F(MultiProcess, GroupsMoveWhileAnExclusiveProducerPublishes) {
  const std::uint64_t records = kSanitized ? 20'000 : 200'000;
  auto topic = mq::Topic::create("moves", small_ring()).value();
  mq::Consumer base(topic, member_options("base", mq::Start::earliest, mq::Wait::spin_futex, true));
  mqtest::Child producer([&]() -> int {
    auto t = mq::Topic::open("moves");
    if (!t) return child_fail(t.error().what());
    auto p = mq::Producer::make(*t, exclusive());
    if (!p) return child_fail(p.error().what());
    for (std::uint64_t seq = 0; seq < records; ++seq) {
      auto r = p->publish(numbered_payload(seq, 32));
      if (!r) return child_fail("seq " + std::to_string(seq) + ": " + r.error().what());
      if (*r != seq) return child_fail("seq " + std::to_string(seq) + " got offset " + std::to_string(*r));
    }
    return 0;
  });

  std::atomic<std::uint64_t> read{0};
  std::string reader_error;
  std::thread reader([&] {
    while (read.load() < records) {
      std::vector<Got> got;
      if (auto why = take_records(base, 1, got); !why.empty()) {
        reader_error = why;
        return;
      }
      if (got[0].offset != read.load() || got[0].seq != got[0].offset) {
        reader_error = "base read offset " + std::to_string(got[0].offset) + " (seq " + std::to_string(got[0].seq) +
                       ") where offset " + std::to_string(read.load()) + " was due";
        return;
      }
      read.fetch_add(1);
    }
  });

  std::uint64_t rounds = 0;
  auto half_read = [&] { return read.load() >= records / 2 || !reader_error.empty(); };
  std::string mover_error = move_groups_until(topic, half_read, rounds);
  if (mover_error.empty() && reader_error.empty() && claims_plain(topic)) {
    mqtest::Child killed([&]() -> int {
      auto t = mq::Topic::open("moves");
      if (!t) return child_fail(t.error().what());
      mq::detail::arm_test_point(TestPoint::handover_fenced);
      (void)t->create_group("killed", mq::Start::earliest);
      return child_fail("not killed in the handover");
    });
    EXPECT_GT(killed.wait(60s), 128) << "the mover was meant to die in the handover";
    // The next lock holder (the producer's own recovery, or this delete) finishes the dead mover's move.
    EXPECT_TRUE(topic.delete_group("killed"));
  }
  std::uint64_t more = 0;
  if (mover_error.empty())
    mover_error = move_groups_until(topic, [&] { return read.load() >= records || !reader_error.empty(); }, more);
  reader.join();
  EXPECT_EQ(producer.wait(120s), 0);
  EXPECT_EQ(mover_error, "") << dump_topic(topic);
  EXPECT_EQ(reader_error, "") << dump_topic(topic);
  EXPECT_EQ(read.load(), records);
  RecordProperty("group_moves", std::to_string(2 * (rounds + more)));
}

}  // namespace
