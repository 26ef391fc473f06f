// A group's lone member, which takes by plain store, across processes: it hands over to the CAS protocol when a
// second member joins and back when that one leaves, with every record delivered exactly once; killed in the middle
// of a take, a joiner does not wait for it and what it took is redelivered; a joiner killed in the middle of the
// handover leaves the lone member consuming (by CAS) until a recovery frees the dead joiner and hands back.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "scenario.hpp"
#include "test_point.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;
using mq::detail::TestPoint;

// The group's lone member's tag (its index + 1), 0 when it has none.
std::uint64_t lone_tag(const mq::Topic& topic, const std::string& group) {
  const auto g = mq::detail::find_group(*topic.segment(), group);
  return g ? topic.segment()->group(*g).lone.load() & mq::detail::kLoneTagMask : 0;
}

// Whether this process's members can take by plain store at all (membarrier and AVX); else the tests below only
// check that nothing breaks.
bool plain_possible(const mq::Topic& topic) {
  mq::Consumer probe(topic, member_options("probe", mq::Start::latest, mq::Wait::spin_futex, true));
  return lone_tag(topic, "probe") != 0;
}

TEST_F(MultiProcess, ALoneMemberHandsOverToEachJoinerAndBackExactlyOnce) {
  const std::uint64_t records = kSanitized ? 20'000 : 200'000;
  auto topic = mq::Topic::create("lone", small_ring()).value();
  ASSERT_TRUE(topic.create_group("g", mq::Start::earliest));
  LoneTally tally(records);
  ProcessCrew crew("lone");
  start_lone_handover(crew, records, tally);
  const auto failures = crew.join();
  EXPECT_TRUE(failures.empty()) << ::testing::PrintToString(failures) << dump_topic(topic);
  EXPECT_EQ(atomic_load(tally.count()), records);
  EXPECT_EQ(atomic_load(tally.duplicates()), 0u);
  EXPECT_EQ(tally.delivered.first_clear(), std::nullopt);
  EXPECT_GT(atomic_load(tally.visits()), 0u) << "the visitor never joined: no handover was made";
  RecordProperty("visits", std::to_string(atomic_load(tally.visits())));
}

TEST_F(MultiProcess, ALoneMemberKilledMidTakeIsNotWaitedForAndItsRecordComesAgain) {
  auto topic = mq::Topic::create("dies", small_ring()).value();
  ASSERT_TRUE(topic.create_group("g", mq::Start::earliest));
  mq::Producer producer(topic);
  for (std::uint64_t seq = 0; seq < 5; ++seq) ASSERT_TRUE(producer.publish(numbered_payload(seq)));
  const bool plain = plain_possible(topic);
  mqtest::Child dying([&]() -> int {
    auto t = mq::Topic::open("dies");
    if (!t) return child_fail(t.error().what());
    mq::Consumer member(*t, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, false));
    if (plain && lone_tag(*t, "g") == 0) return child_fail("the only member is not the group's lone member");
    mq::detail::arm_test_point(TestPoint::take_won);  // the cursor moved past offset 0, not held yet
    (void)member.poll(5s);
    return child_fail("not killed at take_won");
  });
  ASSERT_GT(dying.wait(60s), 128);
  // The dead member is still the lone one, its take half done: a joiner's handover must not wait for it.
  mq::Consumer joiner(topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, false));
  std::set<mq::Offset> seen;
  while (seen.size() < 5) {
    auto m = joiner.poll(20s);
    ASSERT_TRUE(m) << "after offsets " << ::testing::PrintToString(seen) << ": " << m.error().what()
                   << dump_topic(topic);
    std::string why;
    auto head = decode_payload(m->payload(), &why);
    ASSERT_TRUE(head) << why;
    EXPECT_EQ(head->seq, m->offset());
    seen.insert(m->offset());
    ASSERT_TRUE(joiner.ack(std::move(*m)));
  }
  EXPECT_EQ(*seen.rbegin(), 4u);
  // With the dead member's slot recovered, the joiner is alone: the lone one now.
  if (plain) {
    EXPECT_TRUE(eventually([&] {
      (void)joiner.poll(mqtest::kNow);  // (the slow path, which frees the dead member, runs from poll)
      return lone_tag(topic, "g") != 0;
    }, 5s)) << dump_topic(topic);
  }
}

TEST_F(MultiProcess, AJoinerKilledMidHandoverLeavesTheLoneMemberConsuming) {
  const std::uint64_t records = 600;  // half of them (192 B each) fit the 64 KiB ring before anyone reads
  auto topic = mq::Topic::create("joiner", small_ring()).value();
  mq::Consumer member(topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, false));
  if (lone_tag(topic, "g") == 0) GTEST_SKIP() << "no plain takes here (no membarrier or AVX): no handover to cut";
  const std::uint64_t tag = lone_tag(topic, "g");
  mq::Producer producer(topic);
  for (std::uint64_t seq = 0; seq < records / 2; ++seq) ASSERT_TRUE(producer.publish(numbered_payload(seq)));
  mqtest::Child joiner([&]() -> int {
    auto t = mq::Topic::open("joiner");
    if (!t) return child_fail(t.error().what());
    mq::detail::arm_test_point(TestPoint::handover_fenced);
    auto j = mq::Consumer::make(*t, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, false));
    return child_fail(j ? "not killed in the handover" : j.error().what());
  });
  ASSERT_GT(joiner.wait(60s), 128);
  EXPECT_EQ(lone_tag(topic, "g"), 0u) << "the dead joiner had handed the lone member over";
  // The lone member goes on (by CAS) through records published before and after; a recovery frees the dead joiner
  // (taking the table lock over from it) and the member becomes the lone one again.
  std::vector<Got> got;
  ASSERT_EQ(take_records(member, records / 2, got), "") << dump_topic(topic);
  for (std::uint64_t seq = records / 2; seq < records; ++seq) ASSERT_TRUE(producer.publish(numbered_payload(seq)));
  ASSERT_EQ(take_records(member, records / 2, got), "") << dump_topic(topic);
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].offset, i);
    ASSERT_EQ(got[i].seq, i);
  }
  (void)topic.recover_dead();  // as the members' slow path or mqd would
  EXPECT_EQ(lone_tag(topic, "g"), tag) << dump_topic(topic);
}

}  // namespace
