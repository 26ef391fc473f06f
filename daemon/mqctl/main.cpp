// mqctl: the command-line tool of libmq. It administers topics and consumer groups through mqd's control socket
// (PROTOCOL.md) and produces and consumes records from the shell. This file splits the global options from the
// command, dispatches, and turns failures into one line on stderr and the exit status (0, 1 failed, 2 usage).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli.hpp"
#include "commands.hpp"
#include "option_error.hpp"

#ifndef MQCTL_VERSION
#define MQCTL_VERSION "unknown"
#endif

namespace mqctl {
namespace {

po::options_description global_options() {
  po::options_description o("Options", kHelpWidth);
  // clang-format off
  o.add_options()
    ("socket", po::value<std::string>()->value_name("PATH"),
     "mqd's control socket (default: $MQ_SOCKET, else /run/mq/mqd.sock)")
    ("help,h", "print this help and exit")
    ("version,V", "print the version and exit");
  // clang-format on
  return o;
}

void print_help(const po::options_description& options) {
  std::cout << "usage: mqctl [--socket PATH] COMMAND [ARGS...]\n"
               "Administers libmq topics through mqd, and produces and consumes records from the shell.\n\n"
               "Commands:\n";
  std::size_t width = 0;
  for (const auto& c : commands()) width = std::max(width, c.name.size());
  for (const auto& c : commands())
    std::cout << "  " << c.name << std::string(width - c.name.size() + 2, ' ') << c.summary << "\n";
  std::cout << "\n"
            << options
            << "\n'mqctl COMMAND --help' describes a command; mqctl(1) has the details.\n"
               "Exit status: 0 success, 1 a request failed (the message says why), 2 bad usage.\n";
}

// The global options end at the first argument that is not an option: the command.
std::size_t command_index(const Args& args) {
  std::size_t at = 0;
  while (at < args.size() && args[at].size() > 1 && args[at][0] == '-') {
    if (args[at] == "--") return at + 1;
    if (args[at] == "--socket") ++at;  // its value follows
    ++at;
  }
  return at;
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

const Command* find_command(const std::string& name) {
  for (const auto& c : commands())
    if (c.name == name) return &c;
  return nullptr;
}

int run(const Args& all) {
  const std::size_t at = command_index(all);
  const Args global(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(at, all.size())));
  const auto options = global_options();
  po::variables_map vm;
  Args before = global;
  std::erase(before, std::string("--"));
  try {
    po::store(po::command_line_parser(before).options(options).style(parser_style()).run(), vm);
  } catch (po::error& e) {
    std::cerr << "mqctl: " << one_line(mqd::option_error_message(e)) << " (see 'mqctl --help')\n";
    return kExitUsage;
  }
  if (vm.count("help") != 0) {
    print_help(options);
    return 0;
  }
  if (vm.count("version") != 0) {
    std::cout << "mqctl (libmq) " << MQCTL_VERSION << "\n";
    return 0;
  }
  if (at >= all.size()) {
    std::cerr << "mqctl: no command given (see 'mqctl --help')\n";
    return kExitUsage;
  }
  Context context;
  if (vm.count("socket") != 0) context.socket = vm["socket"].as<std::string>();
  std::string name = all[at];
  Args rest(all.begin() + static_cast<std::ptrdiff_t>(at) + 1, all.end());
  if (name == "help") {  // `mqctl help [COMMAND]`
    if (rest.empty()) {
      print_help(options);
      return 0;
    }
    name = rest.front();
    rest = {"--help"};
  }
  const Command* command = find_command(name);
  if (command == nullptr) {
    std::cerr << "mqctl: unknown command '" << one_line(name) << "' (see 'mqctl --help')\n";
    return kExitUsage;
  }
  try {
    return command->run(rest, context);
  } catch (const UsageError& e) {
    std::cerr << "mqctl " << name << ": " << one_line(e.what()) << " (see 'mqctl " << name << " --help')\n";
    return kExitUsage;
  } catch (const Failure& e) {
    std::cerr << "mqctl " << name << ": " << one_line(e.what()) << "\n";
    return kExitFailure;
  } catch (const std::exception& e) {  // mq::Error from a value(), bad_alloc, ...
    std::cerr << "mqctl " << name << ": " << one_line(e.what()) << "\n";
    return kExitFailure;
  }
}

}  // namespace
}  // namespace mqctl

int main(int argc, char** argv) { return mqctl::run(mqctl::Args(argv + 1, argv + argc)); }
