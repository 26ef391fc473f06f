// The read-only topic commands: `mqctl list`, `mqctl describe NAME` and `mqctl groups NAME`, each as text for
// people or, with --json, one JSON value for scripts (list: an array of names; describe: the topic object with its
// groups; groups: an array of group objects).
#include <iostream>
#include <string>

#include "cli.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "report.hpp"

namespace mqctl {

namespace {

constexpr const char* kJsonHelp = "print JSON (one line) instead of text";

}  // namespace

int run_list(const Args& args, Context& context) {
  CommandLine cl("list [--json]", "Lists the topics mqd knows, sorted by name, one per line.");
  cl.options()("json", kJsonHelp);
  if (!cl.parse(args, context)) return 0;
  auto client = connect(context);
  const auto names = require(client.list());
  if (cl.has("json")) {
    JsonWriter json;
    json.begin_array();
    for (const auto& n : names) json.string(n);
    json.end_array();
    std::cout << json.str() << "\n";
  } else {
    for (const auto& n : names) std::cout << n << "\n";
  }
  return 0;
}

int run_describe(const Args& args, Context& context) {
  CommandLine cl("describe NAME [--json]",
                 "Shows a topic: its settings, its offsets (earliest record held, next offset), bytes written,\n"
                 "producers, rates, and its consumer groups with their positions, lag and members.");
  cl.positional("NAME");
  cl.options()("json", kJsonHelp);
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  auto client = connect(context);
  const Report report = parse_report(call(client, "describe", {{"topic", name}}));
  if (report.topics.empty()) throw Failure("mqd's describe reply holds no topic section: topic=" + name);
  if (cl.has("json")) {
    JsonWriter json;
    write_json(json, report.topics.front());
    std::cout << json.str() << "\n";
  } else {
    std::cout << render_topic(report.topics.front());
  }
  return 0;
}

int run_groups(const Args& args, Context& context) {
  CommandLine cl("groups NAME [--json]",
                 "Shows the consumer groups of a topic: committed offset (everything before it is acked), next\n"
                 "offset to hand out, lag (records not yet acked), members and records held unacked.");
  cl.positional("NAME");
  cl.options()("json", kJsonHelp);
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  auto client = connect(context);
  const Report report = parse_report(call(client, "groups", {{"topic", name}}));
  const std::vector<GroupReport> none;
  const auto& groups = report.topics.empty() ? none : report.topics.front().groups;
  if (cl.has("json")) {
    JsonWriter json;
    json.begin_array();
    for (const auto& g : groups) write_json(json, g);
    json.end_array();
    std::cout << json.str() << "\n";
  } else {
    std::cout << render_groups(groups);
  }
  return 0;
}

}  // namespace mqctl
