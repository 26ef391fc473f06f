// Unit tests of key ordering (Ordering::key) in one process, members as separate Consumers: a key's records go to
// one member at a time and in offset order, other keys to other members meanwhile; a record whose key another
// member holds is parked and goes on once that member acks; a record waiting for its retry holds back its key only;
// a member that leaves hands its keys on in order; records without a key go to anyone; an overwrite topic refuses it.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libmq/libmq.hpp"
#include "test_util.hpp"

namespace {

using mqtest::bytes;
using mqtest::contains;
using mqtest::kNow;
using mqtest::text;
using namespace std::chrono_literals;

using UnitKeys = mqtest::TopicTest;

mq::ConsumerOptions keyed(std::string group = "mailers") {
  mq::ConsumerOptions o;
  o.group = std::move(group);
  o.start = mq::Start::earliest;
  o.auto_ack = false;
  o.ordering = mq::Ordering::key;
  o.retry.jitter = 0.0;
  return o;
}

void publish(mq::Producer& p, const std::string& key, const std::string& payload) {
  const auto k = bytes(key);
  const auto v = bytes(payload);
  mq::Record r{v, std::span<const std::byte>(k), {}, std::nullopt};
  ASSERT_TRUE(p.publish(r));
}

std::string key_of(const mq::Message& m) { return m.key() ? text(*m.key()) : std::string("-"); }

// "key:payload" of a polled record, or "" if none came within `timeout`.
std::string take(mq::Consumer& c, std::vector<mq::Message>& held, std::chrono::nanoseconds timeout = kNow) {
  auto m = c.poll(timeout);
  if (!m) return "";
  std::string s = key_of(*m) + ":" + text(m->payload());
  held.push_back(std::move(*m));
  return s;
}

TEST_F(UnitKeys, AKeyGoesToOneMemberAtATimeWhileOtherKeysGoToOthers) {
  auto topic = mq::Topic::create("invites").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, keyed());
  mq::Consumer b(topic, keyed());
  EXPECT_EQ(topic.info().groups.at(0).ordering, mq::Ordering::key);
  publish(producer, "k1", "a");
  publish(producer, "k2", "b");
  publish(producer, "k1", "c");
  publish(producer, "k2", "d");
  std::vector<mq::Message> ha, hb;
  EXPECT_EQ(take(a, ha), "k1:a");
  EXPECT_EQ(take(b, hb), "k2:b");
  // k1:c is at the cursor, but a holds k1: b parks it and takes k2:d.
  EXPECT_EQ(take(b, hb), "k2:d");
  EXPECT_EQ(take(b, hb), "") << "b took a record of a key a holds";
  // a, holding k1, gets k1:c without acking k1:a first (one member, in offset order).
  EXPECT_EQ(take(a, ha), "k1:c");
  EXPECT_EQ(take(a, ha), "");
  EXPECT_EQ(topic.info().groups.at(0).unacked, 4u);
}

TEST_F(UnitKeys, AParkedRecordGoesToAnotherMemberOnceItsHolderAcks) {
  auto topic = mq::Topic::create("invites").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, keyed());
  mq::Consumer b(topic, keyed());
  publish(producer, "k1", "a");
  std::vector<mq::Message> ha, hb;
  EXPECT_EQ(take(a, ha), "k1:a");
  publish(producer, "k1", "b");
  EXPECT_EQ(take(b, hb), "");  // parked behind a
  ASSERT_TRUE(a.ack(std::move(ha.back())));
  EXPECT_EQ(take(b, hb, 1s), "k1:b");
  EXPECT_TRUE(hb.back().redelivered()) << "a parked record is handed out as a redelivery";
  EXPECT_EQ(take(a, ha), "") << "a took k1 while b holds it";
}

