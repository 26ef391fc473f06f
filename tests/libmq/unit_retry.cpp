// Unit tests of nack in one process: a nacked record is invisible for its delay, then comes back (to any member)
// with its attempt and first-failure time while other records flow; backoff grows by the group's factor; the last
// attempt's nack dead-letters it to `<topic>.dlq` with the dlq headers; the group's committed offset (and so the
// producers of a block topic) stay behind a record that waits; a full retry table, a bad policy and a record not
// held are clear errors. Delays are measured against CLOCK_MONOTONIC as bounds: never slept on.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.hpp"
#include "libmq/libmq.hpp"
#include "test_util.hpp"

namespace {

using mqtest::bytes;
using mqtest::contains;
using mqtest::kNow;
using mqtest::text;
using namespace std::chrono_literals;
using Nacked = mq::Consumer::Nacked;

using UnitRetry = mqtest::TopicTest;

std::int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

mq::ConsumerOptions manual(std::string group, mq::RetryPolicy retry = {}) {
  mq::ConsumerOptions o;
  o.group = std::move(group);
  o.start = mq::Start::earliest;
  o.auto_ack = false;
  o.retry = retry;
  return o;
}

mq::RetryPolicy no_jitter(std::uint32_t attempts, std::chrono::milliseconds backoff) {
  mq::RetryPolicy r;
  r.max_attempts = attempts;
  r.backoff = backoff;
  r.factor = 2.0;
  r.max_backoff = 10s;
  r.jitter = 0.0;
  return r;
}

const mq::GroupInfo& group_of(const mq::TopicInfo& info, const std::string& name) {
  for (const auto& g : info.groups)
    if (g.name == name) return g;
  throw std::runtime_error("no group " + name);
}

std::map<std::string, std::string> headers_of(const mq::Message& m) {
  std::map<std::string, std::string> out;
  for (const auto& h : m.headers()) out[std::string(h.name)] = text(h.value);
  return out;
}

TEST_F(UnitRetry, ANackedRecordIsInvisibleForItsDelayThenComesBackWithItsAttempt) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, manual("workers"));
  ASSERT_TRUE(producer.publish(bytes("invite-1")));
  auto first = consumer.poll(1s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->attempt(), 1u);
  EXPECT_EQ(first->first_failure_ns(), 0);
  EXPECT_FALSE(first->redelivered());

  const std::int64_t before = mq::detail::realtime_ns();
  const std::int64_t nacked_at = mono_ms();
  auto nacked = consumer.nack(std::move(*first), 300ms, "mail server down");
  ASSERT_TRUE(nacked) << nacked.error().what();
  EXPECT_EQ(*nacked, Nacked::retry);
  EXPECT_EQ(group_of(topic.info(), "workers").retrying, 1u);

  auto too_soon = consumer.poll(kNow);
  ASSERT_FALSE(too_soon);
  EXPECT_EQ(too_soon.error().code(), mq::Errc::timed_out);
  auto again = consumer.poll(5s);
  const std::int64_t waited = mono_ms() - nacked_at;
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_GE(waited, 300 - 1);  // (the retry's due time is CLOCK_REALTIME; 1 ms for the two clocks' readings)
  EXPECT_LT(waited, 3000);
  EXPECT_EQ(text(again->payload()), "invite-1");
  EXPECT_EQ(again->offset(), 0u);
  EXPECT_EQ(again->attempt(), 2u);
  EXPECT_TRUE(again->redelivered());
  EXPECT_GE(again->first_failure_ns(), before);
  EXPECT_LE(again->first_failure_ns(), mq::detail::realtime_ns());
  EXPECT_EQ(group_of(topic.info(), "workers").retrying, 0u);
  ASSERT_TRUE(consumer.ack(std::move(*again)));
  EXPECT_EQ(group_of(topic.info(), "workers").lag, 0u);
}

