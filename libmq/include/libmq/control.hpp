// The control protocol between libmq clients (mq::Client, mqctl, the Node addon) and mqd, in one place: the frames
// on the wire, and one typed struct for every request and reply with its codec (libmq/src/control/messages.cpp
// holds the only table of field names). mqd decodes requests and encodes replies with it; every client encodes
// requests and decodes replies with it; nobody builds or parses fields by hand. daemon/PROTOCOL.md documents it and
// a test checks the document against the table.
//
//   frame   = u32 body_len (little-endian, 4 <= body_len <= the direction's max_frame) + body
//   body    = u16 version (kProtocolVersion) + u8 type_len + type + u16 field_count + field*
//   field   = u16 key_len + key + u32 value_len + value
//
// Decoding checks every length before use: a truncated, oversized or garbage frame, a missing field or a value of
// the wrong form is an error naming the problem (and the field), never a crash. Replies carry field "status" = "ok"
// or an error's text (errc_table()), and "error" = the message when not ok.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "libmq/error.hpp"
#include "libmq/options.hpp"
#include "libmq/record.hpp"
#include "libmq/topic.hpp"

namespace mq {

// What to create; an unset field takes the daemon's default.
struct CreateOptions {
  std::optional<std::size_t> capacity{};
  std::optional<std::size_t> max_message{};
  std::optional<Policy> policy{};
  std::optional<std::chrono::milliseconds> block_timeout{};
  std::optional<Storage> storage{};
  std::optional<std::uint32_t> mode{};
  std::optional<std::string> access_group{};  // the Unix group that may use the topic
  std::vector<std::string> groups{};          // consumer groups created with the topic
};

// A retry policy's fields on the wire (RetryPolicy); an unset one is the default (create-group), unchanged
// (set-retry), or not reported (an older mqd).
struct RetryFields {
  std::optional<std::uint32_t> max_attempts{};
  std::optional<std::chrono::milliseconds> backoff{};
  std::optional<double> factor{};
  std::optional<std::chrono::milliseconds> max_backoff{};
  std::optional<double> jitter{};
  static RetryFields of(const RetryPolicy& policy);
  RetryPolicy over(RetryPolicy base) const;  // `base` with the fields that are set
};

// A consumer group as mqd reports it.
struct GroupReport {
  std::string name;
  std::uint64_t committed = 0;  // everything before it is acked
  std::uint64_t next = 0;       // the next offset to hand out
  std::uint64_t lag = 0;        // records published and not yet acked
  std::uint64_t members = 0;
  std::uint64_t unacked = 0;                  // records handed out and not yet acked
  std::optional<std::uint64_t> retrying{};    // records nacked and waiting for their retry
  std::optional<std::uint64_t> parked{};      // records back in the group waiting for a member (GroupInfo::parked)
  RetryFields retry{};                        // its retry policy
  std::optional<Ordering> ordering{};         // how it shares its records (an older mqd omits it)
  std::optional<std::uint64_t> active_pid{};  // Ordering::exclusive only: the member that takes (0: none)
};

// A position a group waits at because of a claim the tail has passed (see StuckInfo).
struct StuckReport {
  std::string group;
  std::uint64_t offset = 0;
  std::uint64_t position = 0;
  StuckInfo::Cause cause = StuckInfo::Cause::orphaned;
  std::uint64_t pid = 0;    // 0 when orphaned
  std::uint64_t for_s = 0;  // how long mqd has seen it stuck
};

// A topic as mqd reports it (describe, stats): its settings, offsets, rates and groups.
struct TopicReport {
  std::string name;
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  Policy policy = Policy::block;
  Storage storage = Storage::shm;
  std::uint32_t mode = 0;          // permission bits of its segment
  std::string access_group{};      // the group owning its segment
  std::chrono::milliseconds block_timeout{0};
  std::uint64_t earliest = 0;
  std::uint64_t latest = 0;
  std::uint64_t bytes = 0;         // bytes written, padding included
  std::uint64_t producers = 0;
  std::uint64_t stalled_producers = 0;
  std::uint64_t msgs_per_s = 0;    // over mqd's last second
  std::uint64_t bytes_per_s = 0;
  std::uint64_t orphans_repaired = 0;
  std::optional<std::uint64_t> exclusive_pid{};  // TopicInfo::exclusive_pid, when there is one (an older mqd omits it)
  std::optional<bool> exclusive_plain{};         // TopicInfo::exclusive_plain, sent with exclusive_pid
  std::vector<StuckReport> stuck{};
  std::vector<GroupReport> groups{};
};

// mqd itself and every sound topic it knows that the caller may use.
struct DaemonStats {
  std::uint64_t topics = 0;  // every topic it knows, a corrupted one included
  std::uint64_t clients = 0;
  std::uint64_t uptime_s = 0;
  std::vector<TopicReport> sections{};
};

// What a repair did (mqctl repair).
struct RepairReport {
  struct Repaired {
    std::uint64_t offset = 0;   // the first offset skipped
    std::uint64_t records = 0;  // how many
    std::uint64_t position = 0;
  };
  struct Stuck {  // still stuck behind a live producer's claim
    std::string group;
    std::uint64_t offset = 0;
    StuckInfo::Cause cause = StuckInfo::Cause::stalled_producer;
    std::uint64_t pid = 0;
  };
  std::vector<Repaired> repaired{};
  std::vector<Stuck> stuck{};
};

// Where reset_offsets moves a group: the earliest or latest record, an offset, or the first record at or after a
// time (ns since the epoch; the end when none is that new).
struct TimePoint {
  std::uint64_t ns_since_epoch = 0;
  friend bool operator==(const TimePoint&, const TimePoint&) = default;
};
using ResetTarget = std::variant<Start, Offset, TimePoint>;

std::string_view to_string(StuckInfo::Cause) noexcept;  // "stalled_producer", "dead_producer", "orphaned"

namespace control {

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

// A frame as it travels: its type and named fields, in order.
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
};

// The frame with its 4-byte length prefix. Errc::invalid_argument if it would exceed `limits`.
Result<std::string> encode(const Frame& frame, const Limits& limits = kRequestLimits);
// Decodes a body (without the length prefix).
Result<Frame> decode(std::span<const std::byte> body, const Limits& limits = kRequestLimits);
// Reads the length prefix; Errc::invalid_argument when it is below 4 or above limits.max_frame.
Result<std::size_t> body_length(std::span<const std::byte, 4> prefix, const Limits& limits = kRequestLimits);

// Replies on the wire.
Frame ok_reply();
Frame error_reply(const Error& error);
// The reply as a Result: Error (with its Errc) when "status" is not ok.
Result<Frame> check_reply(Frame reply);

// The requests, each with its wire type and the type of its reply. `idempotent` (every request says, true or
// false): carrying it out twice has the effect of once, so a client may send it again when the connection broke
// before the reply came.
struct Done {};  // a reply with nothing but its status
struct Opened {  // where the topic's segment lies: the client maps it itself
  Storage storage = Storage::shm;
  std::string directory{};  // file storage: the data directory
  std::string ns{};         // the daemon's namespace
};
struct Welcome {
  std::uint64_t version = kProtocolVersion;
  std::string ns{};
};
struct TopicNames {
  std::vector<std::string> topics{};
};
struct GroupList {
  std::vector<GroupReport> groups{};
};
struct ResetDone {
  std::optional<std::uint64_t> offset{};  // with a time target: the offset it meant
};
struct RecordsDeleted {
  std::uint64_t earliest = 0;  // the topic's new start
};

struct Hello {  // first on every connection, and again after a reconnect
  static constexpr std::string_view type = "hello";
  static constexpr bool idempotent = true;
  using Reply = Welcome;
  std::uint64_t pid = 0;
  std::optional<std::string> client_id{};
  std::vector<std::string> topics{};  // open through this client: re-registered after a daemon restart
};
struct Create {
  static constexpr std::string_view type = "create";
  static constexpr bool idempotent = false;
  using Reply = Opened;
  std::string topic;
  CreateOptions options{};
};
struct Open {  // created with the daemon's defaults when its auto-create is on
  static constexpr std::string_view type = "open";
  static constexpr bool idempotent = true;
  using Reply = Opened;
  std::string topic;
};
struct Delete {
  static constexpr std::string_view type = "delete";
  static constexpr bool idempotent = false;
  using Reply = Done;
  std::string topic;
};
struct List {
  static constexpr std::string_view type = "list";
  static constexpr bool idempotent = true;
  using Reply = TopicNames;
};
struct Describe {
  static constexpr std::string_view type = "describe";
  static constexpr bool idempotent = true;
  using Reply = TopicReport;
  std::string topic;
};
struct Groups {
  static constexpr std::string_view type = "groups";
  static constexpr bool idempotent = true;
  using Reply = GroupList;
  std::string topic;
};
struct Stats {
  static constexpr std::string_view type = "stats";
  static constexpr bool idempotent = true;
  using Reply = DaemonStats;
};
struct CreateGroup {
  static constexpr std::string_view type = "create-group";
  static constexpr bool idempotent = false;
  using Reply = Done;
  std::string topic;
  std::string group;
  std::optional<Start> start{};        // default earliest
  RetryFields retry{};                 // default RetryPolicy{}
  std::optional<Ordering> ordering{};  // default Ordering::none

