// Unit tests of consumer groups in one process: fan-out between groups, competing members inside one, where a new
// group starts, acks (auto and explicit, cumulative), the fixed limits, redelivery of a departed member's records,
// committed positions, reset/delete, and Topic::info(). Two Consumer objects in one group are two members.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "libmq/libmq.hpp"
#include "test_util.hpp"

namespace {

using mq::Offset;
using mqtest::bytes;
using mqtest::contains;
using mqtest::kNow;
using mqtest::text;

using UnitGroups = mqtest::TopicTest;

std::string payload_for(Offset offset) { return "record-" + std::to_string(offset); }

void publish_n(mq::Producer& producer, Offset first, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    auto r = producer.publish(bytes(payload_for(first + i)));
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(*r, first + i);
  }
}

// Publishes `payload` until the topic answers Errc::full (or `max` went in); returns how many went in.
std::size_t publish_until_full(mq::Producer& producer, const std::string& payload, std::size_t max = 200) {
  for (std::size_t published = 0; published < max; ++published) {
    auto r = producer.publish(bytes(payload));
    if (!r) {
      EXPECT_EQ(r.error().code(), mq::Errc::full) << r.error().what();
      return published;
    }
  }
  return max;
}

struct Got {
  Offset offset;
  bool redelivered;
};

// Polls (acking each record) until nothing is left, bounded; checks each payload against its offset. `wait` is
// each poll's timeout: 0 when everything is known to be there already.
std::vector<Got> drain(mq::Consumer& consumer, std::chrono::nanoseconds wait = kNow, std::size_t max = 10'000) {
  std::vector<Got> got;
  for (std::size_t i = 0; i < max; ++i) {
    auto m = consumer.poll(wait);
    if (!m) {
      EXPECT_EQ(m.error().code(), mq::Errc::timed_out) << m.error().what();
      break;
    }
    EXPECT_EQ(text(m->payload()), payload_for(m->offset()));
    got.push_back({m->offset(), m->redelivered()});
    EXPECT_TRUE(consumer.ack(std::move(*m)));
  }
  return got;
}

std::vector<Offset> offsets_of(const std::vector<Got>& got) {
  std::vector<Offset> out;
  for (const auto& g : got) out.push_back(g.offset);
  return out;
}

std::vector<Offset> range(Offset first, Offset end) {
  std::vector<Offset> out;
  for (Offset o = first; o < end; ++o) out.push_back(o);
  return out;
}

std::optional<mq::GroupInfo> group_info(const mq::Topic& topic, const std::string& name) {
  for (auto& g : topic.info().groups)
    if (g.name == name) return g;
  return std::nullopt;
}

mq::ConsumerOptions member(const std::string& group, mq::Start start = mq::Start::earliest, bool auto_ack = false) {
  return mq::ConsumerOptions{.group = group, .start = start, .auto_ack = auto_ack};
}

// ---------------------------------------------------------------------------------------------------------------
// Who gets what

TEST_F(UnitGroups, EachRecordGoesToExactlyOneMemberOfAGroup) {
  auto topic = mq::Topic::create("share").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, member("workers"));
  mq::Consumer b(topic, member("workers"));
  publish_n(producer, 0, 40);
  std::map<Offset, int> owner;
  bool a_done = false;
  bool b_done = false;
  for (int round = 0; round < 200 && !(a_done && b_done); ++round) {
    mq::Consumer& c = round % 2 == 0 ? a : b;
    auto m = c.poll(kNow);
    if (!m) {
      ASSERT_EQ(m.error().code(), mq::Errc::timed_out) << m.error().what();
      (round % 2 == 0 ? a_done : b_done) = true;
      continue;
    }
    EXPECT_EQ(text(m->payload()), payload_for(m->offset()));
    EXPECT_TRUE(owner.emplace(m->offset(), round % 2).second) << "offset " << m->offset() << " delivered twice";
    ASSERT_TRUE(c.ack(std::move(*m)));
  }
  ASSERT_EQ(owner.size(), 40u);
  EXPECT_EQ(owner.begin()->first, 0u);
  EXPECT_EQ(owner.rbegin()->first, 39u);
  const auto to_a = std::count_if(owner.begin(), owner.end(), [](const auto& kv) { return kv.second == 0; });
  EXPECT_EQ(to_a, 20) << "alternating polls share the records";
}

