// The many-producers / many-groups exactly-once scenario of process_many_to_many.cpp, as threads over ONE mapping:
// ThreadSanitizer sees threads, not processes, so this is how the data path's orderings get checked. Block policy
// (an overwrite reader's copy-then-validate read is a deliberate race that TSan would rightly flag).
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here, e.g. from test_util.hpp's
// SetUp; it must be silenced before the first standard header to take effect.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;

TEST_F(Concurrency, ManyProducersManyGroupsExactlyOnce) {
  ManyToMany s;
  s.workload.producers = 4;
  s.workload.per_producer = kThreadSanitizer ? 5'000 : (kSanitized ? 12'500 : 50'000);  // 200,000 records (20k TSan)
  s.workload.max_filler = 96;
  s.members = {1, 2, 3};
  run_many_to_many<ThreadCrew>("threads-many", std::size_t{1} << 20, s, /*allow_spin_yield=*/true);
}

// The same with a small ring (64 KiB: a lap every ~600 records), so producers wait on back-pressure all the time and
// members run at the ring's edge.
TEST_F(Concurrency, ManyProducersManyGroupsOnASmallRing) {
  ManyToMany s;
  s.workload.producers = 3;
  s.workload.per_producer = kThreadSanitizer ? 4'000 : (kSanitized ? 10'000 : 40'000);
  s.workload.max_filler = 200;
  s.workload.seed = 77;
  s.members = {2, 1};
  run_many_to_many<ThreadCrew>("threads-small", std::size_t{64} << 10, s, /*allow_spin_yield=*/false);
}

}  // namespace
