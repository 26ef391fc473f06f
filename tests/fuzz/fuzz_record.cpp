// fuzz_record: libFuzzer target for mq::detail::inspect_record, the check every reader runs on a record header in
// the ring before trusting a byte of it, and for mq::HeaderRange, which later walks the headers it let through.
//
// Input: u64 position, u8 mode, u32 max_message (0: capacity / 4, as a default topic), [u64 seq when mode & 8], then
// bytes copied into the ring at the position's index (the record under test; up to the ring's end).
// Without mode & 8 the seq word is position | (mode & 7), so the fuzzer reaches every state at once.
// The 64 KiB ring is an exact-size heap block, so ASan reports any read outside it. For a committed record every
// header and every key and payload byte is touched, and each span must lie inside the record inspect_record sized.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.hpp"
#include "layout.hpp"
#include "libmq/record.hpp"
#include "log.hpp"

namespace mqfuzz {

namespace {

using namespace mq::detail;

constexpr std::size_t kCapacity = std::size_t{64} << 10;
constexpr std::uint8_t kRawSeq = 8;

std::atomic<std::uint64_t> g_sink{0};  // keeps the touching reads from being optimised away

std::uint64_t touch(std::span<const std::byte> bytes) {
  std::uint64_t sum = 0;
  for (const std::byte b : bytes) sum = sum * 31 + static_cast<std::uint8_t>(b);
  return sum;
}

bool inside(const std::byte* p, std::size_t n, const std::byte* begin, const std::byte* end) {
  return p >= begin && p <= end && n <= static_cast<std::size_t>(end - p);
}

// inspect_record said "committed": walk the record as a consumer's Message would, checking every span.
void walk_committed(const std::byte* ring, std::uint64_t position, const RecordView& v, std::uint64_t max_message) {
  const std::uint64_t index = position & (kCapacity - 1);
  check(v.length >= kRecordHeaderBytes && v.length % 8 == 0 && v.length <= kCapacity - index,
        "committed record does not fit the ring");
  const std::uint64_t key = v.key_len == kNullKey ? 0 : v.key_len;
  check(key + v.headers_len + std::uint64_t{v.payload_len} <= max_message, "committed record exceeds max_message");
  check(record_bytes(key, v.headers_len, v.payload_len) == v.length, "committed record's parts do not add up");
  const std::byte* base = ring + index;
  const std::byte* end = base + v.length;
  std::uint64_t sum = touch(std::span<const std::byte>(base + kRecordHeaderBytes, key));

  const std::byte* headers = base + kRecordHeaderBytes + key;
  const std::byte* headers_end = headers + v.headers_len;
  std::uint64_t count = 0;
  for (const mq::Header h : mq::HeaderRange(std::span<const std::byte>(headers, v.headers_len))) {
    check(++count <= v.headers_len / 8, "more headers than the encoding can hold");
    const auto* name = reinterpret_cast<const std::byte*>(h.name.data());
    check(inside(name, h.name.size(), headers, headers_end), "header name outside the headers");
    check(inside(h.value.data(), h.value.size(), headers, headers_end), "header value outside the headers");
    sum += touch(std::span<const std::byte>(name, h.name.size())) + touch(h.value);
  }
  const std::byte* payload = base + payload_start(key, v.headers_len);
  check(inside(payload, v.payload_len, base, end), "payload outside the record");
  sum += touch(std::span<const std::byte>(payload, v.payload_len));
  g_sink.fetch_add(sum, std::memory_order_relaxed);  // relaxed: a sink, nobody reads it
}

void check_view(std::uint64_t position, std::uint64_t seq, const RecordView& v) {
  const std::uint64_t index = position & (kCapacity - 1);
  const std::uint64_t at = seq & ~kStateMask;
  check(position % 8 == 0, "accepted an unaligned position");
  switch (v.state) {
    case kEmpty:
      check(at < position || (at == position && (seq & kStateMask) == kEmpty), "kEmpty for a written position");
      return;
    case kNone:
      check(at > position, "kNone (lapped) for a position not lapped");
      return;
    case kPad:
      check(at == position && index != 0 && v.length == kCapacity - index, "pad does not run to the ring's end");
      return;
    case kClaimed:
    case kSkip:
    case kCommitted:
      check(at == position && (seq & kStateMask) == v.state, "state differs from the seq word");
      check(v.length >= kRecordHeaderBytes && v.length % 8 == 0 && v.length <= kCapacity - index,
            "record length does not fit the ring");
      return;
    default:
      fail("inspect_record returned an unknown state");
  }
}

struct RecordSeed {
  std::uint64_t position;
  std::uint8_t mode;
  std::uint32_t max_message = 0;
  std::uint64_t seq = 0;  // with kRawSeq
  std::uint64_t offset = 7;
  std::uint32_t length = 0;  // 0: computed from the parts
  std::optional<std::string> key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::uint32_t payload = 0;
  std::uint32_t headers_len_override = 0;
};

std::vector<std::uint8_t> encode(const RecordSeed& s) {
  Writer w;
  w.u64(s.position).u8(s.mode).u32(s.max_message);
  if ((s.mode & kRawSeq) != 0) w.u64(s.seq);
  std::uint64_t headers_len = 0;
  for (const auto& [n, v] : s.headers) headers_len += 8 + n.size() + v.size();
  if (s.headers_len_override != 0) headers_len = s.headers_len_override;
  const std::uint64_t key = s.key ? s.key->size() : 0;
  const std::uint64_t length = s.length != 0 ? s.length : record_bytes(key, headers_len, s.payload);
  w.u64((s.position & ~kStateMask) | (s.mode & kStateMask)).u64(s.offset).u64(1'700'000'000'000'000'000);
  w.u32(length).u32(s.payload).u32(s.key ? static_cast<std::uint32_t>(key) : kNullKey).u32(headers_len);
  if (s.key) w.raw(s.key->data(), key);
  for (const auto& [n, v] : s.headers) w.u32(n.size()).u32(v.size()).raw(n.data(), n.size()).raw(v.data(), v.size());
  const std::uint64_t written = kRecordHeaderBytes + key + headers_len;
  if (length > written) w.zeros(length - written);
  return w.done();
}

}  // namespace

std::vector<std::vector<std::uint8_t>> seeds() {
  const std::uint64_t lap = 3 * kCapacity;
  std::vector<RecordSeed> s;
  s.push_back({.position = lap + 128, .mode = kCommitted, .key = "k", .headers = {{"a", "xy"}, {"name", ""}},
               .payload = 100});
  s.push_back({.position = lap + 256, .mode = kCommitted, .payload = 64});  // null key, no headers
  s.push_back({.position = lap + kCapacity - 40, .mode = kCommitted});      // empty record at the ring's end
  s.push_back({.position = lap + kCapacity - 64, .mode = kPad});
  s.push_back({.position = lap + 512, .mode = kSkip, .length = 48});
  s.push_back({.position = lap + 512, .mode = kClaimed, .length = 4096});
  s.push_back({.position = lap + 1024, .mode = kRawSeq | kCommitted, .seq = lap + kCapacity + 1024 + kCommitted,
               .payload = 8});                                              // lapped
  s.push_back({.position = lap + 64, .mode = kCommitted, .key = "", .headers = {{"h", "v"}}, .payload = 3,
               .headers_len_override = 6});                                 // a truncated header entry
  s.push_back({.position = lap + 2048, .mode = kCommitted, .max_message = 16, .payload = 32});  // over max_message
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& seed : s) out.push_back(encode(seed));
  return out;
}

}  // namespace mqfuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mq::detail;
  using namespace mqfuzz;
  Input in(data, size);
  const std::uint64_t position = in.u64();
  const std::uint8_t mode = in.u8();
  const std::uint32_t max_message_in = in.u32();
  const std::uint64_t max_message = max_message_in == 0 ? kCapacity / 4 : max_message_in;
  const std::uint64_t seq = (mode & kRawSeq) != 0 ? in.u64() : (position & ~kStateMask) | (mode & kStateMask);

  // Exactly kCapacity bytes, 64-byte aligned like the ring in a segment; the record's bytes go at its index.
  const Buffer ring(kCapacity, kCacheLine);
  const std::uint64_t index = position & (kCapacity - 1);
  const auto body = in.bytes(kCapacity - index);
  if (!body.empty()) std::memcpy(ring.data() + index, body.data(), body.size());

  const auto v = inspect_record(ring.bytes(), position, seq, max_message);
  if (!v) {
    check(v.error().code() == mq::Errc::bad_segment, "inspect_record returned an unexpected error code");
    const std::string where = "position " + std::to_string(position);
    check(std::string(v.error().message()).find(where) != std::string::npos, "error does not name the position");
    return 0;
  }
  check_view(position, seq, *v);
  if (v->state == kCommitted) walk_committed(ring.data(), position, *v, max_message);
  return 0;
}
