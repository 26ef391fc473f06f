// Unit tests of record timestamps' clock (libmq/src/clock.cpp): CLOCK_REALTIME extrapolated through the TSC must
// stay within mqtest::kClockSlackNs of the clock itself, from the first reading on and across re-anchoring.
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "clock.hpp"
#include "clock_check.hpp"
#include "test_util.hpp"

namespace {

namespace d = mq::detail;

using mqtest::worst_clock_error;

TEST(UnitClock, RecordTimeTracksTheRealtimeClock) {
  std::uint64_t samples = 0;
  const std::int64_t worst = worst_clock_error(50, 1000, samples);  // ~70 re-anchorings at ~0.7 ms each
  std::printf("record_time_ns: %llu samples over 50 ms, worst distance outside the clock's bracket %lld ns\n",
              static_cast<unsigned long long>(samples), static_cast<long long>(worst));
  EXPECT_LE(worst, mqtest::kClockSlackNs);
}

TEST(UnitClock, RecordTimeAfterAnIdleGapIsStillTheClock) {
  // A reading long after the last anchor (here 30 ms of no readings) re-anchors rather than extrapolating.
  std::uint64_t samples = 0;
  worst_clock_error(2, 1, samples);
  const std::int64_t end = d::mono_ns() + 30'000'000;
  while (d::mono_ns() < end) std::this_thread::yield();
  const std::int64_t before = d::realtime_ns();
  const std::int64_t t = d::record_time_ns();
  const std::int64_t after = d::realtime_ns();
  EXPECT_GE(t, before - mqtest::kClockSlackNs);
  EXPECT_LE(t, after + mqtest::kClockSlackNs);
}

}  // namespace
