// Retries under concurrency (threads over one mapping, for ThreadSanitizer): members nack on purpose while producers
// wrap a 64 KiB block topic and one member keeps leaving with records held and its nacks waiting (none lost, none
// overwritten while it waits); records failing every attempt reach `<topic>.dlq` once each, under two racing members.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;
using mqtest::text;
using Nacked = mq::Consumer::Nacked;

// Delays of (0, 1] ms after a first failure and (0, 2] ms after later ones (jitter 1: any fraction off).
mq::RetryPolicy quick_retries(std::uint32_t max_attempts) {
  mq::RetryPolicy r;
  r.max_attempts = max_attempts;
  r.backoff = 1ms;
  r.factor = 2.0;
  r.max_backoff = 2ms;
  r.jitter = 1.0;
  return r;
}

mq::ConsumerOptions worker(std::uint32_t max_attempts) {
  mq::ConsumerOptions o = member_options("g", mq::Start::earliest, mq::Wait::spin_futex, /*auto_ack=*/false);
  o.retry = quick_retries(max_attempts);
  return o;
}

// What every delivery is checked against: per offset, the record (index producer * per_producer + seq, plus 1) its
// first delivery carried, which every later delivery of that offset must carry too.
struct Records {
  explicit Records(const Workload& w) : workload(w), key_at(w.total()) {}
  Workload workload;
  std::vector<std::atomic<std::uint64_t>> key_at;  // 0: not delivered yet
  std::atomic<std::uint64_t> deliveries{0};        // progress, for the stall detectors
};

// Checks one delivery: its payload intact and of the workload, a claimed record at the offset its producer was given,
// and at its offset the record every earlier delivery of that offset carried. "" or the problem; `index` gets the
// record's index. A producer that overwrote a record still held or waiting shows here, or as an offset delivered
// from the retry table that was never nacked (the caller checks that).
std::string same_record(const mq::Message& m, Records& records, std::uint64_t& index) {
  const Workload& w = records.workload;
  const std::string at = "offset " + std::to_string(m.offset()) + " attempt " + std::to_string(m.attempt());
  records.deliveries.fetch_add(1);
  if (m.offset() >= w.total()) return at + ": past the last record";
  std::string why;
  const auto head = decode_payload(m.payload(), &why);
  if (!head) return at + ": " + why;
  if (head->producer >= w.producers || head->seq >= w.per_producer)
    return at + ": producer " + std::to_string(head->producer) + " seq " + std::to_string(head->seq);
  if (head->offset != kUnknownOffset && head->offset != m.offset())
    return at + ": a record claimed at offset " + std::to_string(head->offset);
  index = head->producer * w.per_producer + head->seq;
  std::uint64_t first = 0;
  if (!records.key_at[m.offset()].compare_exchange_strong(first, index + 1) && first != index + 1)
    return at + ": record " + std::to_string(index) + " where record " + std::to_string(first - 1) +
           " was delivered before (overwritten while held or waiting)";
  return {};
}