TEST_F(UnitRetry, OtherRecordsFlowWhileOneWaitsAndTheCommittedOffsetStaysBehindIt) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, manual("workers"));
  for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(producer.publish(bytes(p)));
  auto a = consumer.poll(1s);
  ASSERT_TRUE(a);
  ASSERT_TRUE(consumer.nack(std::move(*a), 60s));
  for (const char* p : {"b", "c"}) {
    auto m = consumer.poll(1s);
    ASSERT_TRUE(m) << m.error().what();
    EXPECT_EQ(text(m->payload()), p);
    ASSERT_TRUE(consumer.ack(std::move(*m)));
  }
  const auto g = group_of(topic.info(), "workers");
  EXPECT_EQ(g.committed, 0u) << "the committed offset passed a record waiting for its retry";
  EXPECT_EQ(g.lag, 3u);
  EXPECT_EQ(g.next, 3u);
  EXPECT_EQ(g.retrying, 1u);
  // A group reset (or delete_records past it) drops what waits: the group restarts there.
  ASSERT_TRUE(topic.reset_group("workers", mq::Start::latest));
  EXPECT_EQ(group_of(topic.info(), "workers").retrying, 0u);
  EXPECT_FALSE(consumer.poll(kNow));
}

TEST_F(UnitRetry, AnotherMemberTakesTheRetryOnceItIsDue) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, manual("workers"));
  mq::Consumer b(topic, manual("workers"));
  ASSERT_TRUE(producer.publish(bytes("x")));
  auto m = a.poll(1s);
  ASSERT_TRUE(m);
  ASSERT_TRUE(a.nack(std::move(*m), 0ms));
  auto taken = b.poll(1s);
  ASSERT_TRUE(taken) << taken.error().what();
  EXPECT_EQ(text(taken->payload()), "x");
  EXPECT_EQ(taken->attempt(), 2u);
  EXPECT_FALSE(a.poll(kNow));
  ASSERT_TRUE(b.ack(std::move(*taken)));
}

TEST_F(UnitRetry, ABatchIsNackedRecordByRecordAndComesBackWhole) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, manual("workers", no_jitter(2, 10ms)));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(producer.publish(bytes("b" + std::to_string(i))));
  std::vector<mq::Message> batch;
  ASSERT_EQ(consumer.poll_batch(batch, 5, 1s).value(), 5u);
  // The first two are acked, the last three nacked: the nack of b2 acks what came before it.
  ASSERT_TRUE(consumer.ack(std::move(batch[1])));
  auto nacked = consumer.nack(std::span(batch).subspan(2), std::nullopt, "batch failed");
  ASSERT_TRUE(nacked) << nacked.error().what();
  EXPECT_EQ(*nacked, 0u);
  EXPECT_EQ(consumer.unacked(), 0u);
  EXPECT_EQ(group_of(topic.info(), "workers").retrying, 3u);
  std::vector<std::string> again;
  std::vector<mq::Message> retried;
  while (again.size() < 3) {
    auto m = consumer.poll(2s);
    ASSERT_TRUE(m) << m.error().what();
    EXPECT_EQ(m->attempt(), 2u);
    again.push_back(text(m->payload()));
    retried.push_back(std::move(*m));
  }
  std::sort(again.begin(), again.end());
  EXPECT_EQ(again, (std::vector<std::string>{"b2", "b3", "b4"}));
  // Their last attempt: the batch form dead-letters all three and says so.
  auto dead = consumer.nack(std::span(retried), std::nullopt, "still failing");
  ASSERT_TRUE(dead) << dead.error().what();
  EXPECT_EQ(*dead, 3u);
  EXPECT_EQ(group_of(topic.info(), "workers").lag, 0u);
  // A record not held stops the batch with an error naming it.
  auto twice = consumer.nack(std::span(retried).first(1));
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), mq::Errc::invalid_argument);
}

