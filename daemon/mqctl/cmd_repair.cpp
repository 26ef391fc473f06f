// `mqctl repair NAME`: turns the positions of a topic that readers wait on and no live producer claims (a claim a
// dead producer left that recovery could not finish: see `mqctl describe`, "Stuck") into skip records at once,
// instead of waiting for mqd's --orphan-grace. Only those claims' offsets are lost; a live producer's claim is left.
#include <iostream>
#include <string>

#include "cli.hpp"
#include "commands.hpp"
#include "json.hpp"

namespace mqctl {

int run_repair(const Args& args, Context& context) {
  CommandLine cl("repair NAME [--json]",
                 "Repairs the positions of a topic that its consumer groups wait on although no live producer claims\n"
                 "them (claims of dead producers that recovery could not finish; 'mqctl describe' lists them under\n"
                 "Stuck). Each becomes a skip record, so the groups move on and only those claims' offsets are lost.\n"
                 "mqd does the same by itself once a position has been stuck for --orphan-grace seconds.");
  cl.positional("NAME");
  cl.options()("json", "print JSON (one line) instead of text");
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  auto client = connect(context);
  const mq::RepairReport report = require(client.repair(name));
  if (cl.has("json")) {
    Json repaired = Json::array();
    for (const auto& r : report.repaired)
      repaired.push_back({{"offset", r.offset}, {"records", r.records}, {"position", r.position}});
    Json still_stuck = Json::array();  // stuck behind a live producer's claim
    for (const auto& s : report.stuck)
      still_stuck.push_back(
          {{"group", s.group}, {"offset", s.offset}, {"cause", mq::to_string(s.cause)}, {"pid", s.pid}});
    std::cout << json_line({{"topic", name}, {"repaired", std::move(repaired)}, {"still_stuck", std::move(still_stuck)}})
              << "\n";
    return 0;
  }
  if (report.repaired.empty()) std::cout << "Nothing to repair in topic " << name << ".\n";
  for (const auto& r : report.repaired)
    std::cout << "Repaired topic " << name << ": offset" << (r.records > 1 ? "s " : " ") << r.offset
              << (r.records > 1 ? ".." + std::to_string(r.offset + r.records - 1) : std::string())
              << " (position " << r.position << ") skipped: " << r.records << " lost claim"
              << (r.records > 1 ? "s" : "") << ".\n";
  for (const auto& s : report.stuck)
    std::cout << "Still waiting: group " << s.group << " at offset " << s.offset << " (" << mq::to_string(s.cause)
              << (s.pid != 0 ? " pid " + std::to_string(s.pid) : std::string())
              << "): a live producer's claim is never robbed.\n";
  return 0;
}

}  // namespace mqctl
