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
    JsonWriter json;
    json.begin_object();
    json.member("topic", name);
    json.key("repaired");
    json.begin_array();
    for (const auto& r : report.repaired) {
      json.begin_object();
      json.member("offset", r.offset);
      json.member("records", r.records);
      json.member("position", r.position);
      json.end_object();
    }
    json.end_array();
    json.key("still_stuck");  // stuck behind a live producer's claim
    json.begin_array();
    for (const auto& s : report.stuck) {
      json.begin_object();
      json.member("group", s.group);
      json.member("offset", s.offset);
      json.member("cause", mq::to_string(s.cause));
      json.member("pid", s.pid);
      json.end_object();
    }
    json.end_array();
    json.end_object();
    std::cout << json.str() << "\n";
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