TEST_F(UnitGroups, EveryGroupSeesEveryRecord) {
  auto topic = mq::Topic::create("fanout").value();
  mq::Producer producer(topic);
  mq::Consumer billing(topic, member("billing"));
  mq::Consumer email(topic, member("email"));
  mq::Consumer email2(topic, member("email"));
  publish_n(producer, 0, 25);
  EXPECT_EQ(offsets_of(drain(billing)), range(0, 25));
  // The email group gets the same 25 records; its first member to poll takes them all, leaving none for the other.
  EXPECT_EQ(offsets_of(drain(email)), range(0, 25));
  EXPECT_TRUE(drain(email2).empty());
}

TEST_F(UnitGroups, NewGroupStartsAtEarliestOrLatest) {
  auto topic = mq::Topic::create("start").value();
  mq::Producer producer(topic);
  publish_n(producer, 0, 5);
  mq::Consumer from_start(topic, member("from-start", mq::Start::earliest));
  mq::Consumer from_now(topic, member("from-now", mq::Start::latest));
  mq::Consumer by_default(topic, mq::ConsumerOptions{.group = "default"});
  publish_n(producer, 5, 3);
  EXPECT_EQ(offsets_of(drain(from_start)), range(0, 8));
  EXPECT_EQ(offsets_of(drain(from_now)), range(5, 8));
  EXPECT_EQ(offsets_of(drain(by_default)), range(5, 8)) << "Start::latest is the default";
}

// ---------------------------------------------------------------------------------------------------------------
// Acks

TEST_F(UnitGroups, AutoAckAcksThePreviousRecordAtTheNextPoll) {
  auto topic = mq::Topic::create("autoack").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, member("g", mq::Start::earliest, true));
  publish_n(producer, 0, 3);
  auto m0 = consumer.poll(kNow);
  ASSERT_TRUE(m0) << m0.error().what();
  EXPECT_EQ(consumer.unacked(), 1u);
  EXPECT_EQ(group_info(topic, "g")->committed, 0u);
  auto m1 = consumer.poll(kNow);
  ASSERT_TRUE(m1) << m1.error().what();
  EXPECT_EQ(consumer.unacked(), 1u) << "offset 0 was acked by this poll";
  EXPECT_EQ(group_info(topic, "g")->committed, 1u);
  auto stale = consumer.ack(std::move(*m0));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), mq::Errc::invalid_argument) << "offset 0 is acked already";
  ASSERT_TRUE(consumer.ack(std::move(*m1))) << "explicit acks work with auto_ack too";
  EXPECT_EQ(consumer.unacked(), 0u);
  auto m2 = consumer.poll(kNow);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->offset(), 2u);
  EXPECT_EQ(group_info(topic, "g")->committed, 2u);
}

TEST_F(UnitGroups, ExplicitAckIsCumulativeInReceiveOrder) {
  auto topic = mq::Topic::create("ack").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, member("g"));
  publish_n(producer, 0, 5);
  std::vector<mq::Message> held;
  for (int i = 0; i < 4; ++i) {
    auto m = consumer.poll(kNow);
    ASSERT_TRUE(m) << m.error().what();
    held.push_back(std::move(*m));
  }
  EXPECT_EQ(consumer.unacked(), 4u) << "without auto_ack nothing is acked by polling";
  EXPECT_EQ(group_info(topic, "g")->committed, 0u);
  ASSERT_TRUE(consumer.ack(std::move(held[2])));
  EXPECT_EQ(consumer.unacked(), 1u) << "acking offset 2 acks 0 and 1 too";
  EXPECT_EQ(group_info(topic, "g")->committed, 3u);
  for (int i : {0, 1, 2}) {
    auto again = consumer.ack(std::move(held[static_cast<std::size_t>(i)]));
    ASSERT_FALSE(again) << i;
    EXPECT_EQ(again.error().code(), mq::Errc::invalid_argument);
    EXPECT_TRUE(contains(again.error().message(), "group=g")) << again.error().what();
  }
  ASSERT_TRUE(consumer.ack(std::move(held[3])));
  EXPECT_EQ(consumer.unacked(), 0u);
  EXPECT_EQ(group_info(topic, "g")->committed, 4u);
  ASSERT_TRUE(consumer.ack_all()) << "ack_all with nothing held is fine";
}

TEST_F(UnitGroups, AckingAnotherMembersRecordIsInvalidArgument) {
  auto topic = mq::Topic::create("notmine").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, member("g"));
  mq::Consumer b(topic, member("g"));
  publish_n(producer, 0, 2);
  auto from_a = a.poll(kNow);
  auto from_b = b.poll(kNow);
  ASSERT_TRUE(from_a && from_b);
  auto r = a.ack(std::move(*from_b));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), mq::Errc::invalid_argument);
  EXPECT_EQ(a.unacked(), 1u);
  EXPECT_EQ(b.unacked(), 1u);
}