// Nacks `m`, again and again while the group's retry table is full (another member filled its last entry first: the
// record stays held, and members that poll take the retries that come due, making room), for kStallLimit at most.
mq::Result<Nacked> nack_until_room(mq::Consumer& c, mq::Message& m, std::optional<std::chrono::milliseconds> delay,
                                   std::string_view error, std::atomic<std::uint64_t>& refused) {
  const auto deadline = Clock::now() + kStallLimit;
  for (;;) {
    auto n = delay ? c.nack(std::move(m), *delay, error) : c.nack(std::move(m), error);
    if (n || n.error().code() != mq::Errc::limit || Clock::now() >= deadline || aborted()) return n;
    refused.fetch_add(1);
    std::this_thread::yield();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Scenario 1: every record fails its first (seq % 3) attempts, then is acked; a record handed back by a leaving
// member starts from attempt 1 again. No member dies, so each delivery ends in exactly one ack, nack or hand-back:
// every record is acked exactly once.

struct Ledger {
  explicit Ledger(const Workload& w)
      : records(w),
        nacks(w.total()),
        handed_back(w.total()),
        words(Bitmap::words_for(w.total())),
        acked(words.data(), w.total()) {}
  Records records;
  std::vector<std::atomic<std::uint32_t>> nacks;        // per offset: nacks begun (counted before the call)
  std::vector<std::atomic<std::uint32_t>> handed_back;  // per offset: held by a member as it closed (counted before)
  std::vector<std::uint64_t> words;
  Bitmap acked;  // by record index
  std::atomic<std::uint64_t> acked_count{0};
  std::atomic<std::uint64_t> duplicate_acks{0};
  std::atomic<std::uint64_t> retried{0};  // deliveries from the retry table, payload and offset verified
  std::atomic<std::uint64_t> refused{0};  // nacks refused by a full retry table, then repeated
  std::atomic<std::uint64_t> leaves{0};   // closes holding records just after a nack of the same member
  bool done() const { return acked_count.load() >= acked.bits(); }
};

// Checks one delivery (same_record, and a retried one only of an offset nacked that often, a redelivered first
// attempt only of one handed back), then acks or nacks it as the rule says. `delay`: the nack's own (else the
// group's backoff). "" or the problem; `nacked` says which it was.
std::string settle(mq::Consumer& c, mq::Message&& m, Ledger& ledger, std::optional<std::chrono::milliseconds> delay,
                   bool& nacked) {
  std::uint64_t index = 0;
  if (auto why = same_record(m, ledger.records, index); !why.empty()) return why;
  const mq::Offset offset = m.offset();
  const std::string at = "offset " + std::to_string(offset) + " attempt " + std::to_string(m.attempt());
  if (m.attempt() > 1) {
    if (ledger.nacks[offset].load() < m.attempt() - 1)
      return at + ": from the retry table, but nacked " + std::to_string(ledger.nacks[offset].load()) + " times";
    if (!m.redelivered() || m.first_failure_ns() <= 0) return at + ": a retry not flagged as one";
    ledger.retried.fetch_add(1);
  } else if (m.first_failure_ns() != 0 || (m.redelivered() && ledger.handed_back[offset].load() == 0)) {
    return at + ": flagged redelivered or failed before, never handed back";
  }
  const std::uint64_t seq = index % ledger.records.workload.per_producer;
  nacked = m.attempt() <= seq % 3;
  if (nacked) {
    ledger.nacks[offset].fetch_add(1);  // before the nack: a member may take the retry before it returns
    const std::string error = "failing " + at;
    if (seq % 5 == 0 && !delay) delay = 0ms;  // due at once: another member may take it while this one returns
    auto n = nack_until_room(c, m, delay, error, ledger.refused);
    if (!n) return at + ": nack: " + n.error().what() + "\n" + dump_topic(c.topic());
    return *n == Nacked::retry ? "" : at + ": dead-lettered";
  }
  if (auto a = c.ack(std::move(m)); !a) return at + ": ack: " + a.error().what();
  if (ledger.acked.set(index))
    ledger.acked_count.fetch_add(1);
  else
    ledger.duplicate_acks.fetch_add(1);
  return {};
}

std::string wedged(const mq::Topic& topic, const Ledger& ledger) {
  return "wedged: " + std::to_string(ledger.acked_count.load()) + " of " + std::to_string(ledger.acked.bits()) +
         " records acked\n" + dump_topic(topic);
}

// A member that stays: settles what it gets until every record is acked.
std::string steady_member(const mq::Topic& topic, Ledger& ledger) {
  auto c = mq::Consumer::make(topic, worker(10));
  if (!c) return c.error().what();
  StallDetector stall;
  while (!ledger.done()) {
    auto m = c->poll(20ms);
    if (!m) {
      if (m.error().code() != mq::Errc::timed_out) return m.error().what();
      if (aborted()) return kAborted;
      if (stall.stalled(ledger.records.deliveries.load())) return wedged(topic, ledger);
      continue;
    }
    bool nacked = false;
    if (auto why = settle(*c, std::move(*m), ledger, std::nullopt, nacked); !why.empty()) return why;
  }
  return {};
}

// A member that leaves, over and over: settles records until it has settled a few and the last was a nack (made
// with a 5 ms delay, so the record most likely still waits in the retry table as this member leaves), then takes
// 1..4 more without settling them and closes, handing those back to the group.
std::string leaving_member(const mq::Topic& topic, Ledger& ledger, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  StallDetector stall;
  while (!ledger.done()) {
    if (aborted()) return kAborted;
    if (stall.stalled(ledger.records.deliveries.load())) return wedged(topic, ledger);
    auto c = mq::Consumer::make(topic, worker(10));
    if (!c) return c.error().what();
    const unsigned least = 1 + rng() % 16;
    unsigned settled = 0;
    bool last_nacked = false;
    while ((settled < least || !last_nacked) && settled < 4 * least + 8) {
      auto m = c->poll(5ms);
      if (!m) {
        if (m.error().code() != mq::Errc::timed_out) return m.error().what();
        break;
      }
      if (auto why = settle(*c, std::move(*m), ledger, 5ms, last_nacked); !why.empty()) return why;
      ++settled;
    }
    std::vector<mq::Offset> holding;
    for (unsigned i = 0, n = 1 + rng() % 4; i < n; ++i) {
      auto m = c->poll(2ms);
      if (!m) {
        if (m.error().code() != mq::Errc::timed_out) return m.error().what();
        break;
      }
      std::uint64_t index = 0;
      if (auto why = same_record(*m, ledger.records, index); !why.empty()) return why;
      holding.push_back(m->offset());
    }
    for (const mq::Offset o : holding) ledger.handed_back[o].fetch_add(1);  // before the close makes them visible
    if (!holding.empty() && last_nacked) ledger.leaves.fetch_add(1);
  }  // the Consumer closes here
  return {};
}

TEST_F(Concurrency, NackedRecordsComeBackIntactWhileProducersWrapAndAMemberLeaves) {
  const std::uint64_t per_producer = kThreadSanitizer ? 500 : (kSanitized ? 600 : 1000);
  const Workload w{2, per_producer, 256, 0x7e7};  // records of 128..384 bytes: the ring wraps ~7 times (release)
  auto topic = mq::Topic::create("flaky", small_ring());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest, quick_retries(10)));
  Ledger ledger(w);
  std::vector<std::string> failures;
  {
    ThreadCrew crew(*topic);
    crew.spawn("steady-1", [&](const mq::Topic& t) { return steady_member(t, ledger); });
    crew.spawn("steady-2", [&](const mq::Topic& t) { return steady_member(t, ledger); });
    crew.spawn("leaving", [&](const mq::Topic& t) { return leaving_member(t, ledger, 7); });
    for (unsigned p = 0; p < w.producers; ++p)
      crew.spawn("producer-" + std::to_string(p), [&, p](const mq::Topic& t) { return run_producer(t, p, w); });
    failures = crew.join();
  }
  expect_no_failures(failures);
  const auto missing = ledger.acked.first_clear();
  EXPECT_FALSE(missing) << "record " << missing.value_or(0) << " never acked";
  EXPECT_EQ(ledger.duplicate_acks.load(), 0u) << "no member died: a record is acked once";
  EXPECT_GT(ledger.retried.load(), 0u);
  EXPECT_GT(ledger.leaves.load(), 0u);
  const mq::TopicInfo info = topic->info();
  ASSERT_EQ(info.groups.size(), 1u);
  EXPECT_EQ(info.latest, w.total());
  EXPECT_EQ(info.groups[0].committed, w.total());
  EXPECT_EQ(info.groups[0].lag, 0u);
  EXPECT_EQ(info.groups[0].retrying, 0u);
  EXPECT_EQ(info.groups[0].unacked, 0u);
  EXPECT_EQ(info.groups[0].members, 0u);
  auto dlq = mq::Topic::open("flaky.dlq");
  ASSERT_FALSE(dlq) << "a record was dead-lettered";
  EXPECT_EQ(dlq.error().code(), mq::Errc::not_found);
  std::printf("retried deliveries: %llu, leaves holding records: %llu, nacks refused by a full table: %llu\n",
              static_cast<unsigned long long>(ledger.retried.load()),
              static_cast<unsigned long long>(ledger.leaves.load()),
              static_cast<unsigned long long>(ledger.refused.load()));
}

