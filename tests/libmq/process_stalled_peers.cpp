// Peers that are descheduled for a long time at an arbitrary instruction (here: SIGSTOP at a random point while
// they work), while the others lap the ring under them. Whatever a stopped peer read before it stopped is stale when it
// resumes; the library must re-validate it, never report it. Each round stops the peer at a random moment, laps the
// ring twice while it is stopped, and resumes it. A round lands inside a given few-instruction window only now and
// then, so these tests run many rounds; on a correct library every round passes.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here, e.g. from test_util.hpp's
// SetUp; it must be silenced before the first standard header to take effect.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;

constexpr std::size_t kCapacity = std::size_t{64} << 10;
const int kMemberRounds = kSanitized ? 1'500 : 10'000;  // ~5 s in a release build
const int kProducerRounds = kSanitized ? 800 : 5'000;   // ~1.5 s
// A loaded machine makes rounds slower: stop early rather than run long (a bound on the run, not a timing check).
constexpr auto kBudget = std::chrono::seconds(15);

mq::ConsumerOptions member(mq::Wait wait) { return member_options("g", mq::Start::earliest, wait, false); }

// Publishes records of random sizes (4..14 KiB, so record starts land anywhere) totalling > `bytes`, the parent's member `a`
// taking and acking each as it comes: with the other peer stopped, this overwrites everything it may have read.
void lap_ring(mq::Producer& q, mq::Consumer& a, std::size_t bytes, std::mt19937_64& rng, std::uint64_t& q_seq) {
  std::size_t written = 0;
  while (written < bytes) {
    const auto payload = numbered_payload(q_seq++, 4096 + rng() % 10240, /*producer=*/7);
    auto r = q.publish(payload);
    ASSERT_TRUE(r) << r.error().what() << "\n" << dump_topic(q.topic());
    written += 40 + payload.size();
    auto m = a.poll(5s);
    ASSERT_TRUE(m) << m.error().what() << "\n" << dump_topic(q.topic());
    ASSERT_TRUE(a.ack(std::move(*m)));
  }
}

// True when nothing the stopped peer holds or announced keeps producers from lapping the ring.
bool nothing_pinned(const mq::Topic& topic) {
  const auto& seg = *topic.segment();
  const auto low = mq::detail::group_low(seg, 0);
  return low && *low == mq::detail::tail_position(seg);
}

// A member stopped while it reads the record at its group's `next` (the other member then takes that record and the
// ring laps) must not report the overwritten bytes it reads on resuming as a corrupted segment: its view of `next`
// is stale, and a stale view is retried, not reported. (Block topic: nothing is ever overwritten under a group.)
TEST_F(MultiProcess, StoppedMemberNeverReportsStaleRecordAsCorrupt) {
  auto topic = mq::Topic::create("stale-member", {.capacity = kCapacity, .policy = mq::Policy::block});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  struct Shared {
    std::uint64_t stop;
    std::uint64_t consumed;
    std::uint64_t errors;
  };
  SharedMap map(sizeof(Shared));
  auto& shared = *reinterpret_cast<Shared*>(map.data());

  mqtest::Pipe pipe;
  mqtest::Child b([&]() -> int {
    auto t = mq::Topic::open("stale-member");
    if (!t) return child_fail(t.error().what());
    auto c = mq::Consumer::make(*t, member(mq::Wait::busy_spin));
    if (!c) return child_fail(c.error().what());
    pipe.send("ready");
    for (;;) {
      auto m = c->poll(5ms);
      if (!m) {
        if (m.error().code() == mq::Errc::timed_out) {
          if (atomic_load(shared.stop) != 0) break;
          continue;
        }
        if (atomic_add(shared.errors, 1) == 0) std::fprintf(stderr, "member B: poll: %s\n", m.error().what());
        continue;
      }
      if (auto a = c->ack(std::move(*m)); !a) return child_fail(a.error().what());
      atomic_add(shared.consumed, 1);
    }
    return 0;
  });
  ASSERT_EQ(pipe.receive(), "ready");
  ASSERT_TRUE(stop_process(b.pid()));

  mq::Producer q(*topic, mq::ProducerOptions{5s});
  mq::Consumer a(*topic, member(mq::Wait::spin_futex));
  std::mt19937_64 rng(1);
  std::uint64_t q_seq = 0;
  int laps = 0;
  const auto budget_end = Clock::now() + kBudget;
  for (int round = 0; round < kMemberRounds && atomic_load(shared.errors) == 0 && Clock::now() < budget_end;
       ++round) {
    // A batch of small records for B to chew on; B resumes (finishing whatever stale read it was stopped in), takes
    // at least one, and is stopped again at a random point of its work.
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(q.publish(numbered_payload(q_seq++, 16, 7)));
    const std::uint64_t before = atomic_load(shared.consumed);
    ASSERT_TRUE(continue_process(b.pid()));
    ASSERT_TRUE(eventually([&] { return atomic_load(shared.consumed) > before; }));
    ASSERT_TRUE(stop_process(b.pid()));
    // A takes the rest; then, unless B holds or announced something (it pins the ring), lap twice.
    for (;;) {
      auto m = a.poll(0ns);
      if (!m) break;
      ASSERT_TRUE(a.ack(std::move(*m)));
    }
    if (!nothing_pinned(*topic)) continue;
    lap_ring(q, a, 2 * kCapacity + 4096, rng, q_seq);
    ++laps;
  }
  ASSERT_TRUE(continue_process(b.pid()));
  atomic_add(shared.stop, 1);
  EXPECT_EQ(b.wait(), 0);
  EXPECT_EQ(atomic_load(shared.errors), 0u) << "member B's poll failed (first error on its stderr) after " << laps
                                            << " laps under it";
  EXPECT_GT(laps, 0);
}

