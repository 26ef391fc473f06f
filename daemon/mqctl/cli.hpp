// The frame every mqctl command shares: how a failure becomes an exit status (1: a request failed, 2: bad usage),
// how a command parses its arguments (Boost.Program_options, with the common options --socket and --help), and how
// it reaches mqd. Commands throw UsageError or Failure; main() turns them into one line on stderr and the status.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "libmq/libmq.hpp"

namespace mqctl {

namespace po = boost::program_options;

inline constexpr int kExitFailure = 1;       // the daemon or the library refused or failed
inline constexpr int kExitUsage = 2;         // unknown command or option, missing or malformed argument
inline constexpr unsigned kHelpWidth = 110;  // --help line length; descriptions wrap beyond it

// Bad usage: exit status 2. The message names the option or argument.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A failed request: exit status 1. The message is the daemon's or the library's, which names the topic.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the global options before the command said.
struct Context {
  std::string socket;  // empty: the client's default ($MQ_SOCKET, else /run/mq/mqd.sock)
};

using Args = std::vector<std::string>;

// One command's command line: its own options plus the common ones, positional arguments by name, and --help.
// Usage: add options with options(), name positionals with positional(), then parse(); parse() returns false when
// --help was printed (the command then exits 0).
class CommandLine {
 public:
  // `synopsis`: e.g. "create NAME [options]"; `summary`: one or two sentences printed under it by --help.
  CommandLine(std::string synopsis, std::string summary);

  po::options_description_easy_init options() { return own_.add_options(); }
  // A positional argument; max_count -1 = any number. They are filled in the order declared.
  void positional(const char* name, int max_count = 1);
  // Text printed after the options by --help (examples, exit status notes).
  void epilog(std::string text) { epilog_ = std::move(text); }

  // Throws UsageError for unknown options, bad values and surplus arguments.
  bool parse(const Args& args, Context& context);

  const po::variables_map& vm() const { return vm_; }
  bool has(const char* name) const { return vm_.count(name) != 0; }
  // The value of a string option or positional, if given.
  std::optional<std::string> get(const char* name) const;
  // A required positional; UsageError naming it when missing.
  std::string require(const char* name) const;

 private:
  std::string synopsis_;
  std::string summary_;
  std::string epilog_;
  po::options_description own_{"Options", kHelpWidth};
  po::options_description hidden_;  // the positionals, which --help lists in the synopsis instead
  po::positional_options_description positional_;
  po::variables_map vm_;
};

// The style every mqctl parser uses: Boost's default minus abbreviated long options, so scripts stay unambiguous.
int parser_style();

// Connects to mqd. Throws Failure (naming the socket) when it does not answer.
mq::Client connect(const Context& context);

// The value of a Result, or throws Failure with its message.
template <class T>
T require(mq::Result<T>&& result) {
  if (!result) throw Failure(std::string(result.error().message()));
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

// Argument checks shared by commands; each throws UsageError naming `what` (an option or argument).
void check_topic_name(const std::string& name);
void check_group_name(const std::string& what, const std::string& name);
std::uint64_t parse_size_arg(const std::string& what, const std::string& text);
std::uint64_t parse_count_arg(const std::string& what, const std::string& text);
double parse_decimal_arg(const std::string& what, const std::string& text);  // finite: no nan, no inf

}  // namespace mqctl