// With kRetrySlots records waiting, members take no new records, only retries as they come due, "so a nack finds
// room" (consumer.hpp). A record a closing member handed back is one more record to nack: taken with the table full,
// its nack must still find room, or members that repeat their refused nacks (as the scenario above does) all end up
// holding one and none takes the retries that would make room. (Single thread: the order is what matters.)
TEST_F(Concurrency, ARecordHandedBackWhileTheRetryTableIsFullCanStillBeNacked) {
  auto topic = mq::Topic::create("full-table", small_ring());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest, quick_retries(10)));
  mq::Producer producer(*topic);
  for (std::uint64_t i = 0; i <= mq::kRetrySlots + 1; ++i) ASSERT_TRUE(producer.publish(numbered_payload(i)));
  mq::Consumer member(*topic, worker(10));
  std::optional<mq::Consumer> leaving(std::in_place, *topic, worker(10));
  auto held = leaving->poll(1s);
  ASSERT_TRUE(held) << held.error().what();
  for (std::size_t i = 0; i < mq::kRetrySlots; ++i) {
    auto m = member.poll(1s);
    ASSERT_TRUE(m) << m.error().what();
    ASSERT_TRUE(member.nack(std::move(*m), 60s)) << "offset " << i + 1;
  }
  ASSERT_EQ(topic->info().groups[0].retrying, mq::kRetrySlots);
  leaving.reset();  // hands offset 0 back to the group
  auto again = member.poll(mqtest::kNow);
  if (!again) {  // not handed out while the table is full: fine, it waits like a new record
    EXPECT_EQ(again.error().code(), mq::Errc::timed_out) << again.error().what();
    return;
  }
  EXPECT_EQ(again->offset(), 0u);
  auto nacked = member.nack(std::move(*again), 60s);
  EXPECT_TRUE(nacked) << "a record handed out with the retry table full cannot be nacked, though no other member "
                         "nacked since: "
                      << nacked.error().what() << "\n"
                      << dump_topic(*topic);
}

