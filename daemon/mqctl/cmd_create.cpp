// `mqctl create NAME [options]`: the blog's `kafka-topics.sh --create --topic kafka-node`. Checks every value here
// (sizes, choices, mode, names) so a typo is a usage error naming the option; what the values must satisfy together
// (capacity a power of two, max message <= capacity/4, rights on the access group) is the daemon's to judge.
#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"

namespace mqctl {

namespace {

// `a` (true) or `b` (false).
bool check_choice(const std::string& option, const std::string& value, const char* a, const char* b) {
  if (value != a && value != b) throw UsageError(option + ": '" + value + "' is not " + a + " or " + b);
  return value == a;
}

// Octal permission bits such as 0660 or 660.
std::uint32_t check_mode(const std::string& text) {
  const auto bad = [&](const std::string& why) { return UsageError("--mode: '" + text + "' " + why); };
  if (text.empty() || text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos)
    throw bad("is not an octal mode like 0660");
  const unsigned long bits = std::stoul(text, nullptr, 8);
  if (bits > 0777) throw bad("has bits beyond 0777");
  if ((bits & 02) != 0) throw bad("is world-writable; topics never are");
  return static_cast<std::uint32_t>(bits);
}

}  // namespace

int run_create(const Args& args, Context& context) {
  CommandLine cl("create NAME [options]", "Creates a topic. Options left out take mqd's defaults (see mqd(8)).");
  cl.positional("NAME");
  // clang-format off
  cl.options()
    ("capacity", po::value<std::string>()->value_name("SIZE"),
     "ring size, a power of two >= 64KiB (units: 65536, 64KiB, 1MiB, 4GiB)")
    ("max-message", po::value<std::string>()->value_name("SIZE"), "largest record, at most capacity/4")
    ("policy", po::value<std::string>()->value_name("block|overwrite"),
     "a full topic: block waits for consumer groups, overwrite drops the oldest records")
    ("storage", po::value<std::string>()->value_name("shm|file"),
     "shm (/dev/shm) or file (mqd's data dir, survives a reboot)")
    ("mode", po::value<std::string>()->value_name("MODE"), "permission bits, octal, never world-writable (0660)")
    ("access-group", po::value<std::string>()->value_name("NAME"), "the Unix group that may use the topic")
    ("consumer-group", po::value<std::vector<std::string>>()->value_name("G"),
     "a consumer group that keeps records from the start, before its consumers first run (repeatable)")
    ("block-timeout", po::value<std::string>()->value_name("MS"),
     "how long a publish into a full block topic waits before it fails");
  // clang-format on
  cl.epilog("Example: mqctl create kafka-node --capacity 4MiB --consumer-group email-service");
  if (!cl.parse(args, context)) return 0;

  const std::string name = cl.require("NAME");
  check_topic_name(name);
  mq::CreateOptions o;
  if (auto v = cl.get("capacity")) o.capacity = parse_size_arg("--capacity", *v);
  if (auto v = cl.get("max-message")) {
    o.max_message = parse_size_arg("--max-message", *v);
    if (o.max_message == 0) throw UsageError("--max-message: 0 bytes holds no record (leave it out for capacity/4)");
  }
  if (auto v = cl.get("policy"))
    o.policy = check_choice("--policy", *v, "block", "overwrite") ? mq::Policy::block : mq::Policy::overwrite;
  if (auto v = cl.get("block-timeout")) {
    const auto ms = parse_count_arg("--block-timeout", *v);
    if (ms > static_cast<std::uint64_t>(std::chrono::milliseconds::max().count()))
      throw UsageError("--block-timeout: '" + *v + "' is too long");
    o.block_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(ms));
  }
  if (auto v = cl.get("storage"))
    o.storage = check_choice("--storage", *v, "shm", "file") ? mq::Storage::shm : mq::Storage::file;
  if (auto v = cl.get("mode")) o.mode = check_mode(*v);
  if (auto v = cl.get("access-group")) {
    if (v->empty()) throw UsageError("--access-group: empty group name");
    o.access_group = *v;
  }
  if (cl.has("consumer-group")) {
    for (const auto& g : cl.vm()["consumer-group"].as<std::vector<std::string>>()) {
      check_group_name("--consumer-group", g);
      o.groups.push_back(g);
    }
  }

  auto client = connect(context);
  require(client.create(name, o));
  std::cout << "Created topic " << name << ".\n";
  return 0;
}

}  // namespace mqctl