TEST_F(UnitRetry, BackoffGrowsByTheFactorAndTheLastAttemptIsDeadLettered) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, manual("mailer", no_jitter(3, 100ms)));
  const mq::Header header{"trace", bytes("t-42")};
  ASSERT_TRUE(producer.publish(mq::Record{bytes("poison"), bytes("user-7"), std::span(&header, 1), 1234}));
  ASSERT_TRUE(producer.publish(bytes("fine")));

  auto m = consumer.poll(5s);
  ASSERT_TRUE(m);
  ASSERT_EQ(text(m->payload()), "poison");
  const std::int64_t wall_first = mq::detail::realtime_ns();
  std::int64_t nacked_at = mono_ms();
  ASSERT_TRUE(consumer.nack(std::move(*m), "smtp 550 attempt 1"));
  auto fine = consumer.poll(kNow);  // no head-of-line blocking: at once, while "poison" waits
  ASSERT_TRUE(fine) << fine.error().what();
  EXPECT_EQ(text(fine->payload()), "fine");
  ASSERT_TRUE(consumer.ack(std::move(*fine)));

  std::int64_t first_failure = 0;
  std::vector<std::int64_t> gaps;  // ms from each nack to the next delivery
  for (std::uint32_t attempt = 2; attempt <= 3; ++attempt) {
    m = consumer.poll(5s);
    gaps.push_back(mono_ms() - nacked_at);
    ASSERT_TRUE(m) << m.error().what();
    EXPECT_EQ(text(m->payload()), "poison");
    EXPECT_EQ(m->attempt(), attempt);
    if (attempt == 2) first_failure = m->first_failure_ns();
    EXPECT_GE(first_failure, wall_first);
    EXPECT_EQ(m->first_failure_ns(), first_failure);
    nacked_at = mono_ms();
    auto nacked = consumer.nack(std::move(*m), "smtp 550 attempt " + std::to_string(attempt));
    ASSERT_TRUE(nacked) << nacked.error().what();
    EXPECT_EQ(*nacked, attempt < 3 ? Nacked::retry : Nacked::dead_lettered);
  }
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_GE(gaps[0], 100 - 1);
  EXPECT_GE(gaps[1], 200 - 1);  // backoff x factor
  EXPECT_LT(gaps[1], 3000);
  const auto g = group_of(topic.info(), "mailer");
  EXPECT_EQ(g.lag, 0u);
  EXPECT_EQ(g.retrying, 0u);

  // The dead letter: the record as published, and where it came from.
  auto dlq = mq::Topic::open("jobs.dlq");
  ASSERT_TRUE(dlq) << dlq.error().what();
  ASSERT_EQ(dlq->info().groups.size(), 1u);
  EXPECT_EQ(dlq->info().groups[0].name, std::string(mq::kDeadLetterGroup));
  mq::Consumer reader(*dlq, manual(std::string(mq::kDeadLetterGroup)));
  auto letter = reader.poll(1s);
  ASSERT_TRUE(letter) << letter.error().what();
  EXPECT_EQ(text(letter->payload()), "poison");
  ASSERT_TRUE(letter->key());
  EXPECT_EQ(text(*letter->key()), "user-7");
  EXPECT_EQ(letter->timestamp_ns(), 1234);
  auto h = headers_of(*letter);
  EXPECT_EQ(h["trace"], "t-42");
  EXPECT_EQ(h[std::string(mq::dlq_header::topic)], "jobs");
  EXPECT_EQ(h[std::string(mq::dlq_header::offset)], "0");
  EXPECT_EQ(h[std::string(mq::dlq_header::group)], "mailer");
  EXPECT_EQ(h[std::string(mq::dlq_header::attempts)], "3");
  EXPECT_EQ(h[std::string(mq::dlq_header::error)], "smtp 550 attempt 3");
  EXPECT_EQ(h[std::string(mq::dlq_header::first_failure)], std::to_string(first_failure));
  EXPECT_FALSE(reader.poll(kNow));
}