TEST_F(UnitGroups, AckingAMessageThatWasNeverPolledIsInvalidArgument) {
  // A default-constructed Message was never handed out by any consumer; acking it must not ack the record this
  // consumer holds at ring position 0.
  auto topic = mq::Topic::create("neverpolled").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, member("g"));
  publish_n(producer, 0, 1);
  auto held = consumer.poll(kNow);
  ASSERT_TRUE(held) << held.error().what();
  auto r = consumer.ack(mq::Message{});
  EXPECT_FALSE(r) << "a default Message acked the record at position 0";
  EXPECT_EQ(consumer.unacked(), 1u);
  ASSERT_TRUE(consumer.ack(std::move(*held)));
}

TEST_F(UnitGroups, AckingAnotherGroupsMessageIsInvalidArgument) {
  // Both groups receive offset 0 at the same ring position. Consumer::ack documents invalid_argument for "another
  // consumer's" record; it must not ack its own record 0 because a stranger's Message has the same position.
  auto topic = mq::Topic::create("othergroup").value();
  mq::Producer producer(topic);
  mq::Consumer mine(topic, member("mine"));
  mq::Consumer theirs(topic, member("theirs"));
  publish_n(producer, 0, 1);
  auto own = mine.poll(kNow);
  auto foreign = theirs.poll(kNow);
  ASSERT_TRUE(own && foreign);
  auto r = mine.ack(std::move(*foreign));
  EXPECT_FALSE(r) << "acked a record of group 'theirs' through a member of group 'mine'";
  if (!r) {
    EXPECT_EQ(r.error().code(), mq::Errc::invalid_argument);
  }
  EXPECT_EQ(mine.unacked(), 1u) << "mine's own record 0 must still be unacked";
  EXPECT_EQ(group_info(topic, "mine")->committed, 0u);
}

TEST_F(UnitGroups, HoldingMaxUnackedIsLimitUntilAnAck) {
  auto topic = mq::Topic::create("unacked").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, member("g"));
  publish_n(producer, 0, mq::kMaxUnacked + 2);
  std::vector<mq::Message> held;
  for (std::size_t i = 0; i < mq::kMaxUnacked; ++i) {
    auto m = consumer.poll(kNow);
    ASSERT_TRUE(m) << i << ": " << m.error().what();
    ASSERT_EQ(m->offset(), i);
    held.push_back(std::move(*m));
  }
  auto over = consumer.poll(kNow);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), mq::Errc::limit);
  EXPECT_TRUE(contains(over.error().message(), std::to_string(mq::kMaxUnacked))) << over.error().what();
  EXPECT_EQ(consumer.unacked(), mq::kMaxUnacked);
  ASSERT_TRUE(consumer.ack(std::move(held[0])));
  auto next = consumer.poll(kNow);
  ASSERT_TRUE(next) << next.error().what();
  EXPECT_EQ(next->offset(), mq::kMaxUnacked) << "the refused poll took nothing from the group";
}

// ---------------------------------------------------------------------------------------------------------------
// Table limits

TEST_F(UnitGroups, OneMemberTooManyIsLimitWithAMessage) {
  auto topic = mq::Topic::create("members").value();
  std::vector<mq::Consumer> members;
  for (std::size_t i = 0; i < mq::kMaxMembers; ++i) {
    auto c = mq::Consumer::make(topic, member("crowd"));
    ASSERT_TRUE(c) << i << ": " << c.error().what();
    members.push_back(std::move(*c));
  }
  EXPECT_EQ(group_info(topic, "crowd")->members, mq::kMaxMembers);
  auto extra = mq::Consumer::make(topic, member("crowd"));
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error().code(), mq::Errc::limit);
  EXPECT_TRUE(contains(extra.error().message(), "group=crowd")) << extra.error().what();
  EXPECT_TRUE(contains(extra.error().message(), std::to_string(mq::kMaxMembers))) << extra.error().what();
  EXPECT_THROW((mq::Consumer{topic, member("crowd")}), mq::Error);
  // Another group is not affected, and a departed member's slot comes back.
  EXPECT_TRUE(mq::Consumer::make(topic, member("other")));
  members.pop_back();
  EXPECT_TRUE(mq::Consumer::make(topic, member("crowd")));
}