// ---------------------------------------------------------------------------------------------------------------
// Scenario 2: every record fails both its attempts (max_attempts 2): two members race to park and to dead-letter,
// the first dead letter creates `<topic>.dlq` under whichever member gets there first, and a reader of its group
// "replay" checks every letter against the record its source offset held. No member dies: one letter per record.

struct DeadLedger {
  explicit DeadLedger(const Workload& w)
      : records(w), words(Bitmap::words_for(w.total())), letters(words.data(), w.total()) {}
  Records records;
  std::vector<std::uint64_t> words;
  Bitmap letters;                               // by source offset
  std::atomic<std::uint64_t> dead_lettered{0};  // nacks that answered dead_lettered
  std::atomic<std::uint64_t> read{0};           // distinct letters read
  std::atomic<std::uint64_t> duplicate_letters{0};
  std::atomic<std::uint64_t> refused{0};
};

// Nacks everything it gets: attempt 1 must park the record, attempt 2 dead-letter it.
std::string failing_member(const mq::Topic& topic, DeadLedger& ledger) {
  auto c = mq::Consumer::make(topic, worker(2));
  if (!c) return c.error().what();
  StallDetector stall;
  while (ledger.dead_lettered.load() < ledger.letters.bits()) {
    auto m = c->poll(20ms);
    if (!m) {
      if (m.error().code() != mq::Errc::timed_out) return m.error().what();
      if (aborted()) return kAborted;
      if (stall.stalled(ledger.records.deliveries.load()))
        return "wedged at " + std::to_string(ledger.dead_lettered.load()) + " dead letters\n" + dump_topic(topic);
      continue;
    }
    std::uint64_t index = 0;
    if (auto why = same_record(*m, ledger.records, index); !why.empty()) return why;
    const std::uint32_t attempt = m->attempt();
    const std::string at = "offset " + std::to_string(m->offset()) + " attempt " + std::to_string(attempt);
    if (attempt > 2 || m->redelivered() != (attempt == 2))
      return at + ": redelivered=" + (m->redelivered() ? "1" : "0");
    auto n = nack_until_room(*c, *m, std::nullopt, at, ledger.refused);
    if (!n) return at + ": nack: " + n.error().what() + "\n" + dump_topic(topic);
    if (*n != (attempt == 1 ? Nacked::retry : Nacked::dead_lettered)) return at + ": nack answered the wrong way";
    if (*n == Nacked::dead_lettered) ledger.dead_lettered.fetch_add(1);
  }
  return {};
}

// Checks one dead letter: its dlq headers, and its payload the record its source offset held. "" or the problem.
std::string check_letter(const mq::Message& letter, DeadLedger& ledger) {
  std::map<std::string, std::string, std::less<>> h;
  for (const auto& header : letter.headers()) h[std::string(header.name)] = text(header.value);
  const auto get = [&h](std::string_view name) {
    const auto it = h.find(name);
    return it == h.end() ? std::string("(none)") : it->second;
  };
  const std::string offset_text = get(mq::dlq_header::offset);
  mq::Offset offset = 0;
  const auto parsed = std::from_chars(offset_text.data(), offset_text.data() + offset_text.size(), offset);
  if (parsed.ec != std::errc() || parsed.ptr != offset_text.data() + offset_text.size() ||
      offset >= ledger.letters.bits())
    return "letter " + std::to_string(letter.offset()) + ": mq.dlq.offset '" + offset_text + "'";
  const std::string at = "letter of offset " + offset_text;
  std::string why;
  const auto head = decode_payload(letter.payload(), &why);
  if (!head) return at + ": " + why;
  const std::uint64_t index = head->producer * ledger.records.workload.per_producer + head->seq;
  if (ledger.records.key_at[offset].load() != index + 1)
    return at + ": carries record " + std::to_string(index) + ", the offset held record " +
           std::to_string(ledger.records.key_at[offset].load() - 1);
  const std::string first_failure = get(mq::dlq_header::first_failure);
  if (get(mq::dlq_header::topic) != "poison" || get(mq::dlq_header::group) != "g" ||
      get(mq::dlq_header::attempts) != "2" || get(mq::dlq_header::error) != "offset " + offset_text + " attempt 2" ||
      first_failure.empty() || first_failure[0] < '1' || first_failure[0] > '9')
    return at + ": headers topic=" + get(mq::dlq_header::topic) + " group=" + get(mq::dlq_header::group) +
           " attempts=" + get(mq::dlq_header::attempts) + " error=" + get(mq::dlq_header::error) +
           " first_failure=" + first_failure;
  if (ledger.letters.set(offset))
    ledger.read.fetch_add(1);
  else
    ledger.duplicate_letters.fetch_add(1);
  return {};
}