// dead_letter: at once, at the first attempt, whatever the policy (10 attempts here); acked as ack acks (what came
// before it too, not what came after); a record not held is refused (an overwrite topic's: below, with nack's).
TEST_F(UnitRetry, DeadLetterSendsARecordToTheDeadLetterTopicAtOnce) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, manual("bridge", no_jitter(10, 1s)));
  for (const char* p : {"before", "too-large", "after"}) ASSERT_TRUE(producer.publish(bytes(p)));
  std::vector<mq::Message> batch;
  auto n = consumer.poll_batch(batch, 3, 1s);
  ASSERT_TRUE(n) << n.error().what();
  ASSERT_EQ(*n, 3u);
  ASSERT_EQ(text(batch[1].payload()), "too-large");
  ASSERT_TRUE(consumer.dead_letter(std::move(batch[1]), "larger than Kafka takes"));
  auto g = group_of(topic.info(), "bridge");
  EXPECT_EQ(g.committed, 2u);  // "before" with it; "after" still held
  EXPECT_EQ(g.retrying, 0u);
  auto again = consumer.dead_letter(std::move(batch[1]), "twice");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), mq::Errc::invalid_argument);

  mq::Consumer reader(mq::Topic::open("jobs.dlq").value(), manual(std::string(mq::kDeadLetterGroup)));
  auto letter = reader.poll(1s);
  ASSERT_TRUE(letter) << letter.error().what();
  EXPECT_EQ(text(letter->payload()), "too-large");
  auto h = headers_of(*letter);
  EXPECT_EQ(h[std::string(mq::dlq_header::offset)], "1");
  EXPECT_EQ(h[std::string(mq::dlq_header::group)], "bridge");
  EXPECT_EQ(h[std::string(mq::dlq_header::attempts)], "1");
  EXPECT_EQ(h[std::string(mq::dlq_header::error)], "larger than Kafka takes");
  EXPECT_FALSE(reader.poll(kNow));
}

TEST_F(UnitRetry, AFullRetryTableStopsNewRecordsAndARacingNackIsALimit) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, manual("workers"));
  mq::Consumer b(topic, manual("workers"));
  for (std::size_t i = 0; i <= mq::kRetrySlots + 1; ++i) ASSERT_TRUE(producer.publish(bytes("r" + std::to_string(i))));
  for (std::size_t i = 0; i + 1 < mq::kRetrySlots; ++i) {
    auto m = a.poll(1s);
    ASSERT_TRUE(m);
    ASSERT_TRUE(a.nack(std::move(*m), 60s)) << i;
  }
  auto late = b.poll(1s);  // taken while one entry is still free
  ASSERT_TRUE(late);
  auto m = a.poll(1s);
  ASSERT_TRUE(m);
  ASSERT_TRUE(a.nack(std::move(*m), 60s));  // the last entry
  EXPECT_EQ(group_of(topic.info(), "workers").retrying, mq::kRetrySlots);

  auto full = b.nack(std::move(*late), 60s);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), mq::Errc::limit);
  EXPECT_TRUE(contains(full.error().message(), "retry table is full")) << full.error().what();
  EXPECT_EQ(b.unacked(), 1u);
  // No new record while the table is full (one is published and waits): back-pressure, not a pile of refusals.
  auto held_back = a.poll(kNow);
  ASSERT_FALSE(held_back) << "took a new record with the retry table full";
  EXPECT_EQ(held_back.error().code(), mq::Errc::timed_out);
  ASSERT_TRUE(b.ack(std::move(*late))) << "the record stays held after a refused nack";
  // A reset empties the table (the group restarts): records flow again.
  ASSERT_TRUE(topic.reset_group("workers", mq::Start::earliest));
  auto flowing = a.poll(1s);
  ASSERT_TRUE(flowing) << flowing.error().what();
}

TEST_F(UnitRetry, ANackOnAFullTableSwapsWithADueRecord) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::Consumer a(topic, manual("workers"));
  mq::Consumer b(topic, manual("workers"));
  for (std::size_t i = 0; i <= mq::kRetrySlots; ++i) ASSERT_TRUE(producer.publish(bytes("r" + std::to_string(i))));
  auto late = b.poll(1s);  // r0, taken while the table is empty
  ASSERT_TRUE(late);
  const auto filled = std::chrono::steady_clock::now();  // (before the first park: none is due before + 200 ms)
  for (std::size_t i = 0; i < mq::kRetrySlots; ++i) {
    auto m = a.poll(1s);
    ASSERT_TRUE(m);
    ASSERT_TRUE(a.nack(std::move(*m), 200ms)) << i;
  }
  // None due yet: refused, the record stays b's.
  auto refused = b.nack(std::move(*late), 200ms);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), mq::Errc::limit);
  // Once one is due, the same nack swaps: b holds that record and r0 waits in its entry.
  mq::Result<mq::Consumer::Nacked> swapped = refused.error();
  while (!swapped && std::chrono::steady_clock::now() - filled < 5s) swapped = b.nack(std::move(*late), 200ms);
  ASSERT_TRUE(swapped) << swapped.error().what();
  EXPECT_GE(std::chrono::steady_clock::now() - filled, 200ms - 1ms);
  EXPECT_EQ(group_of(topic.info(), "workers").retrying, mq::kRetrySlots);
  auto taken = b.poll(kNow);  // handed out at once: b already holds it
  ASSERT_TRUE(taken) << taken.error().what();
  EXPECT_EQ(taken->attempt(), 2u);
  EXPECT_NE(text(taken->payload()), "r0");
  ASSERT_TRUE(b.ack(std::move(*taken)));
  EXPECT_EQ(b.unacked(), 0u);
}

