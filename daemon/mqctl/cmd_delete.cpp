// `mqctl delete NAME`: removes a topic's name. Processes that have it mapped keep their mapping until they let go
// (as with an unlinked file); new opens no longer find it.
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
  call(client, "delete", {{"topic", name}});
  std::cout << "Deleted topic " << name << ".\n";
  return 0;
}

}  // namespace mqctl