TEST_F(UnitKeys, AtTheParkedLimitMembersWaitForTheKeysHolderAndNothingIsDropped) {
  auto topic = mq::Topic::create("invites").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, keyed());
  mq::Consumer b(topic, keyed());
  publish(producer, "k1", "0");
  std::vector<mq::Message> ha, hb;
  EXPECT_EQ(take(a, ha), "k1:0");
  const int more = static_cast<int>(mq::kMaxParked) + 7;
  for (int i = 1; i <= more; ++i) publish(producer, "k1", std::to_string(i));
  publish(producer, "k2", "x");
  // b parks k1's records up to the limit, then stops at the cursor: k2:x waits behind them (back-pressure).
  EXPECT_EQ(take(b, hb), "");
  EXPECT_EQ(topic.info().groups.at(0).parked, mq::kMaxParked);
  EXPECT_EQ(topic.info().groups.at(0).unacked, mq::kMaxParked + 1);
  EXPECT_EQ(take(b, hb), "") << "b went past the parked limit";
  EXPECT_EQ(topic.info().groups.at(0).parked, mq::kMaxParked);
  // Once a acks, everything flows again, k1 in offset order, nothing lost.
  ASSERT_TRUE(a.ack(std::move(ha.back())));
  ha.clear();
  std::vector<std::string> k1;
  bool k2 = false;
  for (int round = 0; round < 4 * more && (static_cast<int>(k1.size()) < more || !k2); ++round) {
    for (auto* member : {&a, &b}) {
      auto& held = member == &a ? ha : hb;
      const std::string got = take(*member, held, 10ms);
      if (got.empty()) continue;
      if (got == "k2:x") k2 = true;
      else k1.push_back(got.substr(3));
      ASSERT_TRUE(member->ack(std::move(held.back())));
      held.clear();
    }
  }
  std::vector<std::string> expected;
  for (int i = 1; i <= more; ++i) expected.push_back(std::to_string(i));
  EXPECT_EQ(k1, expected);
  EXPECT_TRUE(k2);
  EXPECT_EQ(topic.info().groups.at(0).parked, 0u);
}

TEST_F(UnitKeys, ARecordWaitingForItsRetryHoldsBackItsKeyOnly) {
  auto topic = mq::Topic::create("invites").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, keyed());
  mq::Consumer b(topic, keyed());
  publish(producer, "k1", "a");
  std::vector<mq::Message> ha, hb;
  EXPECT_EQ(take(a, ha), "k1:a");
  auto nacked = a.nack(std::move(ha.back()), 200ms, "smtp down");
  ASSERT_TRUE(nacked) << nacked.error().what();
  ha.clear();
  publish(producer, "k1", "b");
  publish(producer, "k2", "c");
  // k1:b waits behind the retry of k1:a, for any member; k2 flows.
  EXPECT_EQ(take(b, hb), "k2:c");
  EXPECT_EQ(take(a, ha), "");
  EXPECT_EQ(take(b, hb), "");
  // Once due, k1:a comes back (attempt 2) before k1:b, to one member.
  std::string first = take(a, ha, 2s);
  ASSERT_EQ(first, "k1:a");
  EXPECT_EQ(ha.back().attempt(), 2u);
  EXPECT_EQ(take(b, hb), "") << "b took k1:b while a holds k1:a";
  EXPECT_EQ(take(a, ha), "k1:b");
}

TEST_F(UnitKeys, AMemberThatLeavesHandsItsKeysOnInOrder) {
  auto topic = mq::Topic::create("invites").value();
  mq::Producer producer(topic);
  auto a = std::make_optional<mq::Consumer>(topic, keyed());
  mq::Consumer b(topic, keyed());
  publish(producer, "k1", "a");
  publish(producer, "k1", "b");
  std::vector<mq::Message> ha, hb;
  EXPECT_EQ(take(*a, ha), "k1:a");
  EXPECT_EQ(take(*a, ha), "k1:b");
  publish(producer, "k1", "c");
  publish(producer, "k2", "d");
  EXPECT_EQ(take(b, hb), "k2:d");  // k1:c parked behind a
  ha.clear();
  a.reset();  // leaves holding k1:a and k1:b unacked
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) got.push_back(take(b, hb, 1s));
  EXPECT_EQ(got, (std::vector<std::string>{"k1:a", "k1:b", "k1:c"}));
}

