// Rendering of the all-topics view (see stats_view.hpp).
#include "stats_view.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "size.hpp"
#include "table.hpp"

namespace mqctl {

RateTable daemon_rates(const mq::DaemonStats& now) {
  RateTable rates;
  for (const auto& t : now.sections)
    rates[t.name] = {static_cast<double>(t.msgs_per_s), static_cast<double>(t.bytes_per_s), {}};
  return rates;
}

RateTable sampled_rates(const mq::DaemonStats& before, const mq::DaemonStats& now, double seconds) {
  RateTable rates = daemon_rates(now);
  if (seconds <= 0) return rates;
  for (const auto& t : now.sections) {
    const mq::TopicReport* old = nullptr;
    for (const auto& o : before.sections)
      if (o.name == t.name) old = &o;
    if (old == nullptr) continue;
    const auto latest = t.latest, old_latest = old->latest;
    const auto bytes = t.bytes, old_bytes = old->bytes;
    if (latest < old_latest || bytes < old_bytes) continue;  // a new topic of the same name
    auto& r = rates[t.name];
    r.msgs_per_s = static_cast<double>(latest - old_latest) / seconds;
    r.bytes_per_s = static_cast<double>(bytes - old_bytes) / seconds;
    for (const auto& g : t.groups) {
      for (const auto& og : old->groups) {
        if (og.name != g.name) continue;
        const auto committed = g.committed, old_committed = og.committed;
        // A reset moves a group back: show 0 rather than a negative rate.
        r.acked_per_s[g.name] =
            committed >= old_committed ? static_cast<double>(committed - old_committed) / seconds : 0.0;
      }
    }
  }
  return rates;
}

std::string render_summary(const mq::DaemonStats& now) {
  return "uptime " + format_duration(now.uptime_s) + ", " + std::to_string(now.sections.size()) +
         (now.sections.size() == 1 ? " topic, " : " topics, ") + std::to_string(now.clients) +
         (now.clients == 1 ? " client" : " clients");
}

std::string render_topic_table(const mq::DaemonStats& now, const RateTable& rates) {
  if (now.sections.empty()) return "no topics\n";
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
  for (const auto& t : now.sections) {
    const auto it = rates.find(t.name);
    const TopicRates r = it != rates.end() ? it->second : TopicRates{};
    std::uint64_t max_lag = 0;
    for (const auto& g : t.groups) max_lag = std::max(max_lag, g.lag);
    table.add_row({t.name, std::to_string(t.earliest), std::to_string(t.latest),
                   format_size_approx(static_cast<double>(t.bytes)), format_rate(r.msgs_per_s),
                   format_size_approx(r.bytes_per_s), std::to_string(t.producers), std::to_string(t.stalled_producers),
                   std::to_string(t.groups.size()),
                   t.groups.empty() ? "-" : std::to_string(max_lag)});
  }
  return table.render();
}

std::string render_group_table(const mq::DaemonStats& now, const RateTable& rates, bool acked_rates) {
  using A = Table::Align;
  std::vector<Table::Column> columns = {{"TOPIC"},
                                        {"GROUP"},
                                        {"COMMITTED", A::right},
                                        {"NEXT", A::right},
                                        {"LAG", A::right},
                                        {"MEMBERS", A::right},
                                        {"UNACKED", A::right}};
  if (acked_rates) columns.push_back({"ACKED/S", A::right});
  columns.push_back({"ORDERING"});
  Table table(std::move(columns));
  for (const auto& t : now.sections) {
    for (const auto& g : t.groups) {
      std::vector<std::string> row = {t.name,
                                      g.name,
                                      std::to_string(g.committed),
                                      std::to_string(g.next),
                                      std::to_string(g.lag),
                                      std::to_string(g.members),
                                      std::to_string(g.unacked)};
      if (acked_rates) {
        std::string shown = "-";
        if (const auto it = rates.find(t.name); it != rates.end())
          if (const auto r = it->second.acked_per_s.find(g.name); r != it->second.acked_per_s.end())
            shown = format_rate(r->second);
        row.push_back(shown);
      }
      row.push_back(g.ordering ? std::string(mq::ordering_name(*g.ordering)) : std::string("-"));
      table.add_row(std::move(row));
    }
  }
  return table.empty() ? "no consumer groups\n" : table.render();
}

}  // namespace mqctl
