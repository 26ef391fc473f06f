// A group's lone member handing over to a joiner and back, as threads over one mapping (ThreadSanitizer): every
// record exactly once, intact (scenario.hpp, start_lone_handover).
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <string>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;

TEST_F(Concurrency, ALoneMemberHandsOverToEachJoinerAndBackExactlyOnce) {
  const std::uint64_t records = kThreadSanitizer ? 5'000 : kSanitized ? 20'000 : 100'000;
  auto topic = mq::Topic::create("lone", small_ring()).value();
  ASSERT_TRUE(topic.create_group("g", mq::Start::earliest));
  LoneTally tally(records);
  std::vector<std::string> failures;
  {
    ThreadCrew crew(topic);
    start_lone_handover(crew, records, tally);
    failures = crew.join();
  }
  EXPECT_TRUE(failures.empty()) << ::testing::PrintToString(failures) << dump_topic(topic);
  EXPECT_EQ(atomic_load(tally.count()), records);
  EXPECT_EQ(atomic_load(tally.duplicates()), 0u);
  EXPECT_EQ(tally.delivered.first_clear(), std::nullopt);
  EXPECT_GT(atomic_load(tally.visits()), 0u) << "the visitor never joined: no handover was made";
}

}  // namespace