TEST_F(UnitGroups, OneGroupTooManyIsLimit) {
  auto topic = mq::Topic::create("groups").value();
  std::vector<mq::Consumer> consumers;
  for (std::size_t i = 0; i < mq::kMaxGroups; ++i) {
    auto c = mq::Consumer::make(topic, member("group-" + std::to_string(i)));
    ASSERT_TRUE(c) << i << ": " << c.error().what();
    consumers.push_back(std::move(*c));
  }
  EXPECT_EQ(topic.info().groups.size(), mq::kMaxGroups);
  auto extra = mq::Consumer::make(topic, member("one-too-many"));
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error().code(), mq::Errc::limit);
  EXPECT_TRUE(contains(extra.error().message(), std::to_string(mq::kMaxGroups))) << extra.error().what();
  auto admin = topic.create_group("one-too-many");
  ASSERT_FALSE(admin);
  EXPECT_EQ(admin.error().code(), mq::Errc::limit);
  // Joining an existing group still works, and deleting one makes room.
  EXPECT_TRUE(mq::Consumer::make(topic, member("group-3")));
  consumers.pop_back();
  ASSERT_TRUE(topic.delete_group("group-" + std::to_string(mq::kMaxGroups - 1)));
  EXPECT_TRUE(mq::Consumer::make(topic, member("one-too-many")));
}

TEST_F(UnitGroups, TooManyConfiguredGroupsIsLimit) {
  mq::TopicOptions options;
  for (std::size_t i = 0; i <= mq::kMaxGroups; ++i) options.groups.push_back("svc-" + std::to_string(i));
  auto r = mq::Topic::create("configured", options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), mq::Errc::limit);
  options.groups.pop_back();
  auto ok = mq::Topic::create("configured", options);
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_EQ(ok->info().groups.size(), mq::kMaxGroups);
}

TEST_F(UnitGroups, BadGroupNamesAreInvalidName) {
  auto topic = mq::Topic::create("gnames").value();
  const std::string cases[] = {"", std::string(256, 'g'), "tab\there", std::string("nul\0", 4), "caf\xc3\xa9"};
  for (const auto& name : cases) {
    auto c = mq::Consumer::make(topic, member(name));
    ASSERT_FALSE(c) << name;
    EXPECT_EQ(c.error().code(), mq::Errc::invalid_name) << name;
    auto g = topic.create_group(name);
    ASSERT_FALSE(g) << name;
    EXPECT_EQ(g.error().code(), mq::Errc::invalid_name) << name;
  }
  EXPECT_TRUE(mq::Consumer::make(topic, member(std::string(255, 'g'))));
  EXPECT_TRUE(mq::Consumer::make(topic, member("spaces and ~punctuation!")));
  EXPECT_TRUE(topic.info().groups.size() == 2);
}

// ---------------------------------------------------------------------------------------------------------------
// Departures and restarts

TEST_F(UnitGroups, DestroyedConsumersUnackedRecordsAreRedelivered) {
  auto topic = mq::Topic::create("redeliver").value();
  mq::Producer producer(topic);
  mq::Consumer survivor(topic, member("g"));
  publish_n(producer, 0, 6);
  {
    mq::Consumer leaver(topic, member("g"));
    auto m0 = leaver.poll(kNow);
    auto m1 = leaver.poll(kNow);
    auto m2 = leaver.poll(kNow);
    ASSERT_TRUE(m0 && m1 && m2);
    EXPECT_EQ(m2->offset(), 2u);
    ASSERT_TRUE(leaver.ack(std::move(*m0)));
  }  // holds 1 and 2 unacked
  auto info = group_info(topic, "g");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->members, 1u);
  EXPECT_EQ(info->unacked, 2u) << "the departed member's two records wait for redelivery";
  EXPECT_EQ(info->committed, 1u);

  const auto got = drain(survivor);
  std::multiset<Offset> seen;
  for (const auto& g : got) {
    seen.insert(g.offset);
    EXPECT_EQ(g.redelivered, g.offset == 1 || g.offset == 2) << "offset " << g.offset;
  }
  EXPECT_EQ(seen, (std::multiset<Offset>{1, 2, 3, 4, 5})) << "0 was acked; 1 and 2 come again; nothing twice";
  EXPECT_EQ(group_info(topic, "g")->committed, 6u);
}

