// Reading and rendering the daemon's topic sections (see report.hpp).
#include "report.hpp"

#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "size.hpp"
#include "table.hpp"

namespace mqctl {

namespace {

std::string find(const mq::Fields& fields, std::string_view key) {
  for (const auto& [k, v] : fields)
    if (k == key) return v;
  return {};
}

// Keys whose values are text even when they look like numbers (a topic may be called "42").
bool always_text(std::string_view key) {
  return key == "name" || key == "mode" || key == "policy" || key == "storage" || key == "access_group" ||
         key == "group" || key == "cause";
}

void write_fields(JsonWriter& json, const mq::Fields& fields) {
  for (const auto& [k, v] : fields) {
    json.key(k);
    if (k == "mode") {
      json.string(format_mode(v));
    } else if (always_text(k)) {
      json.string(v);
    } else {
      json.scalar(v);
    }
  }
}

}  // namespace

std::string GroupReport::get(std::string_view key) const { return find(fields, key); }
std::string TopicReport::get(std::string_view key) const { return find(fields, key); }
std::string Report::get(std::string_view key) const { return find(head, key); }

Report parse_report(const mq::Fields& reply) {
  Report report;
  for (const auto& [key, value] : reply) {
    if (key == "name") {
      report.topics.emplace_back();
      report.topics.back().fields.emplace_back(key, value);
    } else if (key == "stuck" && !report.topics.empty()) {
      report.topics.back().stuck.push_back({{"group", value}});
    } else if (key.starts_with("stuck_") && !report.topics.empty() && !report.topics.back().stuck.empty()) {
      report.topics.back().stuck.back().emplace_back(key.substr(6), value);
    } else if (key == "group") {
      if (report.topics.empty()) report.topics.emplace_back();
      report.topics.back().groups.emplace_back();
      report.topics.back().groups.back().fields.emplace_back("name", value);
    } else if (key.starts_with("group_") && !report.topics.empty() && !report.topics.back().groups.empty()) {
      report.topics.back().groups.back().fields.emplace_back(key.substr(6), value);
    } else if (report.topics.empty()) {
      report.head.emplace_back(key, value);
    } else {
      report.topics.back().fields.emplace_back(key, value);
    }
  }
  return report;
}

std::uint64_t as_u64(std::string_view text) {
  std::uint64_t value = 0;
  const auto [stop, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && stop == text.data() + text.size() ? value : 0;
}

double as_double(std::string_view text) {
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  return end != copy.c_str() && *end == '\0' ? value : 0.0;
}

std::string format_rate(double per_second) {
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.1f", per_second);
  return text.data();
}

std::string format_mode(std::string_view octal) {
  if (octal.empty() || octal.front() == '0') return std::string(octal);
  return "0" + std::string(octal);
}

std::string format_duration(std::uint64_t s) {
  std::array<char, 48> text{};
  const auto d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  if (d > 0) {
    std::snprintf(text.data(), text.size(), "%llud%02lluh%02llum", static_cast<unsigned long long>(d),
                  static_cast<unsigned long long>(h), static_cast<unsigned long long>(m));
  } else if (h > 0) {
    std::snprintf(text.data(), text.size(), "%lluh%02llum%02llus", static_cast<unsigned long long>(h),
                  static_cast<unsigned long long>(m), static_cast<unsigned long long>(sec));
  } else if (m > 0) {
    std::snprintf(text.data(), text.size(), "%llum%02llus", static_cast<unsigned long long>(m),
                  static_cast<unsigned long long>(sec));
  } else {
    std::snprintf(text.data(), text.size(), "%llus", static_cast<unsigned long long>(sec));
  }
  return text.data();
}

void write_json(JsonWriter& json, const GroupReport& group) {
  json.begin_object();
  write_fields(json, group.fields);
  json.end_object();
}

void write_json(JsonWriter& json, const TopicReport& topic) {
  json.begin_object();
  write_fields(json, topic.fields);
  json.key("stuck");
  json.begin_array();
  for (const auto& s : topic.stuck) {
    json.begin_object();
    write_fields(json, s);
    json.end_object();
  }
  json.end_array();
  json.key("groups");
  json.begin_array();
  for (const auto& g : topic.groups) write_json(json, g);
  json.end_array();
  json.end_object();
}

std::string render_groups(const std::vector<GroupReport>& groups) {
  if (groups.empty()) return "no consumer groups\n";
  Table table({{"GROUP"},
               {"COMMITTED", Table::Align::right},
               {"NEXT", Table::Align::right},
               {"LAG", Table::Align::right},
               {"MEMBERS", Table::Align::right},
               {"UNACKED", Table::Align::right}});
  for (const auto& g : groups)
    table.add_row({g.get("name"), g.get("committed"), g.get("next"), g.get("lag"), g.get("members"), g.get("unacked")});
  return table.render();
}

std::string render_topic(const TopicReport& t) {
  static constexpr std::array<std::string_view, 16> kKnown = {
      "name",  "capacity",     "max_message",       "policy",     "storage",     "mode",
      "access_group", "block_timeout_ms",  "earliest",   "latest", "bytes", "producers",
      "stalled_producers", "msgs_per_s", "bytes_per_s", "orphans_repaired"};
  const auto size = [](const std::string& bytes) {
    return bytes.empty() ? std::string("-") : format_size(as_u64(bytes)) + " (" + bytes + " bytes)";
  };
  const std::string access_group = t.get("access_group").empty() ? "mqd's group" : t.get("access_group");
  std::string out;
  out += "Topic:          " + t.get("name") + "\n";
  out += "Capacity:       " + size(t.get("capacity")) + "\n";
  out += "Max message:    " + size(t.get("max_message")) + "\n";
  out += "Policy:         " + t.get("policy");
  if (t.get("policy") == "block")
    out += " (a full topic makes publishers wait up to " + t.get("block_timeout_ms") + " ms)";
  out += "\n";
  out += "Storage:        " + t.get("storage") + "\n";
  out += "Access:         mode " + format_mode(t.get("mode")) + ", group " + access_group + "\n";
  out += "Offsets:        earliest " + t.get("earliest") + ", latest " + t.get("latest") + "\n";
  out += "Bytes written:  " + t.get("bytes") + "\n";
  out += "Producers:      " + t.get("producers") + " (" + t.get("stalled_producers") + " stalled)\n";
  out += "Rate:           " + format_rate(as_double(t.get("msgs_per_s"))) + " msg/s, " +
         format_size_approx(as_double(t.get("bytes_per_s"))) + "/s\n";
  if (t.get("orphans_repaired") != "" && t.get("orphans_repaired") != "0")
    out += "Repaired:       " + t.get("orphans_repaired") + " position(s) no producer could finish (skip records)\n";
  for (const auto& s : t.stuck) {
    const auto get = [&s](std::string_view key) { return find(s, key); };
    const std::string cause = get("cause");
    std::string why = cause == "stalled_producer" ? "a live producer's open claim (pid " + get("pid") + "), never robbed"
                      : cause == "dead_producer"  ? "a dead producer's claim (pid " + get("pid") + "), being recovered"
                                                  : "a claim no producer holds any more; mqd repairs it (mqctl repair: now)";
    out += "Stuck:          group " + get("group") + " waits at offset " + get("offset") + " (position " +
           get("position") + ") for " + format_duration(as_u64(get("for_s"))) + ": " + why + "\n";
  }
  for (const auto& [k, v] : t.fields) {  // fields a newer daemon added
    bool known = false;
    for (const auto name : kKnown) known = known || name == k;
    if (!known) out += k + ": " + v + "\n";
  }
  out += "\n" + render_groups(t.groups);
  return out;
}

}  // namespace mqctl
