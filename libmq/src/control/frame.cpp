// Encoding and checked decoding of control frames (see libmq/control.hpp).
#include "libmq/control.hpp"

#include <cstring>

namespace mq::control {

namespace {

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  template <class T>
  bool get(T& v) {
    if (in_.size() - at_ < sizeof(T)) return false;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  bool bytes(std::size_t n, std::string& out) {
    if (in_.size() - at_ < n) return false;
    out.assign(reinterpret_cast<const char*>(in_.data()) + at_, n);
    at_ += n;
    return true;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  std::span<const std::byte> in_;
  std::size_t at_ = 0;
};

Error bad(const std::string& what) { return Error(Errc::invalid_argument, "bad control frame: " + what); }

}  // namespace

std::optional<std::string_view> Frame::get(std::string_view key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return std::string_view(v);
  return std::nullopt;
}

Result<std::string> encode(const Frame& frame, const Limits& limits) {
  if (frame.type.size() > 255) return bad("type longer than 255 bytes");
  if (frame.fields.size() > limits.max_fields)
    return bad("more than " + std::to_string(limits.max_fields) + " fields");
  std::string body;
  put<std::uint16_t>(body, kProtocolVersion);
  put<std::uint8_t>(body, static_cast<std::uint8_t>(frame.type.size()));
  body += frame.type;
  put<std::uint16_t>(body, static_cast<std::uint16_t>(frame.fields.size()));
  for (const auto& [k, v] : frame.fields) {
    if (k.size() > 0xffff || v.size() > limits.max_frame) return bad("field too long: " + k.substr(0, 64));
    put<std::uint16_t>(body, static_cast<std::uint16_t>(k.size()));
    body += k;
    put<std::uint32_t>(body, static_cast<std::uint32_t>(v.size()));
    body += v;
  }
  if (body.size() > limits.max_frame)
    return bad("frame of " + std::to_string(body.size()) + " bytes exceeds " + std::to_string(limits.max_frame));
  std::string out;
  put<std::uint32_t>(out, static_cast<std::uint32_t>(body.size()));
  return out + body;
}

Result<std::size_t> body_length(std::span<const std::byte, 4> prefix, const Limits& limits) {
  std::uint32_t n;
  std::memcpy(&n, prefix.data(), 4);
  if (n < 4 || n > limits.max_frame)
    return bad("length " + std::to_string(n) + " outside 4.." + std::to_string(limits.max_frame));
  return std::size_t{n};
}

Result<Frame> decode(std::span<const std::byte> body, const Limits& limits) {
  if (body.size() > limits.max_frame) return bad("body larger than " + std::to_string(limits.max_frame));
  Reader r(body);
  std::uint16_t version = 0;
  if (!r.get(version)) return bad("truncated before the version");
  if (version != kProtocolVersion)
    return Error(Errc::version_mismatch, "control protocol version " + std::to_string(version) +
                                             ", this side speaks version " + std::to_string(kProtocolVersion));
  Frame f;
  std::uint8_t type_len = 0;
  if (!r.get(type_len) || !r.bytes(type_len, f.type)) return bad("truncated type");
  std::uint16_t count = 0;
  if (!r.get(count)) return bad("truncated field count");
  if (count > limits.max_fields)
    return bad("field count " + std::to_string(count) + " above " + std::to_string(limits.max_fields));
  f.fields.reserve(count);
  for (std::uint16_t i = 0; i < count; ++i) {
    std::uint16_t klen = 0;
    std::uint32_t vlen = 0;
    std::string k, v;
    if (!r.get(klen) || !r.bytes(klen, k) || !r.get(vlen) || !r.bytes(vlen, v))
      return bad("field " + std::to_string(i) + " truncated");
    f.fields.emplace_back(std::move(k), std::move(v));
  }
  if (!r.done()) return bad("trailing bytes after the last field");
  return f;
}

Frame ok_reply() { return Frame("reply").add("status", "ok"); }

Frame error_reply(const Error& error) {
  return Frame("reply").add("status", std::string(to_string(error.code()))).add("error", std::string(error.message()));
}

Result<Frame> check_reply(Frame reply) {
  const auto status = reply.get("status");
  if (!status) return bad("reply without a status");
  if (*status == "ok") return reply;
  const Errc code = errc_from_string(*status).value_or(Errc::io);
  return Error(code, std::string(reply.get("error").value_or(*status)));
}

}  // namespace mq::control