// Reads the dead-letter topic (once the first dead letter made it) as group "replay" until every offset came.
std::string dlq_reader(DeadLedger& ledger) {
  if (!eventually([&] { return ledger.dead_lettered.load() > 0 || aborted(); }, kStallLimit))
    return "no dead letter within " + std::to_string(kStallLimit.count()) + " s";
  if (aborted()) return kAborted;
  auto dlq = mq::Topic::open("poison.dlq");
  if (!dlq) return std::string("open: ") + dlq.error().what();
  auto c = mq::Consumer::make(*dlq, member_options(std::string(mq::kDeadLetterGroup), mq::Start::earliest,
                                                   mq::Wait::spin_futex, /*auto_ack=*/false));
  if (!c) return c.error().what();
  StallDetector stall;
  while (ledger.read.load() < ledger.letters.bits()) {
    auto m = c->poll(20ms);
    if (!m) {
      if (m.error().code() != mq::Errc::timed_out) return m.error().what();
      if (aborted()) return kAborted;
      if (stall.stalled(ledger.read.load() + ledger.records.deliveries.load()))
        return "read " + std::to_string(ledger.read.load()) + " letters, then none\n" + dump_topic(*dlq);
      continue;
    }
    if (auto why = check_letter(*m, ledger); !why.empty()) return why;
    if (auto a = c->ack(std::move(*m)); !a) return std::string("ack: ") + a.error().what();
  }
  return {};
}

TEST_F(Concurrency, RecordsFailingEveryAttemptReachTheDeadLetterTopicOnceEach) {
  const std::uint64_t records = kThreadSanitizer ? 500 : (kSanitized ? 600 : 1000);
  const Workload w{1, records, 128, 0xdead};
  auto topic = mq::Topic::create("poison", small_ring());
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest, quick_retries(2)));
  DeadLedger ledger(w);
  std::vector<std::string> failures;
  {
    ThreadCrew crew(*topic);
    crew.spawn("member-1", [&](const mq::Topic& t) { return failing_member(t, ledger); });
    crew.spawn("member-2", [&](const mq::Topic& t) { return failing_member(t, ledger); });
    crew.spawn("dlq-reader", [&](const mq::Topic&) { return dlq_reader(ledger); });
    crew.spawn("producer", [&](const mq::Topic& t) { return run_producer(t, 0, w); });
    failures = crew.join();
  }
  expect_no_failures(failures);
  const auto missing = ledger.letters.first_clear();
  EXPECT_FALSE(missing) << "offset " << missing.value_or(0) << " never reached the dead-letter topic";
  EXPECT_EQ(ledger.duplicate_letters.load(), 0u) << "no member died: one dead letter per record";
  EXPECT_EQ(ledger.dead_lettered.load(), records);
  const mq::TopicInfo source = topic->info();
  ASSERT_EQ(source.groups.size(), 1u);
  EXPECT_EQ(source.groups[0].committed, records);
  EXPECT_EQ(source.groups[0].lag, 0u);
  EXPECT_EQ(source.groups[0].retrying, 0u);
  EXPECT_EQ(source.groups[0].unacked, 0u);
  auto dlq = mq::Topic::open("poison.dlq");
  ASSERT_TRUE(dlq) << dlq.error().what();
  const mq::TopicInfo letters = dlq->info();
  EXPECT_EQ(letters.latest, records) << "one letter per record";
  ASSERT_EQ(letters.groups.size(), 1u);
  EXPECT_EQ(letters.groups[0].name, std::string(mq::kDeadLetterGroup));
  EXPECT_EQ(letters.groups[0].lag, 0u);
  std::printf("nacks refused by a full table: %llu\n", static_cast<unsigned long long>(ledger.refused.load()));
}

}  // namespace