TEST_F(UnitGroups, TwoMembersLeavingWithFullHandsAreBothRedelivered) {
  // Each member may hold kMaxUnacked records; the group's redelivery list must take what each departed member
  // held, or those records stay stuck while this (live) process runs.
  auto topic = mq::Topic::create("fullhands").value();
  mq::Producer producer(topic);
  const std::size_t n = 2 * mq::kMaxUnacked;
  publish_n(producer, 0, n);
  {
    mq::Consumer a(topic, member("g"));
    mq::Consumer b(topic, member("g"));
    for (std::size_t i = 0; i < mq::kMaxUnacked; ++i) {
      ASSERT_TRUE(a.poll(kNow));
      ASSERT_TRUE(b.poll(kNow));
    }
    EXPECT_EQ(a.unacked() + b.unacked(), n);
  }
  mq::Consumer heir(topic, member("g"));
  std::set<Offset> seen;
  // Polls that wait give a slow-path (recovery) hand-over the chance to run; the last one times out.
  for (const auto& g : drain(heir, std::chrono::milliseconds(300))) {
    EXPECT_TRUE(g.redelivered);
    seen.insert(g.offset);
  }
  EXPECT_EQ(seen.size(), n) << "records held by a destroyed consumer were never redelivered";
  auto info = group_info(topic, "g");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->members, 1u) << "only the heir is a member: both destroyed consumers left";
  EXPECT_EQ(info->unacked, 0u);
}

TEST_F(UnitGroups, NewConsumerContinuesFromTheCommittedPosition) {
  auto topic = mq::Topic::create("restart").value();
  mq::Producer producer(topic);
  publish_n(producer, 0, 4);
  {
    mq::Consumer first(topic, member("svc", mq::Start::earliest));
    std::optional<mq::Message> last;
    for (int i = 0; i < 3; ++i) {
      auto m = first.poll(kNow);
      ASSERT_TRUE(m);
      last = std::move(*m);
    }
    ASSERT_TRUE(first.ack(std::move(*last)));  // 0..2 acked, 3 never taken
  }
  publish_n(producer, 4, 2);
  // Start::latest would skip to 6 for a new group; the group exists, so it continues at 3.
  mq::Consumer second(topic, member("svc", mq::Start::latest));
  const auto got = drain(second);
  EXPECT_EQ(offsets_of(got), range(3, 6));
  for (const auto& g : got) EXPECT_FALSE(g.redelivered);
}

TEST_F(UnitGroups, AutoAckConsumerCommitsItsLastRecordOnClose) {
  // auto_ack acks a record at the next poll, and (as Kafka commits on close) the last one when the consumer is
  // destroyed: a restarted consumer continues after it. An explicit-ack consumer's last record comes again.
  auto topic = mq::Topic::create("lastone").value();
  mq::Producer producer(topic);
  publish_n(producer, 0, 6);
  {
    mq::Consumer first(topic, member("auto", mq::Start::earliest, true));
    mq::Consumer manual(topic, member("manual", mq::Start::earliest, false));
    for (Offset i = 0; i < 3; ++i) {
      auto m = first.poll(kNow);
      ASSERT_TRUE(m);
      ASSERT_EQ(m->offset(), i);
      auto n = manual.poll(kNow);
      ASSERT_TRUE(n);
      if (i < 2) {
        ASSERT_TRUE(manual.ack(std::move(*n)));
      }
    }
  }
  mq::Consumer second(topic, member("auto", mq::Start::earliest, true));
  const auto got = drain(second);
  EXPECT_EQ(offsets_of(got), range(3, 6));
  for (const auto& g : got) EXPECT_FALSE(g.redelivered);
  mq::Consumer manual(topic, member("manual", mq::Start::earliest, false));
  const auto again = drain(manual);
  ASSERT_EQ(offsets_of(again), range(2, 6));
  EXPECT_TRUE(again[0].redelivered);
}

// ---------------------------------------------------------------------------------------------------------------
// Administration

TEST_F(UnitGroups, ResetGroupToEarliestLatestAndAnOffset) {
  auto topic = mq::Topic::create("reset").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, member("g"));
  publish_n(producer, 0, 10);
  EXPECT_EQ(offsets_of(drain(consumer)), range(0, 10));

  ASSERT_TRUE(topic.reset_group("g", mq::Start::earliest));
  EXPECT_EQ(group_info(topic, "g")->next, 0u);
  EXPECT_EQ(offsets_of(drain(consumer)), range(0, 10));

  ASSERT_TRUE(topic.reset_group("g", Offset{7}));
  EXPECT_EQ(group_info(topic, "g")->next, 7u);
  EXPECT_EQ(offsets_of(drain(consumer)), range(7, 10));

  ASSERT_TRUE(topic.reset_group("g", Offset{3}));
  ASSERT_TRUE(topic.reset_group("g", mq::Start::latest));
  EXPECT_TRUE(drain(consumer).empty());
  publish_n(producer, 10, 1);
  EXPECT_EQ(offsets_of(drain(consumer)), range(10, 11));

  ASSERT_TRUE(topic.reset_group("g", Offset{11})) << "latest itself is a valid position";
  EXPECT_TRUE(drain(consumer).empty());
}

