// `mqctl stats [--json]`: one snapshot of the topics the caller may use (offsets, bytes, rates, producers) and their
// consumer groups (position, lag, members), as mqd's `stats` reply gives it.
#include <iostream>

#include "cli.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "report.hpp"
#include "stats_view.hpp"

namespace mqctl {

int run_stats(const Args& args, Context& context) {
  CommandLine cl("stats [--json]",
                 "Shows the topics you may use (offsets, bytes, message and byte rates, producers) and their\n"
                 "consumer groups (committed and next offsets, lag, members, unacked records, ordering); a topic\n"
                 "whose segment is corrupted is left out. Rates are mqd's, over its last second or so.\n"
                 "With --json: {\"uptime_s\":..,\"clients\":..,\"topics\":[<as describe --json>]}.");
  cl.options()("json", "print JSON (one line) instead of text");
  if (!cl.parse(args, context)) return 0;
  auto client = connect(context);
  const mq::DaemonStats report = require(client.stats());
  if (cl.has("json")) {
    Json topics = Json::array();
    for (const auto& t : report.sections) topics.push_back(to_json(t));
    std::cout << json_line({{"clients", report.clients}, {"uptime_s", report.uptime_s}, {"topics", std::move(topics)}})
              << "\n";
    return 0;
  }
  const RateTable rates = daemon_rates(report);
  std::cout << render_summary(report) << "\n\n"
            << render_topic_table(report, rates) << "\n"
            << render_group_table(report, rates, false);
  return 0;
}

}  // namespace mqctl
