// `mqctl repair NAME`: turns the positions of a topic that readers wait on and no live producer claims (a claim a
// dead producer left that recovery could not finish: see `mqctl describe`, "Stuck") into skip records at once,
// instead of waiting for mqd's --orphan-grace. Only those claims' offsets are lost; a live producer's claim is left.
#include <iostream>
#include <string>

#include "cli.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "report.hpp"

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
  const auto reply = call(client, "repair", {{"topic", name}});
  struct Repaired {
    std::uint64_t offset = 0, records = 0, position = 0;
  };
  std::vector<Repaired> repaired;
  std::vector<mq::Fields> still;  // stuck behind a live producer's claim
  for (const auto& [k, v] : reply) {
    if (k == "repaired_offset") repaired.push_back({as_u64(v), 0, 0});
    else if (k == "repaired_records" && !repaired.empty()) repaired.back().records = as_u64(v);
    else if (k == "repaired_position" && !repaired.empty()) repaired.back().position = as_u64(v);
    else if (k == "stuck") still.push_back({{"group", v}});
    else if (k.starts_with("stuck_") && !still.empty()) still.back().emplace_back(k.substr(6), v);
  }
  if (cl.has("json")) {
    JsonWriter json;
    json.begin_object();
    json.key("topic");
    json.string(name);
    json.key("repaired");
    json.begin_array();
    for (const auto& r : repaired) {
      json.begin_object();
      json.key("offset");
      json.scalar(std::to_string(r.offset));
      json.key("records");
      json.scalar(std::to_string(r.records));
      json.key("position");
      json.scalar(std::to_string(r.position));
      json.end_object();
    }
    json.end_array();
    json.key("still_stuck");
    json.begin_array();
    for (const auto& s : still) {
      json.begin_object();
      for (const auto& [k, v] : s) {
        json.key(k);
        if (k == "group" || k == "cause") json.string(v);
        else json.scalar(v);
      }
      json.end_object();
    }
    json.end_array();
    json.end_object();
    std::cout << json.str() << "\n";
    return 0;
  }
  if (repaired.empty()) std::cout << "Nothing to repair in topic " << name << ".\n";
  for (const auto& r : repaired)
    std::cout << "Repaired topic " << name << ": offset" << (r.records > 1 ? "s " : " ") << r.offset
              << (r.records > 1 ? ".." + std::to_string(r.offset + r.records - 1) : std::string())
              << " (position " << r.position << ") skipped: " << r.records << " lost claim"
              << (r.records > 1 ? "s" : "") << ".\n";
  for (const auto& s : still) {
    std::string group, offset, cause, pid;
    for (const auto& [k, v] : s) {
      if (k == "group") group = v;
      else if (k == "offset") offset = v;
      else if (k == "cause") cause = v;
      else if (k == "pid") pid = v;
    }
    std::cout << "Still waiting: group " << group << " at offset " << offset << " (" << cause
              << (pid != "0" ? " pid " + pid : std::string()) << "): a live producer's claim is never robbed.\n";
  }
  return 0;
}

}  // namespace mqctl
