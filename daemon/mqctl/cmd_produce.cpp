// `mqctl produce NAME`: publishes one record per line of stdin (the newline is not part of it), or one per
// --value. Offsets are printed only with --verbose, one per line, so `mqctl produce` stays quiet in pipelines.
// The topic is opened through mqd (created with its defaults when its auto-create is on) and written directly.
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"

namespace mqctl {

int run_produce(const Args& args, Context& context) {
  CommandLine cl("produce NAME [--value TEXT ...] [--verbose]",
                 "Publishes records to a topic: one per line of standard input (without its newline; an empty\n"
                 "line is an empty record), or one per --value, in order. If mqd's auto-create is on, a missing\n"
                 "topic is created with mqd's defaults. A full block topic waits up to its block timeout, then\n"
                 "fails; the records before it stay published.");
  cl.positional("NAME");
  // clang-format off
  cl.options()
    ("value", po::value<std::vector<std::string>>()->value_name("TEXT"),
     "publish TEXT as one record (repeatable; stdin is not read then)")
    ("verbose,v", "print the offset of each record published, one per line");
  // clang-format on
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  const bool verbose = cl.has("verbose");

  auto client = connect(context);
  auto producer = require(mq::Producer::make(require(client.open(name))));
  std::uint64_t published = 0;
  const auto publish = [&](const std::string& text, const std::string& where) {
    auto offset = producer.publish(std::as_bytes(std::span(text.data(), text.size())));
    if (!offset) {
      throw Failure(where + ": " + std::string(offset.error().message()) + " (" + std::to_string(published) +
                    " records published before it)");
    }
    ++published;
    if (verbose) std::cout << *offset << std::endl;  // flushed: a pipe reading offsets sees each at once
  };

  if (cl.has("value")) {
    const auto& values = cl.vm()["value"].as<std::vector<std::string>>();
    for (std::size_t i = 0; i < values.size(); ++i) publish(values[i], "--value #" + std::to_string(i + 1));
  } else {
    std::ios::sync_with_stdio(false);
    std::string line;
    for (std::uint64_t number = 1; std::getline(std::cin, line); ++number)
      publish(line, "line " + std::to_string(number));
    if (std::cin.bad()) throw Failure("cannot read standard input");
  }
  std::cout.flush();
  if (!std::cout) throw Failure("cannot write to standard output");
  return 0;
}

}  // namespace mqctl