TEST_F(UnitRetry, AWaitingRecordHoldsProducersBackAsAnUnackedOneDoes) {
  mq::TopicOptions options;
  options.capacity = mq::kMinCapacity;
  options.block_timeout = 50ms;
  auto topic = mq::Topic::create("small", options).value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, manual("workers"));
  const std::string body(1000, 'x');  // 1088-byte records: 60 fill the ring
  ASSERT_TRUE(producer.publish(bytes(body)));
  auto parked = consumer.poll(1s);
  ASSERT_TRUE(parked);
  ASSERT_TRUE(consumer.nack(std::move(*parked), 60s));
  int published = 1;
  mq::Result<mq::Offset> r = mq::Offset{0};
  for (; published < 200; ++published) {
    r = producer.publish(bytes(body));
    if (!r) break;
    auto m = consumer.poll(1s);  // everything else is consumed at once
    ASSERT_TRUE(m);
    ASSERT_TRUE(consumer.ack(std::move(*m)));
  }
  ASSERT_FALSE(r) << "producers lapped a record waiting for its retry";
  EXPECT_EQ(r.error().code(), mq::Errc::full);
  EXPECT_LE(published, 61);
  // Once it is consumed, the ring has room again.
  ASSERT_TRUE(topic.reset_group("workers", mq::Start::latest));
  EXPECT_TRUE(producer.publish(bytes(body)));
}

TEST_F(UnitRetry, BadPoliciesAndNacksAreClearErrors) {
  auto topic = mq::Topic::create("jobs").value();
  const auto refused = [&](mq::RetryPolicy p, std::string_view field) {
    auto r = topic.create_group("g", mq::Start::earliest, p);
    ASSERT_FALSE(r) << field;
    EXPECT_EQ(r.error().code(), mq::Errc::invalid_argument);
    EXPECT_TRUE(contains(r.error().message(), field)) << r.error().what();
    auto c = mq::Consumer::make(topic, manual("g", p));
    ASSERT_FALSE(c) << field;
    EXPECT_TRUE(contains(c.error().message(), field)) << c.error().what();
  };
  refused({.max_attempts = 0}, "max_attempts");
  refused({.max_attempts = 64}, "max_attempts");
  refused({.backoff = 2s, .max_backoff = 1s}, "backoff");
  refused({.factor = 0.5}, "factor");
  refused({.max_backoff = 25h}, "max_backoff");
  refused({.jitter = 1.5}, "jitter");
  EXPECT_FALSE(topic.set_retry_policy("nobody", {}));

  mq::Producer producer(topic);
  mq::Consumer consumer(topic, manual("workers"));
  mq::Consumer other(topic, manual("workers"));
  ASSERT_TRUE(producer.publish(bytes("a")));
  auto m = consumer.poll(1s);
  ASSERT_TRUE(m);
  auto foreign = other.nack(std::move(*m));
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code(), mq::Errc::invalid_argument);
  ASSERT_TRUE(consumer.nack(std::move(*m), 60s));
  auto twice = consumer.nack(std::move(*m), 60s);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), mq::Errc::invalid_argument);
  EXPECT_FALSE(consumer.ack(std::move(*m)));

  ASSERT_TRUE(topic.set_retry_policy("workers", no_jitter(7, 10ms)));
  const auto g = group_of(topic.info(), "workers");
  EXPECT_EQ(g.retry.max_attempts, 7u);
  EXPECT_EQ(g.retry.backoff, 10ms);
  EXPECT_EQ(g.retry.jitter, 0.0);

  mq::TopicOptions lossy;
  lossy.policy = mq::Policy::overwrite;
  auto ring = mq::Topic::create("ring", lossy).value();
  mq::Producer p2(ring);
  mq::Consumer c2(ring, manual("g"));
  ASSERT_TRUE(p2.publish(bytes("a")));
  auto r = c2.poll(1s);
  ASSERT_TRUE(r);
  auto on_overwrite = c2.nack(std::move(*r));
  ASSERT_FALSE(on_overwrite);
  EXPECT_TRUE(contains(on_overwrite.error().message(), "block topic")) << on_overwrite.error().what();
  auto dead_on_overwrite = c2.dead_letter(std::move(*r), "x");  // refused too (the record stayed held)
  ASSERT_FALSE(dead_on_overwrite);
  EXPECT_TRUE(contains(dead_on_overwrite.error().message(), "block topic")) << dead_on_overwrite.error().what();
}