// A reset that moves a group back gives its members records no publish announces: a member parked on the topic's
// word (an event loop's wait) must be woken by it, or it sleeps on them until the next publish.
TEST_F(UnitGroups, ResetGroupWakesAMemberParkedOnTheTopicWord) {
  auto topic = mq::Topic::create("reset-wakes").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, member("g"));
  publish_n(producer, 0, 3);
  EXPECT_EQ(offsets_of(drain(consumer)), range(0, 3));
  const auto word = consumer.prepare_wait();
  ASSERT_TRUE(word) << "drained: the member parks";
  ASSERT_TRUE(topic.reset_group("g", mq::Start::earliest));
  EXPECT_NE(std::atomic_ref<const std::uint32_t>(*word->word).load(), word->value)
      << "the reset moved the group back without waking its parked member";
  consumer.done_waiting();
  EXPECT_EQ(offsets_of(drain(consumer)), range(0, 3));
}

TEST_F(UnitGroups, ResetGroupOutsideTheLogOrOfNoGroupIsAnError) {
  auto topic = mq::Topic::create("badreset").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, member("g"));
  publish_n(producer, 0, 3);
  auto beyond = topic.reset_group("g", Offset{4});
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code(), mq::Errc::invalid_argument);
  EXPECT_TRUE(contains(beyond.error().message(), "4")) << beyond.error().what();
  EXPECT_EQ(offsets_of(drain(consumer)), range(0, 3)) << "a refused reset moves nothing";
  auto missing = topic.reset_group("nobody", mq::Start::earliest);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), mq::Errc::not_found);
  auto missing_offset = topic.reset_group("nobody", Offset{0});
  ASSERT_FALSE(missing_offset);
  EXPECT_EQ(missing_offset.error().code(), mq::Errc::not_found);
}

TEST_F(UnitGroups, CreateGroupKeepsRecordsForItAndTwiceIsExists) {
  auto topic = mq::Topic::create("admin").value();
  mq::Producer producer(topic);
  publish_n(producer, 0, 2);
  ASSERT_TRUE(topic.create_group("later", mq::Start::latest));
  ASSERT_TRUE(topic.create_group("all"));  // default: earliest
  auto twice = topic.create_group("all");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), mq::Errc::exists);
  publish_n(producer, 2, 2);
  mq::Consumer all(topic, member("all", mq::Start::latest));
  mq::Consumer later(topic, member("later", mq::Start::earliest));
  EXPECT_EQ(offsets_of(drain(all)), range(0, 4));
  EXPECT_EQ(offsets_of(drain(later)), range(2, 4));
}

TEST_F(UnitGroups, DeleteGroupIsBusyWhileAMemberLives) {
  auto topic = mq::Topic::create("delete").value();
  mq::Producer producer(topic);
  auto consumer = std::make_optional<mq::Consumer>(topic, member("g"));
  publish_n(producer, 0, 3);
  auto busy = topic.delete_group("g");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), mq::Errc::busy);
  EXPECT_TRUE(contains(busy.error().message(), "group=g")) << busy.error().what();
  EXPECT_TRUE(group_info(topic, "g"));
  consumer.reset();
  ASSERT_TRUE(topic.delete_group("g"));
  EXPECT_FALSE(group_info(topic, "g"));
  auto again = topic.delete_group("g");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), mq::Errc::not_found);
  // A group of the same name is a new group: it starts where it is told, not where the old one was.
  mq::Consumer fresh(topic, member("g", mq::Start::latest));
  EXPECT_TRUE(drain(fresh).empty());
}

TEST_F(UnitGroups, DeletedGroupNoLongerHoldsBackABlockProducer) {
  auto topic = mq::Topic::create("deleteblock", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic, {.block_timeout = std::chrono::milliseconds(50)});
  ASSERT_TRUE(topic.create_group("idle"));
  const std::string payload(1000, 'p');
  ASSERT_LT(publish_until_full(producer, payload), 200u) << "the idle group never held the producer back";
  ASSERT_TRUE(topic.delete_group("idle"));
  for (int i = 0; i < 200; ++i) {
    auto r = producer.publish(bytes(payload));
    ASSERT_TRUE(r) << i << ": " << r.error().what();
  }
}

