// Producers that "die" mid-claim while other producers publish, members consume and a recoverer runs (threads over
// one small, wrapping mapping, for ThreadSanitizer): a thread claims, writes part of its payload, and abandons the
// claim with its slot marked as owned by a dead process, exactly what a SIGKILL leaves. Recovery holds producers
// back while it writes the skip record; every live record still arrives exactly once per group, and no dead claim
// ever arrives.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "liveness.hpp"
#include "scenario.hpp"
#include "test_point.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;

// What "dead" threads leave behind: their Producer and Claim objects stay here, never destroyed (a destructor would
// abort the claim and free the slot, which the dead cannot do); held from a global, so LeakSanitizer does not count
// them as leaks.
struct Abandoned {
  std::mutex mutex;
  std::vector<std::unique_ptr<mq::Producer>> producers;
  std::vector<mq::Claim> claims;
};
Abandoned* const g_abandoned = new Abandoned;

struct Ledger {
  explicit Ledger(std::uint64_t live_records) : per_record{std::vector<std::atomic<std::uint32_t>>(live_records),
                                                           std::vector<std::atomic<std::uint32_t>>(live_records)} {}
  std::vector<std::atomic<std::uint32_t>> per_record[2];  // per group: (producer, seq) deliveries
  std::atomic<std::uint64_t> delivered[2]{};
  std::mutex mutex;
  std::set<mq::Offset> dead_offsets;            // claims abandoned by the dying thread
  std::set<mq::Offset> offsets_seen[2];         // per group
  std::atomic<bool> dying_done{false};
};

// Claims `claims` times, writes a part of the payload, and abandons the claim as a SIGKILL would.
std::string dying_producer(const mq::Topic& topic, Ledger& ledger, int claims) {
  std::mt19937_64 rng(4242);
  for (int i = 0; i < claims && !aborted(); ++i) {
    auto made = mq::Producer::make(topic, mq::ProducerOptions{std::chrono::milliseconds(200)});
    if (!made) return made.error().what();
    mq::Producer* producer = nullptr;
    {
      const std::lock_guard lock(g_abandoned->mutex);
      producer = g_abandoned->producers.emplace_back(std::make_unique<mq::Producer>(std::move(*made))).get();
    }
    const std::size_t size = kHeadBytes + rng() % 3000;
    auto claim = producer->claim(size);
    while (!claim && claim.error().code() == mq::Errc::full && !aborted()) claim = producer->claim(size);
    if (!claim) return aborted() ? kAborted : std::string(claim.error().what());
    std::memset(claim->bytes().data(), 0xa5, size / 2);
    {
      const std::lock_guard lock(ledger.mutex);
      ledger.dead_offsets.insert(claim->offset());
    }
    // Its slot's owner is now a dead process; the claim stays open forever (the Claim object is abandoned too).
    mq::detail::TestAccess::slot(*producer).owner.store(mq::detail::kOrphanOwner);
    {
      const std::lock_guard lock(g_abandoned->mutex);
      g_abandoned->claims.push_back(std::move(*claim));
    }
    // Spread the deaths over the run: the next one once the members got on by a share of the records.
    const std::uint64_t until = std::min(ledger.delivered[0].load() + ledger.per_record[0].size() / (claims + 1),
                                         static_cast<std::uint64_t>(ledger.per_record[0].size()));
    while (ledger.delivered[0].load() < until && !aborted()) std::this_thread::yield();
  }
  ledger.dying_done = true;
  return {};
}

std::string recoverer(const mq::Topic& topic, Ledger& ledger) {
  while (!ledger.dying_done.load() && !aborted()) {
    (void)mq::Topic(topic).recover_dead();
    std::this_thread::yield();
  }
  return {};
}

std::string member(const mq::Topic& topic, int g, const Workload& w, Ledger& ledger) {
  auto c = mq::Consumer::make(topic, member_options(g == 0 ? "g0" : "g1", mq::Start::earliest, mq::Wait::spin_futex, true));
  if (!c) return c.error().what();
  StallDetector stall;
  // Until every live record arrived and the dying thread is done (its claims need members moving past them).
  while (ledger.delivered[g].load() < w.total() || !ledger.dying_done.load()) {
    auto m = c->poll(20ms);
    if (!m) {
      if (m.error().code() != mq::Errc::timed_out) return m.error().what();
      if (aborted()) return kAborted;
      if (stall.stalled(ledger.delivered[g].load() + (ledger.dying_done.load() ? 1 : 0)))
        return "group g" + std::to_string(g) + " wedged\n" + dump_topic(topic);
      continue;
    }
    std::string why;
    const auto head = decode_payload(m->payload(), &why);
    if (!head) return "offset " + std::to_string(m->offset()) + ": " + why;
    if (head->producer >= w.producers || head->seq >= w.per_producer) return "a record of nobody's";
    ledger.per_record[g][head->producer * w.per_producer + head->seq].fetch_add(1);
    ledger.delivered[g].fetch_add(1);
    const std::lock_guard lock(ledger.mutex);
    ledger.offsets_seen[g].insert(m->offset());
  }
  return {};
}

TEST_F(Concurrency, DeadClaimsAreRecoveredWhileOthersPublishAndConsume) {
  const Workload w{2, kThreadSanitizer ? 4'000u : 20'000u, 1500, 7};
  const int claims = kThreadSanitizer ? 60 : 200;
  auto topic = mq::Topic::create("dead-threads", {.capacity = std::size_t{64} << 10, .policy = mq::Policy::block});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g0", mq::Start::earliest));
  ASSERT_TRUE(topic->create_group("g1", mq::Start::earliest));
  Ledger ledger(w.total());
  std::vector<std::string> failures;
  {
    ThreadCrew crew(*topic);
    for (int g = 0; g < 2; ++g)
      crew.spawn("member-" + std::to_string(g), [&, g](const mq::Topic& t) { return member(t, g, w, ledger); });
    for (unsigned p = 0; p < w.producers; ++p)
      crew.spawn("producer-" + std::to_string(p), [&, p](const mq::Topic& t) { return run_producer(t, p, w); });
    crew.spawn("dying", [&](const mq::Topic& t) { return dying_producer(t, ledger, claims); });
    crew.spawn("recoverer", [&](const mq::Topic& t) { return recoverer(t, ledger); });
    failures = crew.join();
  }
  expect_no_failures(failures);
  for (int g = 0; g < 2; ++g) {
    SCOPED_TRACE("group g" + std::to_string(g));
    int wrong = 0;
    for (std::uint64_t i = 0; i < w.total() && wrong < 10; ++i)
      if (ledger.per_record[g][i].load() != 1) {
        ++wrong;
        ADD_FAILURE() << "producer " << i / w.per_producer << " seq " << i % w.per_producer << " delivered "
                      << ledger.per_record[g][i].load() << " times";
      }
    for (const mq::Offset o : ledger.dead_offsets)
      EXPECT_EQ(ledger.offsets_seen[g].count(o), 0u) << "dead claim at offset " << o << " delivered";
  }
  EXPECT_EQ(ledger.dead_offsets.size(), static_cast<std::size_t>(claims));
  (void)topic->recover_dead();
  const auto info = topic->info();
  EXPECT_EQ(info.latest, w.total() + ledger.dead_offsets.size());
  EXPECT_TRUE(info.stuck.empty()) << dump_topic(*topic);
}

}  // namespace
