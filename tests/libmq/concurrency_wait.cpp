// Waiting consumers (threads over one mapping, for ThreadSanitizer): members that spin and then sleep on the topic's
// futex word are woken by a publish, and a ping-pong over two topics with sleeping ends exercises the sleep/wake
// handshake (sleeper mark, fence, last look, FUTEX_WAIT; commit, sleeper check, FUTEX_WAKE) many times.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here, e.g. from test_util.hpp's
// SetUp; it must be silenced before the first standard header to take effect.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;

mq::ConsumerOptions options(std::string group, mq::Wait wait) {
  return member_options(std::move(group), mq::Start::earliest, wait, true);
}

// Three groups, one sleeping member each (two spin-then-futex, one futex at once). Each round the main thread waits
// until all three are asleep (the topic's sleeper count says so), publishes one record, and every member's poll
// returns it: the producer saw sleepers and woke them (the wake counter moved).
TEST_F(Concurrency, SpinFutexConsumersSleepAndAreWoken) {
  const int rounds = kThreadSanitizer ? 20 : 50;
  auto topic = mq::Topic::create("sleepers", {.capacity = std::size_t{64} << 10, .policy = mq::Policy::block});
  ASSERT_TRUE(topic) << topic.error().what();
  const std::vector<mq::Wait> waits{mq::Wait::spin_futex, mq::Wait::spin_futex, mq::Wait::futex};
  for (std::size_t g = 0; g < waits.size(); ++g)
    ASSERT_TRUE(topic->create_group("sleeper-" + std::to_string(g), mq::Start::earliest));
  auto& header = topic->segment()->header();

  std::atomic<int> failures{0};
  std::vector<std::atomic<int>> got(waits.size());
  std::vector<std::thread> members;
  for (std::size_t g = 0; g < waits.size(); ++g) {
    members.emplace_back([&, g] {
      mq::Consumer c(*topic, options("sleeper-" + std::to_string(g), waits[g]));
      for (int r = 0; r < rounds; ++r) {
        auto m = c.poll(60s);  // far longer than any real wait: a wake that never comes shows as a failure
        std::string why;
        if (!m || m->offset() != static_cast<mq::Offset>(r) || !decode_payload(m->payload(), &why)) {
          std::fprintf(stderr, "sleeper %zu round %d: %s\n", g, r,
                       m ? ("offset " + std::to_string(m->offset()) + " " + why).c_str() : m.error().what());
          failures.fetch_add(1);
          return;
        }
        got[g].fetch_add(1);
      }
    });
  }
  mq::Producer producer(*topic);
  int woken_rounds = 0;
  for (int r = 0; r < rounds && failures.load() == 0; ++r) {
    // All members done with the previous round and asleep again.
    ASSERT_TRUE(eventually([&] {
      for (auto& n : got)
        if (n.load() != r) return false;
      return sleeping_members(header) == waits.size();
    })) << "members never all slept: sleepers=" << sleeping_members(header);
    const std::uint32_t wake_before = header.wake_seq.load();
    ASSERT_TRUE(producer.publish(numbered_payload(static_cast<std::uint64_t>(r))));
    woken_rounds += header.wake_seq.load() != wake_before ? 1 : 0;
  }
  for (auto& t : members) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (auto& n : got) EXPECT_EQ(n.load(), rounds);
  // A sleeper leaves the futex only between two 100 ms slices, so the producer finds sleepers in (nearly) every round.
  EXPECT_GT(woken_rounds, 0);
  EXPECT_EQ(sleeping_members(header), 0u);
}

// Ping-pong between two threads over two topics; both ends sleep (futex at once) between records. Every round trip
// carries a checksummed payload; a lost wake-up would still finish (sleeps are cut into slices) but TSan sees every
// handshake.
TEST_F(Concurrency, FutexPingPongOverTwoTopics) {
  const int rounds = kThreadSanitizer ? 2'000 : 20'000;
  auto ping = mq::Topic::create("ping", {.capacity = std::size_t{64} << 10, .policy = mq::Policy::block});
  auto pong = mq::Topic::create("pong", {.capacity = std::size_t{64} << 10, .policy = mq::Policy::block});
  ASSERT_TRUE(ping && pong);
  ASSERT_TRUE(ping->create_group("echo", mq::Start::earliest));
  ASSERT_TRUE(pong->create_group("origin", mq::Start::earliest));

  std::string echo_error;
  std::thread echo([&] {
    mq::Consumer in(*ping, options("echo", mq::Wait::futex));
    mq::Producer out(*pong);
    for (int r = 0; r < rounds; ++r) {
      auto m = in.poll(60s);
      if (!m) {
        echo_error = m.error().what();
        return;
      }
      // Echo the bytes as they are in the ring (zero-copy view, valid until the next poll acks it).
      if (auto sent = out.publish(m->payload()); !sent) {
        echo_error = sent.error().what();
        return;
      }
    }
  });
  mq::Producer out(*ping);
  mq::Consumer in(*pong, options("origin", mq::Wait::futex));
  for (int r = 0; r < rounds; ++r) {
    const auto payload = numbered_payload(static_cast<std::uint64_t>(r), r % 128);
    ASSERT_TRUE(out.publish(payload));
    auto m = in.poll(60s);
    ASSERT_TRUE(m) << "round " << r << ": " << m.error().what();
    ASSERT_EQ(m->offset(), static_cast<mq::Offset>(r));
    ASSERT_TRUE(std::equal(m->payload().begin(), m->payload().end(), payload.begin(), payload.end())) << r;
  }
  echo.join();
  EXPECT_EQ(echo_error, "");
}