TEST_F(UnitGroups, DeleteRecordsMovesTheStartAndTheGroupsBehindIt) {
  auto topic = mq::Topic::create("delrecords").value();
  mq::Producer producer(topic);
  mq::Consumer behind(topic, member("behind"));
  mq::Consumer ahead(topic, member("ahead"));
  publish_n(producer, 0, 10);
  // "ahead" has read to 7 (and holds 5 and 6 unacked); "behind" has read nothing.
  std::vector<mq::Message> held;
  for (Offset i = 0; i < 7; ++i) {
    auto m = ahead.poll(kNow);
    ASSERT_TRUE(m) << m.error().what();
    ASSERT_EQ(m->offset(), i);
    if (i < 5) ASSERT_TRUE(ahead.ack(std::move(*m)));
    else held.push_back(std::move(*m));
  }

  auto start = topic.delete_records(4);
  ASSERT_TRUE(start) << start.error().what();
  EXPECT_EQ(*start, 4u);
  EXPECT_EQ(topic.earliest(), 4u);
  EXPECT_EQ(topic.info().earliest, 4u);
  EXPECT_EQ(topic.info().latest, 10u) << "deleting records does not change the end";
  EXPECT_EQ(group_info(topic, "behind")->next, 4u) << "a group behind the new start moves up to it";
  EXPECT_EQ(group_info(topic, "ahead")->next, 7u) << "a group past it stays where it is";
  EXPECT_EQ(offsets_of(drain(behind)), range(4, 10));
  for (auto& m : held) EXPECT_TRUE(ahead.ack(std::move(m))) << "records a member holds stay its own to ack";
  EXPECT_EQ(offsets_of(drain(ahead)), range(7, 10));

  ASSERT_TRUE(topic.create_group("new", mq::Start::earliest));
  mq::Consumer fresh(topic, member("new"));
  EXPECT_EQ(offsets_of(drain(fresh)), range(4, 10)) << "a new group starts at the new start";
  EXPECT_EQ(topic.offset_for_time(0).value(), 4u) << "nothing older is found by time either";
  auto below = topic.reset_group("behind", Offset{2});
  ASSERT_FALSE(below) << "a deleted offset is not a position";
  EXPECT_EQ(below.error().code(), mq::Errc::invalid_argument);

  auto again = topic.delete_records(2);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 4u) << "an offset below the start changes nothing";
  auto all = topic.delete_records(10);
  ASSERT_TRUE(all) << all.error().what();
  EXPECT_EQ(topic.earliest(), 10u);
  EXPECT_EQ(group_info(topic, "new")->next, 10u);
  publish_n(producer, 10, 2);
  EXPECT_EQ(offsets_of(drain(fresh)), range(10, 12)) << "records published after deleting all are delivered";
}

TEST_F(UnitGroups, DeleteRecordsPastTheEndIsAnErrorThatMovesNothing) {
  auto topic = mq::Topic::create("delpast").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, member("g"));
  publish_n(producer, 0, 3);
  auto past = topic.delete_records(4);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code(), mq::Errc::invalid_argument);
  EXPECT_TRUE(contains(past.error().message(), "offset 4")) << past.error().what();
  EXPECT_TRUE(contains(past.error().message(), "latest offset 3")) << past.error().what();
  EXPECT_EQ(topic.earliest(), 0u);
  EXPECT_EQ(offsets_of(drain(consumer)), range(0, 3));
}

TEST_F(UnitGroups, DeleteRecordsGivesABlockedProducerRoom) {
  auto topic = mq::Topic::create("delblock", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic, {.block_timeout = std::chrono::milliseconds(50)});
  ASSERT_TRUE(topic.create_group("idle"));
  const std::string payload(1000, 'p');
  const Offset published = publish_until_full(producer, payload);
  ASSERT_LT(published, 200u) << "the idle group never held the producer back";
  ASSERT_TRUE(topic.delete_records(published));
  auto r = producer.publish(bytes(payload));
  ASSERT_TRUE(r) << "the idle group no longer holds the deleted records: " << r.error().what();
  EXPECT_EQ(*r, published);
}

