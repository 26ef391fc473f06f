// Key ordering under concurrency (threads over one mapping, for ThreadSanitizer): a producer wraps a 64 KiB block
// topic with records of six keys while three members of an Ordering::key group work them, and one member keeps
// leaving with records held and joining again. Checked as it runs: no two members work one key at once, and each
// key's records start in offset order, going back only to records a leaving member handed back; at the end every
// record was acked.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <set>
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

constexpr std::uint64_t kKeys = 6;

// What the members have done so far, checked at every start of a record.
class KeyLog {
 public:
  // A member starts offset `offset` of key `key`: "" or what is wrong.
  std::string start(std::uint64_t key, std::uint64_t offset) {
    std::lock_guard lock(mutex_);
    if (busy_[key]) return "key " + std::to_string(key) + ": offset " + std::to_string(offset) + " started while another member works it";
    busy_[key] = true;
    if (started_[key] && offset <= last_[key] && handed_back_.count(offset) == 0)
      return "key " + std::to_string(key) + ": offset " + std::to_string(offset) + " started after offset " +
             std::to_string(last_[key]);
    started_[key] = true;
    last_[key] = offset;
    return "";
  }
  void end(std::uint64_t key) {
    std::lock_guard lock(mutex_);
    busy_[key] = false;
  }
  // A member leaves holding these records (unacked): they may start again.
  void hand_back(const std::vector<std::uint64_t>& offsets) {
    std::lock_guard lock(mutex_);
    handed_back_.insert(offsets.begin(), offsets.end());
  }

 private:
  std::mutex mutex_;
  std::array<bool, kKeys> busy_{};
  std::array<bool, kKeys> started_{};
  std::array<std::uint64_t, kKeys> last_{};
  std::set<std::uint64_t> handed_back_;
};

TEST_F(Concurrency, KeyOrderHoldsWhileProducersWrapAndAMemberKeepsLeaving) {
  constexpr std::uint64_t kRecords = kSanitized ? 3000 : 20000;
  mq::TopicOptions options = small_ring();
  auto topic = mq::Topic::create("invites", options).value();
  ASSERT_TRUE(topic.create_group("g", mq::Start::earliest, {}, mq::Ordering::key));
  std::vector<std::uint64_t> words(Bitmap::words_for(kRecords));
  Bitmap acked(words.data(), kRecords);
  KeyLog log;
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mutex;
  const auto fail = [&](const std::string& why) {
    std::lock_guard lock(failure_mutex);
    if (!failed.exchange(true)) failure = why;
  };
  const auto deadline = Clock::now() + 120s;

  std::thread producer([&] {
    mq::Producer p(topic);
    for (std::uint64_t i = 0; i < kRecords && !failed; ++i) {
      const std::string key = std::to_string(i * 7 % kKeys);
      const std::string payload = std::to_string(i);
      if (auto r = p.publish(mq::Record{bytes(payload), bytes(key), {}, std::nullopt}); !r) fail(r.error().what());
    }
  });
  // One member's life: works records until all are acked, or (`leave_after` > 0) until it has worked that many,
  // then leaves holding what it has not acked. Returns whether it left early.
  const auto member = [&](unsigned seed, std::uint64_t leave_after) {
    mq::Consumer c(topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, /*auto_ack=*/false));
    std::minstd_rand rng(seed);
    std::vector<std::uint64_t> unacked, unacked_offsets;
    std::uint64_t worked = 0;
    while (acked.count() < kRecords && !failed && Clock::now() < deadline) {
      auto m = c.poll(5ms);
      if (!m) {  // nothing more for now: ack what it holds (no record waits on a member idling with it)
        if (!unacked.empty() && c.ack_all()) {
          for (const auto i : unacked) acked.set(i);
          unacked.clear();
          unacked_offsets.clear();
        }
        continue;
      }
      const std::uint64_t key = std::stoull(text(*m->key()));
      if (auto bad = log.start(key, m->offset()); !bad.empty()) return fail(bad), false;
      for (unsigned spin = rng() % 2000; spin != 0; --spin) std::atomic_signal_fence(std::memory_order_seq_cst);
      log.end(key);
      unacked.push_back(std::stoull(text(m->payload())));
      unacked_offsets.push_back(m->offset());
      if (leave_after != 0 && ++worked == leave_after) {
        log.hand_back(unacked_offsets);
        return true;  // the Consumer closes holding them
      }
      if (unacked.size() == 3 || rng() % 3 == 0) {
        if (auto a = c.ack(std::move(*m)); !a) return fail(a.error().what()), false;
        for (const auto i : unacked) acked.set(i);
        unacked.clear();
        unacked_offsets.clear();
      }
    }
    if (!unacked.empty() && c.ack_all()) {
      for (const auto i : unacked) acked.set(i);
    }
    return false;
  };
  std::thread a([&] { member(1, 0); });
  std::thread b([&] { member(2, 0); });
  std::thread leaver([&] {
    for (unsigned life = 3; acked.count() < kRecords && !failed && Clock::now() < deadline; ++life)
      if (!member(life, 1 + life % 7)) break;
  });
  producer.join();
  a.join();
  b.join();
  leaver.join();
  EXPECT_FALSE(failed.load()) << failure;
  EXPECT_EQ(acked.first_clear(), std::nullopt) << "a record was never acked";
}

}  // namespace
