// The control protocol between libmq clients (mq::Client, mqctl) and mqd: length-prefixed frames over a Unix
// stream socket, each a request or reply with a type and named fields. Decoding checks every length before use:
// a truncated, oversized or garbage frame is an error naming the problem, never a crash.
//
//   frame   = u32 body_len (little-endian, 4 <= body_len <= the direction's max_frame) + body
//   body    = u16 version (kProtocolVersion) + u8 type_len + type + u16 field_count + field*
//   field   = u16 key_len + key + u32 value_len + value
//
// Replies carry field "status" = "ok" or an Errc name, and "error" = the message when not ok.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libmq/error.hpp"

namespace mq::control {

inline constexpr std::uint16_t kProtocolVersion = 1;
inline constexpr std::size_t kMaxFrame = 64 * 1024;
inline constexpr std::size_t kMaxFields = 1024;

// How big a frame may be, per direction. Requests (read by mqd from any local peer) stay small; replies (read by a
// client from the daemon it chose) may list every topic: `list` / `stats` of thousands of topics with their groups.
struct Limits {
  std::size_t max_frame;
  std::size_t max_fields;  // <= 65535: the field count is a u16
};
inline constexpr Limits kRequestLimits{kMaxFrame, kMaxFields};
inline constexpr Limits kReplyLimits{16 * 1024 * 1024, 65535};

struct Frame {
  std::string type;
  std::vector<std::pair<std::string, std::string>> fields;

  Frame() = default;
  explicit Frame(std::string t) : type(std::move(t)) {}
  Frame& add(std::string key, std::string value) {
    fields.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  // The first value of `key`, if any.
  std::optional<std::string_view> get(std::string_view key) const;
  // Every value of `key`, in order.
  std::vector<std::string_view> all(std::string_view key) const;
};

// The frame with its 4-byte length prefix. Errc::invalid_argument if it would exceed `limits`.
Result<std::string> encode(const Frame& frame, const Limits& limits = kRequestLimits);
// Decodes a body (without the length prefix).
Result<Frame> decode(std::span<const std::byte> body, const Limits& limits = kRequestLimits);
// Reads the length prefix; Errc::invalid_argument when it is below 4 or above limits.max_frame.
Result<std::size_t> body_length(std::span<const std::byte, 4> prefix, const Limits& limits = kRequestLimits);

// Replies.
Frame ok_reply();
Frame error_reply(const Error& error);
// The reply as a Result: Error (with its Errc) when "status" is not ok.
Result<Frame> check_reply(Frame reply);

}  // namespace mq::control