TEST_F(UnitGroups, InfoReportsOffsetsLagAndMembers) {
  auto topic = mq::Topic::create("info", {.capacity = std::size_t{1} << 17,
                                          .max_message = 4096,
                                          .block_timeout = std::chrono::milliseconds(1234),
                                          .mode = 0640})
                   .value();
  ASSERT_TRUE(topic.create_group("idle"));
  mq::Producer producer(topic);
  mq::Consumer reader(topic, member("busy"));
  mq::Consumer helper(topic, member("busy"));
  publish_n(producer, 0, 10);
  std::vector<mq::Message> held;
  for (int i = 0; i < 4; ++i) {
    auto m = reader.poll(kNow);
    ASSERT_TRUE(m);
    held.push_back(std::move(*m));
  }
  ASSERT_TRUE(reader.ack(std::move(held[2])));  // acks 0..2, holds 3

  const auto info = topic.info();
  EXPECT_EQ(info.name, "info");
  EXPECT_EQ(info.capacity, std::size_t{1} << 17);
  EXPECT_EQ(info.max_message, 4096u);
  EXPECT_EQ(info.policy, mq::Policy::block);
  EXPECT_EQ(info.storage, mq::Storage::shm);
  EXPECT_EQ(info.block_timeout, std::chrono::milliseconds(1234));
  EXPECT_EQ(info.mode, 0640u);
  EXPECT_EQ(info.earliest, 0u);
  EXPECT_EQ(info.latest, 10u);
  EXPECT_GT(info.bytes_written, 10u * 40u);
  EXPECT_EQ(info.producers, 1u);
  EXPECT_EQ(info.stalled_producers, 0u);
  ASSERT_EQ(info.groups.size(), 2u);
  auto busy = group_info(topic, "busy");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->members, 2u);
  EXPECT_EQ(busy->next, 4u);
  EXPECT_EQ(busy->committed, 3u);
  EXPECT_EQ(busy->lag, 7u);
  EXPECT_EQ(busy->unacked, 1u);
  auto idle = group_info(topic, "idle");
  ASSERT_TRUE(idle);
  EXPECT_EQ(idle->members, 0u);
  EXPECT_EQ(idle->committed, 0u);
  EXPECT_EQ(idle->next, 0u);
  EXPECT_EQ(idle->lag, 10u);
  EXPECT_EQ(idle->unacked, 0u);
}

TEST_F(UnitGroups, ConsumerHoldingTheLastTopicHandleClosesCleanly) {
  // The consumer's handle is the only one: closing it unmaps the segment, which must happen after the consumer
  // has left its group (a crash here was a write into the unmapped table lock).
  {
    mq::Consumer consumer(mq::Topic::create("last-handle", {}).value(), {.group = "g", .auto_ack = false});
    mq::Producer producer(consumer.topic());
    ASSERT_TRUE(producer.publish(bytes("held")));
    ASSERT_TRUE(consumer.poll(std::chrono::seconds(5)));
  }
  auto topic = mq::Topic::open("last-handle");
  ASSERT_TRUE(topic);
  const auto info = topic->info();
  ASSERT_EQ(info.groups.size(), 1u);
  EXPECT_EQ(info.groups[0].members, 0u);
  EXPECT_EQ(info.groups[0].unacked, 1u);  // handed back to the group on close
}

}  // namespace

namespace {

// An idle member's poll(0) answers from what its last empty look saw (the group's cursor and the word there) while
// nothing changes: each kind of change since must still reach it.
TEST_F(UnitGroups, AnIdleMembersEmptyLookSeesEveryLaterChange) {
  auto topic = mq::Topic::create("idle").value();
  mq::Producer producer(topic);
  mq::Consumer idle(topic, member("g"));
  mq::Consumer other(topic, member("g"));
  auto expect_empty = [&] {
    auto m = idle.poll(kNow);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code(), mq::Errc::timed_out) << m.error().what();
  };
  expect_empty();
  expect_empty();  // the cached look

  // A publish at the cursor.
  publish_n(producer, 0, 1);
  auto m = idle.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->offset(), 0u);
  ASSERT_TRUE(idle.ack(std::move(*m)));
  expect_empty();

  // Another member takes what is published (the cursor moves on): nothing for us, then the next record is.
  publish_n(producer, 1, 2);
  EXPECT_EQ(offsets_of(drain(other)), range(1, 3));
  expect_empty();
  publish_n(producer, 3, 1);
  m = idle.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->offset(), 3u);
  ASSERT_TRUE(idle.ack(std::move(*m)));
  expect_empty();

  // A reset of the group back over records already read.
  ASSERT_TRUE(topic.reset_group("g", Offset{1}));
  EXPECT_EQ(offsets_of(drain(idle)), range(1, 4));
  expect_empty();

  // A departing member's unacked records come back for redelivery, with the ring itself unchanged.
  publish_n(producer, 4, 2);
  {
    mq::Consumer leaver(topic, member("g"));
    auto a = leaver.poll(kNow);
    auto b = leaver.poll(kNow);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(b->offset(), 5u);
    expect_empty();  // the leaver holds both: nothing at the cursor
  }
  const auto again = drain(idle);
  EXPECT_EQ(offsets_of(again), range(4, 6));
  for (const auto& g : again) EXPECT_TRUE(g.redelivered) << "offset " << g.offset;
}

}  // namespace
