// The read-only topic commands: `mqctl list`, `mqctl describe NAME` and `mqctl groups NAME`, each as text for
// people or, with --json, one JSON value for scripts (list: an array of names; describe: the topic object with its
// groups; groups: an array of group objects).
#include <iostream>
#include <optional>
#include <string>

#include "cli.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "report.hpp"

namespace mqctl {

namespace {

constexpr const char* kJsonHelp = "print JSON (one line) instead of text";

struct Shown {
  mq::Client client;
  std::string name;
  bool json = false;  // --json
};

// `mqctl COMMAND NAME [--json]`'s common part: parses the command line (nullopt: --help was printed), checks the
// name, and connects to mqd.
std::optional<Shown> topic_command(const Args& args, Context& context, const char* usage, const char* help) {
  CommandLine cl(usage, help);
  cl.positional("NAME");
  cl.options()("json", kJsonHelp);
  if (!cl.parse(args, context)) return std::nullopt;
  std::string name = cl.require("NAME");
  check_topic_name(name);
  return Shown{connect(context), std::move(name), cl.has("json")};
}

}  // namespace

int run_list(const Args& args, Context& context) {
  CommandLine cl("list [--json]", "Lists the topics mqd knows that you may use, sorted by name, one per line.");
  cl.options()("json", kJsonHelp);
  if (!cl.parse(args, context)) return 0;
  auto client = connect(context);
  const auto names = require(client.list());
  if (cl.has("json")) {
    std::cout << json_line(Json(names)) << "\n";
  } else {
    for (const auto& n : names) std::cout << n << "\n";
  }
  return 0;
}

int run_describe(const Args& args, Context& context) {
  auto shown = topic_command(args, context, "describe NAME [--json]",
                                  "Shows a topic: its settings, its offsets (earliest record held, next offset), "
                                  "bytes written,\nproducers, rates, and its consumer groups with their positions, "
                                  "lag and members.");
  if (!shown) return 0;
  const mq::TopicReport topic = require(shown->client.describe(shown->name));
  if (shown->json) {
    std::cout << json_line(to_json(topic)) << "\n";
  } else {
    std::cout << render_topic(topic);
  }
  return 0;
}

int run_groups(const Args& args, Context& context) {
  auto shown = topic_command(args, context, "groups NAME [--json]",
                                  "Shows the consumer groups of a topic: committed offset (everything before it is "
                                  "acked), next\noffset to hand out, lag (records not yet acked), members and "
                                  "records held unacked.");
  if (!shown) return 0;
  const std::vector<mq::GroupReport> groups = require(shown->client.groups(shown->name));
  if (shown->json) {
    Json list = Json::array();
    for (const auto& g : groups) list.push_back(to_json(g));
    std::cout << json_line(list) << "\n";
  } else {
    std::cout << render_groups(groups);
  }
  return 0;
}

}  // namespace mqctl
