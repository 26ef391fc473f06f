// PrefixWindow: the outbound route's checkpoint is the contiguous prefix of confirmed records, never the latest.
#include <gtest/gtest.h>

#include "prefix_window.hpp"

namespace {

using bridge::PrefixWindow;

TEST(PrefixWindow, OutOfOrderReportsAckOnlyTheContiguousPrefix) {
  PrefixWindow<int> w;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(w.push(100 + i), static_cast<std::uint64_t>(i));
  EXPECT_TRUE(w.mark_done(1));
  EXPECT_TRUE(w.mark_done(2));
  EXPECT_FALSE(w.pop_done_prefix());  // 0 is not confirmed: nothing may be acked
  EXPECT_TRUE(w.mark_done(0));
  EXPECT_EQ(w.pop_done_prefix(), 102);  // the last of 0..2: acking it acks 0 and 1 too
  EXPECT_EQ(w.size(), 2u);
  EXPECT_TRUE(w.mark_done(4));
  EXPECT_FALSE(w.pop_done_prefix());
  EXPECT_TRUE(w.mark_done(3));
  EXPECT_EQ(w.pop_done_prefix(), 104);
  EXPECT_TRUE(w.empty());
}

TEST(PrefixWindow, ReportsFromBeforeAClearAreIgnored) {
  PrefixWindow<int> w;
  w.push(1);
  w.push(2);
  w.clear();
  EXPECT_EQ(w.find(0), nullptr);
  EXPECT_FALSE(w.mark_done(1));
  EXPECT_EQ(w.push(3), 2u);  // numbers are never reused
  EXPECT_FALSE(w.mark_done(1));
  EXPECT_FALSE(w.pop_done_prefix());
  EXPECT_TRUE(w.mark_done(2));
  EXPECT_EQ(w.pop_done_prefix(), 3);
}

TEST(PrefixWindow, EntriesDoneAtPushNeedNoReport) {
  PrefixWindow<int> w;
  w.push(1, true);
  w.push(2);
  w.push(3, true);
  EXPECT_EQ(w.pop_done_prefix(), 1);
  EXPECT_EQ(w.first_seq(), 1u);
  EXPECT_TRUE(w.mark_done(1));
  EXPECT_EQ(w.pop_done_prefix(), 3);
  EXPECT_EQ(w.end_seq(), 3u);
}

}  // namespace