// A producer that finds a block topic full spins briefly, then sleeps on the topic's room word with its slot's bit
// set, asking to be woken once a quarter of the ring is free beyond the record it claims. Each round: wait until the
// producer sleeps, then ack the oldest records one at a time; the room counter stays put until the acks have freed
// that much (no wake-up per ack), and moves during the ack that frees it (that is the wake: without it the producer would sleep out its 1 ms
// slice, look again, and still publish). 64 B payloads make 128 B records, which tile the ring exactly.
TEST_F(Concurrency, ProducersWaitingForRoomSleepAndAreWokenOncePerQuarterRing) {
  constexpr std::size_t kCapacity = std::size_t{64} << 10;
  constexpr std::size_t kRecord = 128;  // a 64 B payload's record
  constexpr std::size_t kWake = kCapacity / 4 / kRecord + 1;  // records freed when the producer is woken
  const int rounds = kThreadSanitizer ? 3 : 8;
  auto topic = mq::Topic::create("room", {.capacity = kCapacity, .policy = mq::Policy::block});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("drain", mq::Start::earliest));
  auto& header = topic->segment()->header();
  const std::vector<std::byte> payload(64, std::byte{0x5a});
  std::size_t filled = 0;
  {
    mq::Producer filler(*topic, {.block_timeout = 0ms});
    for (;;) {
      auto sent = filler.publish(payload);
      if (!sent) {
        ASSERT_EQ(sent.error().code(), mq::Errc::full) << sent.error().what();
        break;
      }
      ++filled;
    }
  }
  ASSERT_EQ(filled, kCapacity / kRecord);

  const std::size_t total = static_cast<std::size_t>(rounds) * kWake;
  std::atomic<std::size_t> published{0};
  std::string error;
  std::thread waiter([&] {
    mq::Producer p(*topic, {.block_timeout = 60s});  // far longer than any real wait: a stuck producer fails below
    for (std::size_t i = 0; i < total; ++i) {
      if (auto sent = p.publish(payload); !sent) {
        error = sent.error().what();
        return;
      }
      published.fetch_add(1);
    }
  });
  mq::Consumer c(*topic, member_options("drain", mq::Start::earliest, mq::Wait::futex, false));
  mq::Offset next = 0;
  // A round: wait until the producer sleeps asking for room, then ack one record at a time until it is woken (the
  // room word moves) or it found the room by itself. The latter happens when an ack lands while it is between two
  // sleeps (its 1 ms slice ran out: its bit is clear for a moment) and is no wake-up at all. No wake may come before
  // the ack that takes the group to the position the producer asked for (room_wanted: a quarter ring beyond its
  // claim; a round after one the producer ended by itself starts with acks already past some of it), and most rounds
  // must end with one (without the ack's wake, none).
  int rounds_run = 0;
  int woken = 0;
  while (published.load() < total && error.empty()) {
    ASSERT_TRUE(eventually([&] {
      return (header.room_waiters.load() != 0 && header.room_wanted.load() != mq::detail::kNone) ||
             published.load() == total || !error.empty();
    })) << "round " << rounds_run << ": the producer never slept on the full topic";
    if (published.load() == total) break;  // the last records found room without waiting
    const std::size_t base = published.load();
    const std::uint64_t wanted = header.room_wanted.load();
    const std::uint32_t before = header.room_seq.load();
    std::size_t acks = 0;
    while (header.room_seq.load() == before && published.load() == base && acks < 2 * kWake) {
      auto m = c.poll(60s);
      ASSERT_TRUE(m) << m.error().what();
      ASSERT_EQ(m->offset(), next++);
      ASSERT_TRUE(c.ack(std::move(*m)));
      ++acks;
    }
    if (header.room_seq.load() != before) {
      ++woken;
      if (wanted != mq::detail::kNone) {  // (kNone: a wake landed between the look above and this round's start)
        // Never before it (that would be a wake per ack); at it, or at a later ack when the producer set its bit
        // in the moment after the ack that reached it (design.md, "Waiting": the ack's unfenced load).
        EXPECT_GE(next * kRecord, wanted) << "round " << rounds_run << ": woken after " << acks << " acks, at "
                                          << next * kRecord << " of the ring, before the position it asked for";
      }
    }
    ASSERT_TRUE(eventually([&] { return published.load() > base || !error.empty(); })) << "round " << rounds_run;
    ++rounds_run;
  }
  EXPECT_GE(woken, 1) << "no round was woken by an ack (" << rounds_run << " rounds)";
  if (!kThreadSanitizer) {
    EXPECT_GE(2 * woken, rounds_run) << woken << " of " << rounds_run << " rounds woken by an ack";
  }
  waiter.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(published.load(), total);
  EXPECT_EQ(header.room_waiters.load(), 0u);
}

}  // namespace