TEST_F(UnitRetry, TheDeadLetterTopicGetsTheSourcesModeAndGroup) {
  const ::group* other = ::getgrnam("daemon");  // a group that is not this process's own
  if (other == nullptr || other->gr_gid == ::getegid()) GTEST_SKIP() << "no group 'daemon' other than our own";
  mq::TopicOptions options;
  options.mode = 0640;
  options.access_group = "daemon";
  auto topic = mq::Topic::create("jobs", options);
  if (!topic && topic.error().code() == mq::Errc::permission_denied) GTEST_SKIP() << "cannot chown (not root)";
  ASSERT_TRUE(topic) << topic.error().what();
  mq::Producer producer(*topic);
  mq::Consumer consumer(*topic, manual("workers", no_jitter(1, 1ms)));
  ASSERT_TRUE(producer.publish(bytes("poison")));
  auto m = consumer.poll(1s);
  ASSERT_TRUE(m);
  auto nacked = consumer.nack(std::move(*m), "malformed");
  ASSERT_TRUE(nacked) << nacked.error().what();
  ASSERT_EQ(*nacked, Nacked::dead_lettered);
  auto dlq = mq::Topic::open("jobs.dlq");
  ASSERT_TRUE(dlq) << dlq.error().what();
  struct stat st{};
  ASSERT_EQ(::stat(dlq->file().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, other->gr_gid) << "the dead-letter topic is not the source's group's";
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(UnitRetry, AnExclusiveGroupHasOneTakerAndAStandbyTakesOverInOrder) {
  auto topic = mq::Topic::create("jobs").value();
  mq::Producer producer(topic);
  mq::ConsumerOptions options = manual("ordered");
  options.ordering = mq::Ordering::exclusive;
  auto active = std::make_optional<mq::Consumer>(topic, options);
  mq::Consumer standby(topic, options);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(producer.publish(bytes("o" + std::to_string(i))));
  EXPECT_EQ(group_of(topic.info(), "ordered").ordering, mq::Ordering::exclusive);
  EXPECT_EQ(group_of(topic.info(), "ordered").active_pid, ::getpid());
  auto first = active->poll(1s);
  ASSERT_TRUE(first);
  EXPECT_EQ(text(first->payload()), "o0");
  auto idle = standby.poll(kNow);
  ASSERT_FALSE(idle) << "a standby took a record while the active member lives";
  // A record waiting for its retry holds back the ones after it.
  ASSERT_TRUE(active->nack(std::move(*first), 150ms));
  EXPECT_FALSE(active->poll(kNow)) << "took o1 while o0 waits";
  auto again = active->poll(2s);
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_EQ(text(again->payload()), "o0");
  ASSERT_TRUE(active->ack(std::move(*again)));
  auto held = active->poll(1s);
  ASSERT_TRUE(held);
  EXPECT_EQ(text(held->payload()), "o1");
  // The active member leaves holding o1 (unacked): the standby takes over from there, in order.
  active.reset();
  std::vector<std::string> rest;
  for (int i = 0; i < 3; ++i) {
    auto m = standby.poll(2s);
    ASSERT_TRUE(m) << m.error().what();
    rest.push_back(text(m->payload()));
    ASSERT_TRUE(standby.ack(std::move(*m)));
  }
  EXPECT_EQ(rest, (std::vector<std::string>{"o1", "o2", "o3"}));
}

}  // namespace
