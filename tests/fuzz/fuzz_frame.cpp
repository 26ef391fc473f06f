// Fuzz target: the control-frame decoder and the typed request codecs mqd runs on every request from any local
// user, and the reply codecs a client runs on mqd's answers. Input = the bytes a peer sends: a 4-byte length prefix,
// then the body. Nothing may crash or read outside the input; a frame that decodes must survive encode -> decode
// unchanged, and one that does not must be refused with an error that says why; a request that decodes must encode
// again to a frame that decodes to the same frame (the typed codec loses nothing it accepted).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "libmq/control.hpp"
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
  // Every request type the codec knows, as the typed client would send it.
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (add(mq::control::to_frame(std::variant_alternative_t<I, mq::control::Request>{})), ...);
  }(std::make_index_sequence<std::variant_size_v<mq::control::Request>>());
  add(mq::control::to_frame(mq::control::Create{"orders", {.capacity = 65536, .policy = mq::Policy::overwrite,
                                                           .mode = 0640, .groups = {"billing"}}}));
  add(mq::control::to_frame(mq::control::ResetOffsets{"orders", "billing", mq::TimePoint{1700000000000000000}}));
  mq::TopicReport orders{.name = "orders", .groups = {{"billing"}}};
  orders.stuck = {{"billing", 3, 192, mq::StuckInfo::Cause::dead_producer, 41, 2}};
  add(mq::control::reply_frame(mq::DaemonStats{.topics = 1, .sections = {orders}}));
  add(mq::control::reply_frame(mq::RepairReport{.repaired = {{1, 2, 64}}, .stuck = {}}));
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
  if (auto request = mq::control::request_from(*frame)) {
    const auto typed = mq::control::to_frame(*request);
    auto again_typed = mq::control::request_from(typed);
    check(static_cast<bool>(again_typed), "a request the codec accepted decodes again from its own encoding");
    const auto twice = mq::control::to_frame(*again_typed);
    check(twice.type == typed.type && twice.fields == typed.fields, "request codec round trip changed it");
  } else {
    check(request.error().message().find('\'') != std::string::npos, "a refused request names the field or type");
  }
  // Read as each reply (a client reads whatever its daemon sends).
  (void)mq::control::reply_from<mq::DaemonStats>(*frame);
  (void)mq::control::reply_from<mq::TopicReport>(*frame);
  (void)mq::control::reply_from<mq::RepairReport>(*frame);
  (void)mq::control::reply_from<mq::control::Welcome>(*frame);
  (void)mq::control::reply_from<mq::control::ResetDone>(*frame);
  return 0;
}
