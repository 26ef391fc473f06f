// The daemon's reports on topics and groups (mq::TopicReport, mq::GroupReport: libmq/control.hpp) as mqctl shows
// them: aligned text for people and JSON for scripts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "json.hpp"
#include "libmq/libmq.hpp"

namespace mqctl {

std::string format_rate(double per_second);          // "12.5"
std::string format_mode(std::uint32_t bits);         // 0660 -> "0660"
std::string format_duration(std::uint64_t seconds);  // "3d04h05m", "1h02m03s", "42s"

// The --json forms: a group {name, committed, next, lag, members, unacked, retrying, parked, retry {...}, ordering,
// active_pid} (null where an older mqd reports nothing; active_pid for exclusive groups only); a topic with its
// settings, offsets, rates, `stuck` positions and `groups`.
Json to_json(const mq::GroupReport& group);
Json to_json(const mq::TopicReport& topic);

// `mqctl describe`: the settings as "Key: value" lines, then the groups table.
std::string render_topic(const mq::TopicReport& topic);
// `mqctl groups`: one row per group (or a line saying there is none).
std::string render_groups(const std::vector<mq::GroupReport>& groups);

}  // namespace mqctl
