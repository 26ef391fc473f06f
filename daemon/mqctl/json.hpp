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
  // Inside an object: a key and its value.
  void member(std::string_view name, std::uint64_t value);
  void member(std::string_view name, std::string_view value);

  const std::string& str() const { return out_; }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace mqctl
