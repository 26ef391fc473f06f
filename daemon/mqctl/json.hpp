// A minimal streaming JSON writer for mqctl's --json output: objects, arrays, strings and numbers, with commas and
// escaping handled here so the commands only say what to write. Output is one line; pipe it to `jq` for pretty.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mqctl {

class JsonWriter {
 public:
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();
  // Inside an object: the next value's key.
  void key(std::string_view name);
  void string(std::string_view value);
  void number(std::uint64_t value);
  // `text` must already be a JSON number (see looks_like_number); written as is.
  void raw_number(std::string_view text);
  // A daemon field value: a number when it looks like one, else a string.
  void scalar(std::string_view value);

  const std::string& str() const { return out_; }

  // True for decimal text that is a valid JSON number ("12", "0.5"; not "012", "1e", "" or "-").
  static bool looks_like_number(std::string_view text);

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace mqctl
