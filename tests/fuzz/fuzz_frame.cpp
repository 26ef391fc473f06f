// Fuzz target: the control-frame decoder mqd runs on every request from any local user. Input = the bytes a peer
// sends: a 4-byte length prefix, then the body. Nothing may crash or read outside the input; a frame that decodes
// must survive encode -> decode unchanged, and one that does not must be refused with an error that says why.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "control/frame.hpp"
#include "fuzz_input.hpp"

using mqfuzz::check;

namespace mqfuzz {

std::vector<std::vector<std::uint8_t>> seeds() {
  std::vector<std::vector<std::uint8_t>> out;
  auto add = [&](const mq::control::Frame& f) {
    auto bytes = mq::control::encode(f);
    out.emplace_back(bytes->begin(), bytes->end());
  };
  add(mq::control::Frame("hello").add("pid", "42").add("topic", "kafka-node"));
  add(mq::control::Frame("create").add("topic", "orders").add("capacity", "1MiB").add("group", "billing"));
  add(mq::control::Frame("list"));
  add(mq::control::error_reply(mq::Error(mq::Errc::permission_denied, "permission denied: topic=x")));
  out.push_back({0xff, 0xff, 0xff, 0x7f});
  out.push_back({0x06, 0, 0, 0, 0x01, 0x00, 0x05, 'h'});
  return out;
}

}  // namespace mqfuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  auto length = mq::control::body_length(std::span<const std::byte, 4>(bytes, 4));
  if (!length) {
    check(length.error().message().find("bad control frame") != std::string::npos, "a refused length says why");
    return 0;
  }
  // The daemon reads exactly `length` bytes (or fewer when the peer hangs up): decode what there is.
  const std::size_t body = std::min(*length, size - 4);
  auto frame = mq::control::decode(std::span<const std::byte>(bytes + 4, body));
  if (!frame) {
    check(!std::string(frame.error().message()).empty(), "a refused frame says why");
    return 0;
  }
  auto again = mq::control::encode(*frame);
  check(static_cast<bool>(again), "a decoded frame encodes again");
  auto back = mq::control::decode(std::span<const std::byte>(
      reinterpret_cast<const std::byte*>(again->data()) + 4, again->size() - 4));
  check(back && back->type == frame->type && back->fields == frame->fields, "encode -> decode round trip changed it");
  (void)mq::control::check_reply(*frame);  // any status string must map to an error, never crash
  return 0;
}