  // The request for a group with these settings that names only what differs from the defaults (start always):
  // an mqd older than a field refuses it as unknown, so a group with default retries and ordering can still be
  // created there.
  static CreateGroup of(std::string topic, std::string group, Start start, const RetryPolicy& retry = {},
                        Ordering ordering = Ordering::none);
};
struct SetRetry {  // changes a group's retry policy (Topic::set_retry_policy)
  static constexpr std::string_view type = "set-retry";
  static constexpr bool idempotent = true;
  using Reply = Done;
  std::string topic;
  std::string group;
  RetryFields retry{};  // unset fields stay as they are
};
struct DeleteGroup {
  static constexpr std::string_view type = "delete-group";
  static constexpr bool idempotent = false;
  using Reply = Done;
  std::string topic;
  std::string group;
};
struct ResetOffsets {
  static constexpr std::string_view type = "reset-offsets";
  static constexpr bool idempotent = false;
  using Reply = ResetDone;
  std::string topic;
  std::string group;
  ResetTarget to = Start::earliest;
};
struct DeleteRecords {  // Kafka's DeleteRecords
  static constexpr std::string_view type = "delete-records";
  static constexpr bool idempotent = false;
  using Reply = RecordsDeleted;
  std::string topic;
  std::uint64_t before = 0;  // the first offset to keep
};
struct Repair {  // the topic's orphaned positions, now
  static constexpr std::string_view type = "repair";
  static constexpr bool idempotent = false;
  using Reply = RepairReport;
  std::string topic;
};

struct CreateDeadLetter {  // the source topic's dead-letter topic, made with dead_letter_options if missing, opened
  static constexpr std::string_view type = "create-dead-letter";
  static constexpr bool idempotent = true;
  using Reply = Opened;
  std::string topic;  // the source
};

using Request = std::variant<Hello, Create, Open, Delete, List, Describe, Groups, Stats, CreateGroup, DeleteGroup,
                             ResetOffsets, DeleteRecords, Repair, SetRetry, CreateDeadLetter>;

// Requests and replies to frames and back. A decode error is Errc::invalid_argument naming the field and what it
// should be ("capacity='lots' is not a whole number"), or the unknown request type.
Frame to_frame(const Request& request);
Result<Request> request_from(const Frame& frame);
// Whether requests of this type are idempotent (false for an unknown type).
bool idempotent(std::string_view type);
template <class Reply>
Frame reply_frame(const Reply& reply);  // an ok reply with the reply's fields
template <class Reply>
Result<Reply> reply_from(const Frame& frame);  // REQUIRES: frame passed check_reply

// The table the codecs are made of, for the protocol document: each request type with the field names of its
// request and of its reply, in wire order ("name*": repeated; "name?": optional; a nested entry's fields follow
// its first).
struct MessageSpec {
  std::string_view type;
  std::vector<std::string> request;
  std::vector<std::string> reply;
};
std::vector<MessageSpec> protocol_table();

}  // namespace control
}  // namespace mq
