// The exclusive producer's handover under ThreadSanitizer: a thread publishes with an exclusive producer (plain
// stores, or under TSan the CAS loop it stands for) into a full block topic while another thread moves groups
// (move_groups_until) and a third reads every record through group "base", exactly once, in order, intact.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
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

TEST_F(Concurrency, GroupsMoveWhileAnExclusiveProducerPublishes) {
  const std::uint64_t records = kThreadSanitizer ? 5'000 : kSanitized ? 20'000 : 100'000;
  auto topic = mq::Topic::create("moves", small_ring()).value();
  mq::Consumer base(topic, member_options("base", mq::Start::earliest, mq::Wait::spin_futex, true));

  std::string producer_error;
  std::thread producer([&] {
    mq::ProducerOptions exclusive;
    exclusive.exclusive = true;
    auto p = mq::Producer::make(topic, exclusive);
    if (!p) {
      producer_error = p.error().what();
      request_abort();
      return;
    }
    for (std::uint64_t seq = 0; seq < records; ++seq) {
      auto r = p->publish(numbered_payload(seq, 32));
      if (!r || *r != seq) {
        producer_error = "seq " + std::to_string(seq) + ": " + (r ? "offset " + std::to_string(*r) : r.error().what());
        request_abort();
        return;
      }
    }
  });

  std::atomic<std::uint64_t> read{0};
  std::string reader_error;
  std::thread reader([&] {
    while (read.load() < records && !aborted()) {
      std::vector<Got> got;
      if (auto why = take_records(base, 1, got); !why.empty()) {
        reader_error = why;
        request_abort();
        return;
      }
      if (got[0].offset != read.load() || got[0].seq != got[0].offset) {
        reader_error = "base read offset " + std::to_string(got[0].offset) + " (seq " + std::to_string(got[0].seq) +
                       ") where offset " + std::to_string(read.load()) + " was due";
        request_abort();
        return;
      }
      read.fetch_add(1);
    }
  });

  std::uint64_t rounds = 0;
  const std::string mover_error =
      move_groups_until(topic, [&] { return read.load() >= records || aborted(); }, rounds);
  if (!mover_error.empty()) request_abort();
  producer.join();
  reader.join();
  EXPECT_EQ(producer_error, "");
  EXPECT_EQ(reader_error, "");
  EXPECT_EQ(mover_error, "") << dump_topic(topic);
  EXPECT_EQ(read.load(), records);
  RecordProperty("group_moves", std::to_string(2 * rounds));
}

}  // namespace
