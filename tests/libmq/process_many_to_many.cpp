// Many producer processes, many consumer groups of many member processes, one block topic: every group gets every
// record exactly once (bitmaps by offset and by (producer, seq) in memory shared across fork), intact and in each
// producer's order. See scenario.hpp for the payload and roles; concurrency_many_to_many.cpp runs it as threads.
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

TEST_F(MultiProcess, ManyProducersManyGroupsExactlyOnce) {
  ManyToMany s;
  s.workload.producers = 4;
  s.workload.per_producer = kSanitized ? 25'000 : 250'000;  // 1,000,000 records (100,000 under sanitizers)
  s.workload.max_filler = 96;
  s.members = {1, 2, 3};
  run_many_to_many<ProcessCrew>("many-to-many", std::size_t{1} << 20, s, /*allow_spin_yield=*/true);
}

}  // namespace
