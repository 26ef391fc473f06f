// Key ordering across processes: three members of an Ordering::key group work records of eight keys, each taking a
// random time per record and acking every third record (so a member holds up to three of them), while one member is
// SIGKILLed mid-run and a fourth joins. Every member logs when it starts and ends each record in memory shared by
// all; after the run, per key: no two members ever worked one key at once, its records were started in offset order
// (going back only to replay what the killed member held), and every record was acked.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here (test_util.hpp's SetUp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;
using mqtest::bytes;
using mqtest::text;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// One record worked by one member: written by that member only (end stays 0 if it died working it).
struct Event {
  std::uint64_t key;
  std::uint64_t offset;
  std::uint64_t member;
  std::int64_t start;
  std::int64_t end;
};

TEST_F(MultiProcess, KeyOrderHoldsAcrossThreeMembersAndAKilledOne) {
  constexpr std::uint64_t kRecords = kSanitized ? 600 : 2000;
  constexpr std::uint64_t kKeys = 8;
  constexpr std::uint64_t kMaxEvents = kRecords * 3;
  auto topic = mq::Topic::create("invites").value();
  ASSERT_TRUE(topic.create_group("g", mq::Start::earliest, {}, mq::Ordering::key));
  mq::Producer producer(topic);
  std::minstd_rand keys_rng(7);
  for (std::uint64_t i = 0; i < kRecords; ++i) {
    const std::string key = "user-" + std::to_string(keys_rng() % kKeys);
    const std::string payload = std::to_string(i);
    mq::Record r{bytes(payload), bytes(key), {}, std::nullopt};
    ASSERT_TRUE(producer.publish(r));
  }
  SharedMap shared(64 + Bitmap::words_for(kRecords) * 8 + kMaxEvents * sizeof(Event));
  auto& events_n = *reinterpret_cast<std::uint64_t*>(shared.data());
  Bitmap acked(reinterpret_cast<std::uint64_t*>(shared.data() + 64), kRecords);
  auto* events = reinterpret_cast<Event*>(shared.data() + 64 + Bitmap::words_for(kRecords) * 8);

  const auto member_body = [&](std::uint64_t id) {
    return [&, id]() -> int {
      auto t = mq::Topic::open("invites");
      if (!t) return child_fail(t.error().what());
      mq::Consumer c(*t, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, /*auto_ack=*/false));
      std::minstd_rand rng(static_cast<unsigned>(id));
      std::vector<std::uint64_t> unacked;
      const auto deadline = Clock::now() + 90s;
      while (acked.count() < kRecords && Clock::now() < deadline) {
        auto m = c.poll(20ms);
        if (!m) {  // nothing more for now: ack what it holds (no record waits on a member idling with it)
          if (!unacked.empty() && c.ack_all()) {
            for (const auto i : unacked) acked.set(i);
            unacked.clear();
          }
          continue;
        }
        const std::string key = text(*m->key());
        const std::uint64_t e = atomic_add(events_n, 1);
        if (e >= kMaxEvents) return child_fail("more events than the log holds");
        events[e] = Event{std::stoull(key.substr(5)), m->offset(), id, now_ns(), 0};
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));  // "sending the e-mail" (work)
        std::atomic_ref<std::int64_t>(events[e].end).store(now_ns());
        unacked.push_back(std::stoull(text(m->payload())));
        if (unacked.size() == 3 || rng() % 4 == 0) {  // acks through this record: the ones before it too
          if (auto a = c.ack(std::move(*m)); !a) return child_fail(a.error().what());
          for (const auto i : unacked) acked.set(i);
          unacked.clear();
        }
      }
      if (!unacked.empty()) (void)c.ack_all();
      for (const auto i : unacked) acked.set(i);
      return acked.count() == kRecords ? 0 : child_fail("not all acked");
    };
  };
  mqtest::Child a(member_body(1)), b(member_body(2)), victim(member_body(3));
  const auto deadline = Clock::now() + 60s;
  while (acked.count() < kRecords / 3 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  const std::int64_t killed_at = now_ns();
  victim.kill9();
  EXPECT_EQ(victim.wait(), 128 + SIGKILL);
  mqtest::Child late(member_body(4));
  EXPECT_EQ(a.wait(120s), 0);
  EXPECT_EQ(b.wait(120s), 0);
  EXPECT_EQ(late.wait(120s), 0);
  EXPECT_EQ(acked.first_clear(), std::nullopt) << "a record was never acked";

  const std::uint64_t n = std::min(atomic_load(events_n), kMaxEvents);
  std::map<std::uint64_t, std::vector<Event>> by_key;
  for (std::uint64_t i = 0; i < n; ++i) by_key[events[i].key].push_back(events[i]);
  std::size_t replays = 0;
  for (auto& [key, list] : by_key) {
    std::sort(list.begin(), list.end(), [](const Event& x, const Event& y) { return x.start < y.start; });
    for (std::size_t i = 1; i < list.size(); ++i) {
      const Event& before = list[i - 1];
      const Event& e = list[i];
      const std::int64_t before_end = before.end != 0 ? before.end : killed_at;  // (died working it)
      EXPECT_GE(e.start, before_end) << "key " << key << ": member " << e.member << " started offset " << e.offset
                                     << " while member " << before.member << " worked offset " << before.offset;
      if (e.offset > before.offset) continue;
      // Back in the log: only to replay what the killed member held, after it died.
      EXPECT_EQ(before.member, 3u) << "key " << key << ": offset " << e.offset << " (member " << e.member
                                   << ") started after offset " << before.offset << " (member " << before.member << ")";
      EXPECT_GT(e.start, killed_at) << "key " << key << ": went back before the kill";
      ++replays;
    }
  }
  EXPECT_EQ(by_key.size(), kKeys);
  std::printf("%llu events for %llu records; %zu replays after the kill\n", static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(kRecords), replays);
}

}  // namespace