// A producer stopped right after its commit (the others consume its record and lap the ring meanwhile) must still
// return its record's offset from publish(), not whatever the ring holds at that spot by the time it resumes.
TEST_F(MultiProcess, StoppedProducerStillReturnsItsOwnOffset) {
  constexpr std::uint64_t kMaxRecords = 1u << 22;
  auto topic = mq::Topic::create("stale-producer", {.capacity = kCapacity, .policy = mq::Policy::block});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  struct Shared {
    std::uint64_t stop;
    std::uint64_t target;     // P publishes up to this many records
    std::uint64_t published;  // P has published this many
    std::uint64_t returned[kMaxRecords];  // offset publish() returned for P's record `seq`
  };
  SharedMap map(sizeof(Shared));
  auto& shared = *reinterpret_cast<Shared*>(map.data());

  mqtest::Child p([&]() -> int {
    auto t = mq::Topic::open("stale-producer");
    if (!t) return child_fail(t.error().what());
    mq::Producer producer(*t, mq::ProducerOptions{30s});
    for (std::uint64_t seq = 0; seq < kMaxRecords;) {
      if (atomic_load(shared.stop) != 0) break;
      if (seq >= atomic_load(shared.target)) continue;  // spin until the next burst
      const std::uint64_t payload[2] = {0x5050505050505050ULL, seq};
      auto r = producer.publish(std::as_bytes(std::span(payload)));
      if (!r) return child_fail(r.error().what());
      std::atomic_ref<std::uint64_t>(shared.returned[seq]).store(*r, std::memory_order_relaxed);
      atomic_add(shared.published, 1);
      ++seq;
    }
    return 0;
  });

  mq::Producer q(*topic, mq::ProducerOptions{5s});
  mq::Consumer a(*topic, member(mq::Wait::spin_futex));
  std::vector<std::uint64_t> seen(kMaxRecords, kUnknownOffset);  // offset A saw for P's record `seq`
  auto drain = [&] {
    for (;;) {
      auto m = a.poll(0ns);
      if (!m) return;
      if (m->payload().size() == 16) {
        std::uint64_t payload[2];
        std::memcpy(payload, m->payload().data(), 16);
        if (payload[0] == 0x5050505050505050ULL && payload[1] < kMaxRecords) seen[payload[1]] = m->offset();
      }
      ASSERT_TRUE(a.ack(std::move(*m)));
    }
  };
  std::uint64_t checked = 0;  // P's records below this were delivered and matched
  auto first_mismatch = [&]() -> std::optional<std::uint64_t> {
    const std::uint64_t n = atomic_load(shared.published);
    for (; checked < n && seen[checked] != kUnknownOffset; ++checked)
      if (std::atomic_ref<std::uint64_t>(shared.returned[checked]).load(std::memory_order_relaxed) != seen[checked])
        return checked;
    return std::nullopt;
  };

  std::mt19937_64 rng(2);
  std::uint64_t q_seq = 0;
  int laps = 0;
  int mid_burst = 0;
  const auto budget_end = Clock::now() + kBudget;
  for (int round = 0; round < kProducerRounds && atomic_load(shared.target) + 400 < kMaxRecords &&
                      Clock::now() < budget_end;
       ++round) {
    // A burst of 400 (the ring holds all of it); P is stopped once it is a random way into it (mid-publish, most likely).
    const std::uint64_t before = atomic_load(shared.published);
    const std::uint64_t stop_after = before + 1 + rng() % 200;
    atomic_add(shared.target, 400);
    ASSERT_TRUE(eventually([&] { return atomic_load(shared.published) >= stop_after; }));
    ASSERT_TRUE(stop_process(p.pid()));
    mid_burst += atomic_load(shared.published) < atomic_load(shared.target);
    drain();
    const auto info = topic->info();
    // P's open claim (stopped before its commit) holds readers back: nothing to lap under it this round.
    if (info.groups[0].next == info.latest && nothing_pinned(*topic)) {
      lap_ring(q, a, 2 * kCapacity + 4096, rng, q_seq);
      ++laps;
    }
    ASSERT_TRUE(continue_process(p.pid()));
    ASSERT_TRUE(eventually([&] { return atomic_load(shared.published) >= atomic_load(shared.target); }));
    drain();
    if (first_mismatch()) break;
  }
  atomic_add(shared.stop, 1);
  EXPECT_EQ(p.wait(), 0);
  drain();
  if (const auto seq = first_mismatch()) {
    ADD_FAILURE() << "publish() returned offset " << shared.returned[*seq] << " for a record delivered at offset "
                  << seen[*seq] << " (P's record " << *seq << ", after " << laps << " laps under a stopped P)";
  }
  EXPECT_EQ(checked, atomic_load(shared.published)) << "every record of P was delivered and matched";
  EXPECT_GT(laps, 0);
  std::printf("%d laps under a stopped producer, %d of its stops mid-burst\n", laps, mid_burst);
}

}  // namespace
