// The message of a Boost.Program_options error, safe for any user input. Boost 1.74 fills an error's message by
// replacing each %placeholder% with the user's token in a loop that never ends when the token holds that same
// placeholder: `mqd --x%original_token%`, or a config line `%invalid_line%`, hung mqd and mqctl for good. The '%'
// of every token is shown as a fullwidth '％' before the message is built.
#pragma once

#include <boost/program_options/errors.hpp>
#include <map>
#include <string>

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

}  // namespace mqd
