// Record timestamps read by several threads at once (the clock's seqlock: one re-anchors, the others read or fall
// back to the clock), under TSan in CI: every reading stays within mqtest::kClockSlackNs of CLOCK_REALTIME.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "clock_check.hpp"
#include "test_util.hpp"

namespace {

TEST(ConcurrencyClock, ThreadsReadingAtOnceAllStayOnTheClock) {
  constexpr int kThreads = 4;
  std::atomic<std::int64_t> worst{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      std::uint64_t n = 0;
      const std::int64_t mine = mqtest::worst_clock_error(40, 1000, n);
      std::int64_t w = worst.load();
      while (mine > w && !worst.compare_exchange_weak(w, mine)) {
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(worst.load(), mqtest::kClockSlackNs);
}

}  // namespace
