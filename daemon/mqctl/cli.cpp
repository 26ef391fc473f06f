// Argument parsing, connection and argument checks shared by the mqctl commands (see cli.hpp).
#include "cli.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <iostream>

#include "option_error.hpp"
#include "size.hpp"

namespace mqctl {

int parser_style() { return po::command_line_style::default_style & ~po::command_line_style::allow_guessing; }

CommandLine::CommandLine(std::string synopsis, std::string summary)
    : synopsis_(std::move(synopsis)), summary_(std::move(summary)) {}

void CommandLine::positional(const char* name, int max_count) {
  if (max_count == 1) {
    hidden_.add_options()(name, po::value<std::string>());
  } else {
    hidden_.add_options()(name, po::value<std::vector<std::string>>());
  }
  positional_.add(name, max_count);
}

bool CommandLine::parse(const Args& args, Context& context) {
  po::options_description common("Common options", kHelpWidth);
  // clang-format off
  common.add_options()
    ("socket", po::value<std::string>()->value_name("PATH"),
     "mqd's control socket (default: $MQ_SOCKET, else /run/mq/mqd.sock)")
    ("help,h", "print this help and exit");
  // clang-format on
  po::options_description all;
  all.add(own_).add(common).add(hidden_);
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional_).style(parser_style()).run(), vm_);
    po::notify(vm_);
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError("too many arguments; usage: mqctl " + synopsis_);
  } catch (po::error& e) {
    throw UsageError(mqd::option_error_message(e));
  }
  if (vm_.count("help") != 0) {
    po::options_description visible(kHelpWidth);  // one description, so both groups share a column
    if (!own_.options().empty()) visible.add(own_);
    visible.add(common);
    std::cout << "usage: mqctl " << synopsis_ << "\n" << summary_ << "\n" << visible;
    if (!epilog_.empty()) std::cout << "\n" << epilog_ << "\n";
    return false;
  }
  if (vm_.count("socket") != 0) context.socket = vm_["socket"].as<std::string>();
  return true;
}

std::optional<std::string> CommandLine::get(const char* name) const {
  if (vm_.count(name) == 0) return std::nullopt;
  return vm_[name].as<std::string>();
}

std::string CommandLine::require(const char* name) const {
  auto value = get(name);
  if (!value) throw UsageError(std::string("missing ") + name + "; usage: mqctl " + synopsis_);
  return *value;
}

mq::Client connect(const Context& context) {
  mq::ClientOptions options;
  options.socket = context.socket;
  options.client_id = "mqctl";
  auto client = mq::Client::connect(options);
  if (!client) {
    // The library's hint names its API; on the command line the knob is --socket.
    std::string message(client.error().message());
    if (const auto at = message.find("ClientOptions::socket"); at != std::string::npos)
      message.replace(at, std::strlen("ClientOptions::socket"), "--socket");
    throw Failure(message);
  }
  return std::move(*client);
}

void check_topic_name(const std::string& name) {
  if (auto valid = mq::validate_topic_name(name); !valid) throw UsageError(std::string(valid.error().message()));
}

void check_group_name(const std::string& what, const std::string& name) {
  if (auto valid = mq::validate_group_name(name); !valid)
    throw UsageError(what + ": " + std::string(valid.error().message()));
}

std::uint64_t parse_size_arg(const std::string& what, const std::string& text) {
  auto bytes = parse_size(text);
  if (!bytes)
    throw UsageError(
        what + ": '" + text +
        "' is not a size (a whole number with an optional unit B, KiB, MiB, GiB, TiB: 65536, 64KiB, 1MiB)");
  return *bytes;
}

std::uint64_t parse_count_arg(const std::string& what, const std::string& text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || stop != end || text.empty())
    throw UsageError(what + ": '" + text + "' is not a whole number");
  return value;
}

double parse_decimal_arg(const std::string& what, const std::string& text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || stop != end || text.empty() || !std::isfinite(value))
    throw UsageError(what + ": '" + text + "' is not a decimal number");
  return value;
}

}  // namespace mqctl
