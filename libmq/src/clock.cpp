// record_time_ns(): CLOCK_REALTIME extrapolated from the TSC between anchors. An anchor is one clock_gettime beside
// one rdtsc; the tick rate is measured between two anchors at least kCalibrateTicks apart, and a reading more than
// kAnchorTicks past its anchor takes a fresh one. So a reading is a clock_gettime of at most ~1 ms ago plus the
// ticks since, at a rate measured over the last interval: its error is that rate's error over < 1 ms (a few ns),
// and a step of the wall clock (settimeofday, NTP) shows within a millisecond. libmq/doc/design.md, "Timestamps",
// has the measured accuracy.
//
// The anchor lives in one process-wide seqlock: readers take no lock and write nothing; the reader that finds the
// anchor stale re-anchors it if no one else is (one compare-exchange), the others read the clock themselves.
#include "clock.hpp"

#include <cpuid.h>
#include <x86intrin.h>

#include <atomic>

namespace mq::detail {

namespace {

// Ticks between anchors: ~1 ms at 2-4 GHz (the TSC's rate is not known before calibration; this is a count).
constexpr std::uint64_t kAnchorTicks = std::uint64_t{1} << 21;
// The shortest interval a rate is measured over (~0.1 ms): shorter ones would carry clock_gettime's own jitter.
constexpr std::uint64_t kCalibrateTicks = std::uint64_t{1} << 18;

// The TSC runs at a constant rate through P-states and deep C-states (CPUID 0x80000007 EDX bit 8, "invariant
// TSC"). Without it every reading is a clock_gettime.
bool invariant_tsc() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (static_cast<unsigned>(__get_cpuid_max(0x80000000u, nullptr)) < 0x80000007u) return false;
  __cpuid(0x80000007, a, b, c, d);
  return (d & (1u << 8)) != 0;
}

struct Anchor {
  std::atomic<std::uint64_t> seq{0};  // odd while a writer changes the fields; 0 until the first rate is known
  std::atomic<std::uint64_t> tsc{0};
  std::atomic<std::int64_t> ns{0};
  std::atomic<std::uint64_t> ns_per_tick{0};  // 32.32 fixed point
};

Anchor g_anchor;
const bool g_invariant = invariant_tsc();

// The clock read directly; and, when no other thread is at it, the anchor moved there (with the rate measured since
// the last anchor) or, while no rate is known yet, left where it is until the interval is long enough to measure.
std::int64_t reanchor() {
  const std::uint64_t tsc = __rdtsc();
  const std::int64_t now = realtime_ns();
  std::uint64_t s = g_anchor.seq.load(std::memory_order_relaxed);
  if ((s & 1) != 0 || !g_anchor.seq.compare_exchange_strong(s, s + 1, std::memory_order_acquire)) return now;
  std::atomic_thread_fence(std::memory_order_release);
  const std::uint64_t old_tsc = g_anchor.tsc.load(std::memory_order_relaxed);
  const std::int64_t old_ns = g_anchor.ns.load(std::memory_order_relaxed);
  std::uint64_t rate = g_anchor.ns_per_tick.load(std::memory_order_relaxed);
  bool move = true;
  if (old_tsc == 0 || tsc < old_tsc || now <= old_ns) {
    rate = 0;  // the first anchor, a TSC that went back (a migrated VM) or a clock stepped back: measure again
  } else if (tsc - old_tsc < kCalibrateTicks) {
    move = rate != 0;  // too short to measure: keep the anchor until it is not
  } else {
    const auto measured = static_cast<std::uint64_t>(static_cast<double>(now - old_ns) * 4294967296.0 /
                                                      static_cast<double>(tsc - old_tsc));
    if (rate == 0) {
      rate = measured;
    } else if (measured > rate - rate / 64 && measured < rate + rate / 64) {
      rate = (3 * rate + measured) / 4;  // smoothed: one interval's preemption or clock jitter moves it little
    }  // else the wall clock stepped (or we were preempted long): keep the rate, move the anchor
  }
  if (move) {
    g_anchor.tsc.store(tsc, std::memory_order_relaxed);
    g_anchor.ns.store(now, std::memory_order_relaxed);
  }
  g_anchor.ns_per_tick.store(rate, std::memory_order_relaxed);
  // seq 0 means "no rate yet: read the clock" to readers; from then on it only grows, odd while being written.
  g_anchor.seq.store(rate == 0 ? 0 : (s == 0 ? 2 : s + 2), std::memory_order_release);
  return now;
}

}  // namespace

std::int64_t record_time_ns() {
  if (!g_invariant) return realtime_ns();
  const std::uint64_t s = g_anchor.seq.load(std::memory_order_acquire);
  if (s == 0 || (s & 1) != 0) return reanchor();
  const std::uint64_t tsc0 = g_anchor.tsc.load(std::memory_order_relaxed);
  const std::int64_t ns0 = g_anchor.ns.load(std::memory_order_relaxed);
  const std::uint64_t rate = g_anchor.ns_per_tick.load(std::memory_order_relaxed);
  const std::uint64_t tsc = __rdtsc();
  std::atomic_thread_fence(std::memory_order_acquire);
  if (g_anchor.seq.load(std::memory_order_relaxed) != s) return realtime_ns();
  const std::uint64_t ticks = tsc - tsc0;
  if (ticks > kAnchorTicks) return reanchor();  // also a TSC behind the anchor (another CPU's, a VM's migration)
  // ticks < 2^21 and rate < 2^34 (a TSC slower than 0.25 GHz would be news): the product fits in 64 bits.
  return ns0 + static_cast<std::int64_t>((ticks * rate) >> 32);
}

}  // namespace mq::detail
