// mqctl's --json output: values built with nlohmann/json (Debian's nlohmann-json3-dev; Boost.JSON is not in
// Debian 12's Boost 1.74), members kept in the order they are added, printed as one line for scripts and `jq`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mqctl {

using Json = nlohmann::ordered_json;

// One line, no spaces. Bytes that are not UTF-8 (a name is ASCII by the naming rules, but an access group's name
// comes from the system) print as U+FFFD instead of failing the command.
inline std::string json_line(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace mqctl
