// The all-topics view shared by `mqctl stats` (one snapshot) and `mqctl top` (refreshed): a summary line, a table
// of topics (offsets, bytes, rates, producers) and a table of consumer groups (position, lag, members). Rates come
// from the daemon, or, in top, from the difference of two snapshots over the refresh interval.
#pragma once

#include <map>
#include <string>

#include "report.hpp"

namespace mqctl {

struct TopicRates {
  double msgs_per_s = 0;
  double bytes_per_s = 0;
  std::map<std::string, double> acked_per_s;  // per group; empty when not measured
};
using RateTable = std::map<std::string, TopicRates>;  // by topic name

// The daemon's own rates (msgs_per_s, bytes_per_s); no per-group rates.
RateTable daemon_rates(const mq::DaemonStats& now);
// Rates over `seconds` between two snapshots. A topic new in `now`, or one whose counters went back (deleted and
// made again), gets the daemon's rates; a group new in `now` gets none.
RateTable sampled_rates(const mq::DaemonStats& before, const mq::DaemonStats& now, double seconds);

// "uptime 1h02m03s, 3 topics, 2 clients"
std::string render_summary(const mq::DaemonStats& now);
std::string render_topic_table(const mq::DaemonStats& now, const RateTable& rates);
// With `acked_rates`, a column ACKED/S (records the group acked per second) from RateTable::acked_per_s.
std::string render_group_table(const mq::DaemonStats& now, const RateTable& rates, bool acked_rates);

}  // namespace mqctl
