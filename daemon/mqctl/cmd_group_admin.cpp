// Consumer-group administration: `mqctl reset-offsets NAME --group G --to earliest|latest|OFFSET` moves a group
// (all its members) and `mqctl delete-group NAME --group G` removes one at once instead of waiting for mqd's
// group expiry. Both act on the group's position in the topic, so they work while its consumers are down.
#include <iostream>
#include <string>

#include "cli.hpp"
#include "commands.hpp"

namespace mqctl {

namespace {

// "earliest", "latest" or a record offset.
std::string check_target(const std::string& to) {
  if (to == "earliest" || to == "latest") return to;
  if (to.empty() || to.find_first_not_of("0123456789") != std::string::npos)
    throw UsageError("--to: '" + to + "' is not earliest, latest or an offset");
  return std::to_string(parse_count_arg("--to", to));
}

}  // namespace

int run_reset_offsets(const Args& args, Context& context) {
  CommandLine cl("reset-offsets NAME --group G --to earliest|latest|OFFSET",
                 "Moves a consumer group, for all its members, to the topic's earliest record, to its end (latest),\n"
                 "or to a record offset between the two. The group's next poll continues from there.");
  cl.positional("NAME");
  // clang-format off
  cl.options()
    ("group", po::value<std::string>()->value_name("G"), "the consumer group (required)")
    ("to", po::value<std::string>()->value_name("WHERE"), "earliest, latest or an OFFSET (required)");
  // clang-format on
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  const auto group = cl.get("group");
  if (!group) throw UsageError("missing --group");
  check_group_name("--group", *group);
  const auto to = cl.get("to");
  if (!to) throw UsageError("missing --to (earliest, latest or an offset)");
  const std::string target = check_target(*to);
  auto client = connect(context);
  call(client, "reset-offsets", {{"topic", name}, {"group", *group}, {"to", target}});
  std::cout << "Reset group " << *group << " of topic " << name << " to " << target << ".\n";
  return 0;
}

int run_delete_group(const Args& args, Context& context) {
  CommandLine cl("delete-group NAME --group G",
                 "Deletes a consumer group of a topic at once, so it no longer holds records back. A group with live\n"
                 "members cannot be deleted: stop its consumers first.");
  cl.positional("NAME");
  cl.options()("group", po::value<std::string>()->value_name("G"), "the consumer group (required)");
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  const auto group = cl.get("group");
  if (!group) throw UsageError("missing --group");
  check_group_name("--group", *group);
  auto client = connect(context);
  call(client, "delete-group", {{"topic", name}, {"group", *group}});
  std::cout << "Deleted group " << *group << " of topic " << name << ".\n";
  return 0;
}

}  // namespace mqctl
