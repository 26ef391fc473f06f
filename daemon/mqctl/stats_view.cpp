// Rendering of the all-topics view (see stats_view.hpp).
#include "stats_view.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "size.hpp"
#include "table.hpp"

namespace mqctl {

RateTable daemon_rates(const Report& now) {
  RateTable rates;
  for (const auto& t : now.topics)
    rates[t.get("name")] = {as_double(t.get("msgs_per_s")), as_double(t.get("bytes_per_s")), {}};
  return rates;
}

RateTable sampled_rates(const Report& before, const Report& now, double seconds) {
  RateTable rates = daemon_rates(now);
  if (seconds <= 0) return rates;
  for (const auto& t : now.topics) {
    const TopicReport* old = nullptr;
    for (const auto& o : before.topics)
      if (o.get("name") == t.get("name")) old = &o;
    if (old == nullptr) continue;
    const auto latest = as_u64(t.get("latest")), old_latest = as_u64(old->get("latest"));
    const auto bytes = as_u64(t.get("bytes")), old_bytes = as_u64(old->get("bytes"));
    if (latest < old_latest || bytes < old_bytes) continue;  // a new topic of the same name
    auto& r = rates[t.get("name")];
    r.msgs_per_s = static_cast<double>(latest - old_latest) / seconds;
    r.bytes_per_s = static_cast<double>(bytes - old_bytes) / seconds;
    for (const auto& g : t.groups) {
      for (const auto& og : old->groups) {
        if (og.get("name") != g.get("name")) continue;
        const auto committed = as_u64(g.get("committed")), old_committed = as_u64(og.get("committed"));
        // A reset moves a group back: show 0 rather than a negative rate.
        r.acked_per_s[g.get("name")] =
            committed >= old_committed ? static_cast<double>(committed - old_committed) / seconds : 0.0;
      }
    }
  }
  return rates;
}

std::string render_summary(const Report& now) {
  return "uptime " + format_duration(as_u64(now.get("uptime_s"))) + ", " + std::to_string(now.topics.size()) +
         (now.topics.size() == 1 ? " topic, " : " topics, ") + now.get("clients") +
         (now.get("clients") == "1" ? " client" : " clients");
}

std::string render_topic_table(const Report& now, const RateTable& rates) {
  if (now.topics.empty()) return "no topics\n";
  using A = Table::Align;
  Table table({{"TOPIC"},
               {"EARLIEST", A::right},
               {"LATEST", A::right},
               {"BYTES", A::right},
               {"MSG/S", A::right},
               {"BYTES/S", A::right},
               {"PRODUCERS", A::right},
               {"STALLED", A::right},
               {"GROUPS", A::right},
               {"MAX LAG", A::right}});
  for (const auto& t : now.topics) {
    const auto it = rates.find(t.get("name"));
    const TopicRates r = it != rates.end() ? it->second : TopicRates{};
    std::uint64_t max_lag = 0;
    for (const auto& g : t.groups) max_lag = std::max(max_lag, as_u64(g.get("lag")));
    table.add_row({t.get("name"), t.get("earliest"), t.get("latest"), format_size_approx(as_double(t.get("bytes"))),
                   format_rate(r.msgs_per_s), format_size_approx(r.bytes_per_s), t.get("producers"),
                   t.get("stalled_producers"), std::to_string(t.groups.size()),
                   t.groups.empty() ? "-" : std::to_string(max_lag)});
  }
  return table.render();
}

std::string render_group_table(const Report& now, const RateTable& rates, bool acked_rates) {
  using A = Table::Align;
  std::vector<Table::Column> columns = {{"TOPIC"},
                                        {"GROUP"},
                                        {"COMMITTED", A::right},
                                        {"NEXT", A::right},
                                        {"LAG", A::right},
                                        {"MEMBERS", A::right},
                                        {"UNACKED", A::right}};
  if (acked_rates) columns.push_back({"ACKED/S", A::right});
  Table table(std::move(columns));
  for (const auto& t : now.topics) {
    for (const auto& g : t.groups) {
      std::vector<std::string> row = {t.get("name"), g.get("name"),    g.get("committed"), g.get("next"),
                                      g.get("lag"),  g.get("members"), g.get("unacked")};
      if (acked_rates) {
        std::string shown = "-";
        if (const auto it = rates.find(t.get("name")); it != rates.end())
          if (const auto r = it->second.acked_per_s.find(g.get("name")); r != it->second.acked_per_s.end())
            shown = format_rate(r->second);
        row.push_back(shown);
      }
      table.add_row(std::move(row));
    }
  }
  return table.empty() ? "no consumer groups\n" : table.render();
}

}  // namespace mqctl
