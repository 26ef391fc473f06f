// How far record_time_ns() strays from CLOCK_REALTIME, sampled: shared by the unit and concurrency clock tests.
#pragma once

#include <cstdint>

#include "clock.hpp"

namespace mqtest {

// Samples record_time_ns() between two readings of CLOCK_REALTIME for at least `ms` milliseconds (by the monotonic
// clock, so the clock re-anchors many times) and at least `min_samples` times; returns the largest distance outside
// [before, after] seen, and adds the samples taken to `samples`.
inline std::int64_t worst_clock_error(std::int64_t ms, std::uint64_t min_samples, std::uint64_t& samples) {
  namespace d = mq::detail;
  std::int64_t worst = 0;
  const std::int64_t end = d::mono_ns() + ms * 1'000'000;
  for (std::uint64_t n = 0; n < min_samples || d::mono_ns() < end; ++n) {
    const std::int64_t before = d::realtime_ns();
    const std::int64_t t = d::record_time_ns();
    const std::int64_t after = d::realtime_ns();
    const std::int64_t error = t < before ? before - t : t > after ? t - after : 0;
    if (error > worst) worst = error;
    ++samples;
  }
  return worst;
}

}  // namespace mqtest
