// The library's clocks, read through the vDSO (no syscall): CLOCK_MONOTONIC for deadlines and waits,
// CLOCK_REALTIME for a segment's creation time and, extrapolated through the TSC, for record timestamps; and a
// deadline that saturates instead of overflowing (a timeout of duration::max() means "wait forever").
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>
#include <limits>

namespace mq::detail {

inline std::int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// CLOCK_REALTIME for record timestamps at a third of its cost: extrapolated from the TSC between readings of the
// clock at most ~1 ms apart (clock.cpp). Falls back to realtime_ns() on a CPU without an invariant TSC.
std::int64_t record_time_ns();

// now + timeout in nanoseconds, or int64 max when that would overflow. Compared in the timeout's own unit, so
// milliseconds::max() is never converted to nanoseconds.
template <class Rep, class Period>
std::int64_t deadline_after(std::int64_t now, std::chrono::duration<Rep, Period> timeout) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  using Timeout = std::chrono::duration<Rep, Period>;
  if (timeout >= std::chrono::duration_cast<Timeout>(std::chrono::nanoseconds(kMax - now))) return kMax;
  return now + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
}

}  // namespace mq::detail