TEST_F(UnitKeys, OneTakeGivesAMemberOneNewKeyAtMostWhileOthersAreInTheGroup) {
  auto topic = mq::Topic::create("invites").value();
  mq::Producer producer(topic);
  auto a = std::make_optional<mq::Consumer>(topic, keyed());
  mq::Consumer b(topic, keyed());
  publish(producer, "k1", "a");
  publish(producer, "k1", "b");
  ASSERT_TRUE(producer.publish(bytes("n")));
  publish(producer, "k2", "c");
  publish(producer, "k1", "d");
  publish(producer, "k3", "e");
  const auto batch_of = [](mq::Consumer& c, std::size_t max) {
    std::vector<mq::Message> batch;
    auto n = c.poll_batch(batch, max, kNow);
    EXPECT_TRUE(n) << n.error().what();
    std::vector<std::string> got;
    for (const auto& r : batch) got.push_back(key_of(r) + ":" + text(r.payload()));
    return got;
  };
  // a's batch: k1 (its one new key), the record without a key, then it stops at k2, which is left for b.
  EXPECT_EQ(batch_of(*a, 8), (std::vector<std::string>{"k1:a", "k1:b", "-:n"}));
  // b: k2, then k1:d is parked behind a, and k3 would be a second new key.
  EXPECT_EQ(batch_of(b, 8), (std::vector<std::string>{"k2:c"}));
  // a again (holding k1): the parked k1:d, and k3 as its one new key of this take.
  EXPECT_EQ(batch_of(*a, 8), (std::vector<std::string>{"k1:d", "k3:e"}));
  // Alone in the group, a member's batch takes every key.
  a.reset();
  mq::Consumer lone(topic, keyed("alone"));
  EXPECT_EQ(batch_of(lone, 8), (std::vector<std::string>{"k1:a", "k1:b", "-:n", "k2:c", "k1:d", "k3:e"}));
}

TEST_F(UnitKeys, RecordsWithoutAKeyGoToAnyMemberAndABatchKeepsKeysApart) {
  auto topic = mq::Topic::create("invites").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, keyed());
  mq::Consumer b(topic, keyed());
  ASSERT_TRUE(producer.publish(bytes("n1")));
  publish(producer, "k1", "a");
  ASSERT_TRUE(producer.publish(bytes("n2")));
  publish(producer, "k1", "b");
  publish(producer, "k2", "c");
  std::vector<mq::Message> batch;
  auto n = a.poll_batch(batch, 2, kNow);
  ASSERT_TRUE(n) << n.error().what();
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(key_of(batch[0]) + ":" + text(batch[0].payload()), "-:n1");
  EXPECT_EQ(key_of(batch[1]) + ":" + text(batch[1].payload()), "k1:a");
  std::vector<mq::Message> other;
  auto m = b.poll_batch(other, 8, kNow);
  ASSERT_TRUE(m) << m.error().what();
  std::vector<std::string> got;
  for (const auto& r : other) got.push_back(key_of(r) + ":" + text(r.payload()));
  EXPECT_EQ(got, (std::vector<std::string>{"-:n2", "k2:c"})) << "k1:b must wait for a";
  // Acking a batch's last record acks the whole batch and releases its keys.
  ASSERT_TRUE(a.ack(std::move(batch[1])));
  auto rest = b.poll_batch(other, 8, 1s);
  ASSERT_TRUE(rest) << rest.error().what();
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(text(other[0].payload()), "b");
}

TEST_F(UnitKeys, AnOverwriteTopicRefusesKeyOrdering) {
  mq::TopicOptions lossy;
  lossy.policy = mq::Policy::overwrite;
  auto ring = mq::Topic::create("ring", lossy).value();
  auto made = mq::Consumer::make(ring, keyed());
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code(), mq::Errc::invalid_argument);
  EXPECT_TRUE(contains(made.error().message(), "block topic")) << made.error().what();
  EXPECT_EQ(mq::parse_ordering("key"), mq::Ordering::key);
  EXPECT_EQ(mq::parse_ordering("keyed"), std::nullopt);
  EXPECT_EQ(mq::ordering_name(mq::Ordering::exclusive), "exclusive");
}

}  // namespace
