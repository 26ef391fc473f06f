// `mqctl delete NAME`: removes a topic's name. Processes that have it mapped keep their mapping until they let go
// (as with an unlinked file); new opens no longer find it. `mqctl delete-records NAME --before OFFSET` deletes the
// records before OFFSET instead (Topic::delete_records): the topic and its groups then start there.
#include <iostream>
#include <string>

#include "cli.hpp"
#include "commands.hpp"

namespace mqctl {

int run_delete(const Args& args, Context& context) {
  CommandLine cl("delete NAME",
                 "Deletes a topic. Processes that have it open keep using it until they close it; new opens no\n"
                 "longer find it.");
  cl.positional("NAME");
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  auto client = connect(context);
  require(client.remove(name));
  std::cout << "Deleted topic " << name << ".\n";
  return 0;
}

int run_delete_records(const Args& args, Context& context) {
  CommandLine cl("delete-records NAME --before OFFSET|latest",
                 "Deletes the records of a topic before OFFSET (Kafka's delete-records): they are no longer read.\n"
                 "The topic's earliest offset becomes OFFSET, consumer groups behind it move up to it, and a new\n"
                 "group starts there; records a consumer already holds stay its own to ack. 'latest' deletes every\n"
                 "record held. The ring's bytes are reused as producers write on.");
  cl.positional("NAME");
  cl.options()("before", po::value<std::string>()->value_name("OFFSET"),
               "the first offset to keep (required), or latest");
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  const auto before = cl.get("before");
  if (!before) throw UsageError("missing --before (the first offset to keep, or latest)");
  auto client = connect(context);
  mq::Offset offset = 0;
  if (*before == "latest") {
    offset = require(client.describe(name)).latest;
  } else if (before->empty() || before->find_first_not_of("0123456789") != std::string::npos) {
    throw UsageError("--before: '" + *before + "' is not an offset or latest");
  } else {
    offset = parse_count_arg("--before", *before);
  }
  const mq::Offset earliest = require(client.delete_records(name, offset));
  std::cout << "Topic " << name << " now starts at offset " << earliest << ".\n";
  return 0;
}

}  // namespace mqctl
