// The daemon's topic sections (PROTOCOL.md: describe, groups, stats) as mqctl reads them, and their two renderings:
// aligned text for people and JSON for scripts. Fields are kept by name in the daemon's order, so a field the
// daemon adds later still reaches --json output without a change here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "json.hpp"
#include "libmq/libmq.hpp"

namespace mqctl {

// One consumer group of a topic. Keys lose their "group_" prefix; the group's name is under "name".
struct GroupReport {
  mq::Fields fields;
  // The value of `key`, or "" when the daemon did not send it.
  std::string get(std::string_view key) const;
};

// One topic section: its fields from "name" to "orphans_repaired" (and any later ones), the positions its groups
// are stuck at (keys lose their "stuck_" prefix; the group is under "group"), then its groups.
struct TopicReport {
  mq::Fields fields;
  std::vector<mq::Fields> stuck;
  std::vector<GroupReport> groups;
  std::string get(std::string_view key) const;
};

// A whole reply: the fields before the first section (stats: topics, clients, uptime_s) and the sections.
// A `groups` reply has no "name": its groups land in one section with no fields.
struct Report {
  mq::Fields head;
  std::vector<TopicReport> topics;
  std::string get(std::string_view key) const;
};

Report parse_report(const mq::Fields& reply);

// Numbers as the daemon sends them; 0 when absent or malformed (the daemon is trusted to be well-formed, and a
// display is no place to fail).
std::uint64_t as_u64(std::string_view text);
double as_double(std::string_view text);
std::string format_rate(double per_second);          // "12.5"
std::string format_mode(std::string_view octal);     // "660" -> "0660"
std::string format_duration(std::uint64_t seconds);  // "3d04h05m", "1h02m03s", "42s"

void write_json(JsonWriter& json, const GroupReport& group);
void write_json(JsonWriter& json, const TopicReport& topic);

// `mqctl describe`: the settings as "Key: value" lines, then the groups table.
std::string render_topic(const TopicReport& topic);
// `mqctl groups`: one row per group (or a line saying there is none).
std::string render_groups(const std::vector<GroupReport>& groups);

}  // namespace mqctl
