// The message of a Boost.Program_options error, safe for any user input. Boost 1.74 fills an error's message by
// replacing each %placeholder% with the user's token in a loop that never ends when the token holds that same
// placeholder: `mqd --x%original_token%`, or a config line `%invalid_line%`, hung mqd and mqctl for good. The '%'
// of every token is shown as a fullwidth '％' before the message is built.
// Also the two steps of reading options that mqd and mq-kafka-bridge share: a command line of options only, and the
// text of a config file.
#pragma once

#include <boost/program_options.hpp>
#include <boost/program_options/errors.hpp>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace mqd {

inline std::string option_error_message(boost::program_options::error& e) {
  namespace po = boost::program_options;
  // A pointer to the protected member, taken in a class derived from its owner (legal), applies to any owner.
  struct Substitutions : po::error_with_option_name {
    static std::map<std::string, std::string> po::error_with_option_name::*member() {
      return &Substitutions::m_substitutions;
    }
  };
  if (auto* named = dynamic_cast<po::error_with_option_name*>(&e)) {
    for (auto& [placeholder, token] : named->*Substitutions::member()) {
      for (std::size_t at = token.find('%'); at != std::string::npos; at = token.find('%', at))
        token.replace(at, 1, "\xef\xbc\x85");  // U+FF05 FULLWIDTH PERCENT SIGN
    }
  }
  return e.what();
}

// Stores the command line into `vm`. `program` takes options only: a stray word is an error naming it, not ignored.
// Throws boost::program_options::error.
inline void store_command_line(int argc, const char* const* argv, const boost::program_options::options_description& desc,
                               const std::string& program, boost::program_options::variables_map& vm) {
  namespace po = boost::program_options;
  po::options_description with_strays;
  with_strays.add(desc).add_options()("stray", po::value<std::vector<std::string>>());
  po::positional_options_description strays;
  strays.add("stray", -1);
  po::store(po::command_line_parser(argc, argv).options(with_strays).positional(strays).run(), vm);
  if (vm.count("stray") != 0)
    throw po::error("unexpected argument '" + vm["stray"].as<std::vector<std::string>>().front() + "': " + program +
                    " takes options only (see " + program + " --help)");
}

// Stores the keys of config file `text` that `desc` knows into `vm` (values already there win) and returns the
// others (sections, pass-through keys) for the caller to check. Throws boost::program_options::error.
inline std::vector<boost::program_options::option> store_config_text(
    const std::string& text, const boost::program_options::options_description& desc,
    boost::program_options::variables_map& vm) {
  namespace po = boost::program_options;
  std::istringstream body(text);
  auto parsed = po::parse_config_file(body, desc, true);
  std::vector<po::option> extra;
  for (const auto& o : parsed.options)
    if (o.unregistered) extra.push_back(o);
  po::store(parsed, vm);
  return extra;
}

}  // namespace mqd
