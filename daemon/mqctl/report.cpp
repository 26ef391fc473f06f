// Reading and rendering the daemon's topic sections (see report.hpp).
#include "report.hpp"

#include <array>
#include <cstdio>

#include "size.hpp"
#include "table.hpp"

namespace mqctl {

std::string format_rate(double per_second) {
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.1f", per_second);
  return text.data();
}

std::string format_mode(std::uint32_t bits) {
  std::array<char, 16> text{};
  std::snprintf(text.data(), text.size(), "%04o", bits);
  return text.data();
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

Json to_json(const mq::GroupReport& g) {
  const auto or_null = [](const auto& v) { return v ? Json(*v) : Json(nullptr); };
  const auto ms_or_null = [](const auto& v) { return v ? Json(static_cast<std::uint64_t>(v->count())) : Json(nullptr); };
  return {{"name", g.name},
          {"committed", g.committed},
          {"next", g.next},
          {"lag", g.lag},
          {"members", g.members},
          {"unacked", g.unacked},
          {"retrying", or_null(g.retrying)},
          {"parked", or_null(g.parked)},
          {"retry",
           {{"max_attempts", or_null(g.retry.max_attempts)},
            {"backoff_ms", ms_or_null(g.retry.backoff)},
            {"factor", or_null(g.retry.factor)},
            {"max_backoff_ms", ms_or_null(g.retry.max_backoff)},
            {"jitter", or_null(g.retry.jitter)}}},
          {"ordering", g.ordering ? Json(mq::ordering_name(*g.ordering)) : Json(nullptr)},
          {"active_pid", or_null(g.active_pid)}};
}

Json to_json(const mq::TopicReport& t) {
  Json stuck = Json::array();
  for (const auto& s : t.stuck)
    stuck.push_back({{"group", s.group},
                     {"offset", s.offset},
                     {"position", s.position},
                     {"cause", mq::to_string(s.cause)},
                     {"pid", s.pid},
                     {"for_s", s.for_s}});
  Json groups = Json::array();
  for (const auto& g : t.groups) groups.push_back(to_json(g));
  return {{"name", t.name},
          {"capacity", t.capacity},
          {"max_message", t.max_message},
          {"policy", t.policy == mq::Policy::block ? "block" : "overwrite"},
          {"storage", t.storage == mq::Storage::file ? "file" : "shm"},
          {"mode", format_mode(t.mode)},
          {"access_group", t.access_group},
          {"block_timeout_ms", static_cast<std::uint64_t>(t.block_timeout.count())},
          {"earliest", t.earliest},
          {"latest", t.latest},
          {"bytes", t.bytes},
          {"producers", t.producers},
          {"stalled_producers", t.stalled_producers},
          {"exclusive_pid", t.exclusive_pid ? Json(*t.exclusive_pid) : Json(nullptr)},
          {"exclusive_plain", t.exclusive_plain ? Json(*t.exclusive_plain) : Json(nullptr)},
          {"msgs_per_s", t.msgs_per_s},
          {"bytes_per_s", t.bytes_per_s},
          {"orphans_repaired", t.orphans_repaired},
          {"stuck", std::move(stuck)},
          {"groups", std::move(groups)}};
}

std::string render_groups(const std::vector<mq::GroupReport>& groups) {
  if (groups.empty()) return "no consumer groups\n";
  Table table({{"GROUP"},
               {"COMMITTED", Table::Align::right},
               {"NEXT", Table::Align::right},
               {"LAG", Table::Align::right},
               {"MEMBERS", Table::Align::right},
               {"UNACKED", Table::Align::right},
               {"RETRYING", Table::Align::right},
               {"PARKED", Table::Align::right},
               {"ORDERING"}});
  for (const auto& g : groups)
    table.add_row({g.name, std::to_string(g.committed), std::to_string(g.next), std::to_string(g.lag),
                   std::to_string(g.members), std::to_string(g.unacked),
                   g.retrying ? std::to_string(*g.retrying) : std::string("-"),
                   g.parked ? std::to_string(*g.parked) : std::string("-"),
                   g.ordering ? std::string(mq::ordering_name(*g.ordering)) : std::string("-")});
  return table.render();
}

std::string render_topic(const mq::TopicReport& t) {
  const auto size = [](std::uint64_t bytes) {
    return format_size(bytes) + " (" + std::to_string(bytes) + " bytes)";
  };
  const std::string policy = t.policy == mq::Policy::block ? "block" : "overwrite";
  const std::string access_group = t.access_group.empty() ? "mqd's group" : t.access_group;
  std::string out;
  out += "Topic:          " + t.name + "\n";
  out += "Capacity:       " + size(t.capacity) + "\n";
  out += "Max message:    " + size(t.max_message) + "\n";
  out += "Policy:         " + policy;
  if (t.policy == mq::Policy::block)
    out += " (a full topic makes publishers wait up to " + std::to_string(t.block_timeout.count()) + " ms)";
  out += "\n";
  out += "Storage:        " + std::string(t.storage == mq::Storage::file ? "file" : "shm") + "\n";
  out += "Access:         mode " + format_mode(t.mode) + ", group " + access_group + "\n";
  out += "Offsets:        earliest " + std::to_string(t.earliest) + ", latest " + std::to_string(t.latest) + "\n";
  out += "Bytes written:  " + std::to_string(t.bytes) + "\n";
  out += "Producers:      " + std::to_string(t.producers) + " (" + std::to_string(t.stalled_producers) + " stalled)";
  if (t.exclusive_pid)
    out += ", exclusive: pid " + std::to_string(*t.exclusive_pid) +
           (t.exclusive_plain.value_or(false) ? " (plain claims)" : " (claims by CAS: no AVX or membarrier here)");
  out += "\n";
  out += "Rate:           " + format_rate(static_cast<double>(t.msgs_per_s)) + " msg/s, " +
         format_size_approx(static_cast<double>(t.bytes_per_s)) + "/s\n";
  if (t.orphans_repaired != 0)
    out += "Repaired:       " + std::to_string(t.orphans_repaired) +
           " position(s) no producer could finish (skip records)\n";
  for (const auto& s : t.stuck) {
    const std::string pid = std::to_string(s.pid);
    std::string why = s.cause == mq::StuckInfo::Cause::stalled_producer
                          ? "a live producer's open claim (pid " + pid + "), never robbed"
                      : s.cause == mq::StuckInfo::Cause::dead_producer
                          ? "a dead producer's claim (pid " + pid + "), being recovered"
                          : "a claim no producer holds any more; mqd repairs it (mqctl repair: now)";
    out += "Stuck:          group " + s.group + " waits at offset " + std::to_string(s.offset) + " (position " +
           std::to_string(s.position) + ") for " + format_duration(s.for_s) + ": " + why + "\n";
  }
  out += "\n" + render_groups(t.groups);
  return out;
}

}  // namespace mqctl
