// Topic: a handle on one named shared-memory ring (a "topic", as in Kafka, with one partition). Creating or opening
// one maps its segment; Producers and Consumers are built on a Topic. Embedded use needs no daemon.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libmq/error.hpp"
#include "libmq/options.hpp"

namespace mq {

namespace detail {
class Segment;
}

// Fixed table sizes of a topic segment (layout version 7). Exceeding one is Errc::limit.
inline constexpr std::size_t kMaxProducers = 64;        // Producer objects attached at once
inline constexpr std::size_t kMaxGroups = 16;           // consumer groups per topic
inline constexpr std::size_t kMaxMembers = 8;           // Consumer objects per group at once
inline constexpr std::size_t kMaxParked = 23;           // Ordering::key: records a group parks behind held keys
inline constexpr std::size_t kMaxUnacked = 32;          // runs one Consumer may hold unacked (a poll takes a run
                                                        // of 1 record, a poll_batch a run of up to kMaxBatch)
inline constexpr std::size_t kMaxBatch = 63;            // records in one run (poll_batch) or one batch publish
inline constexpr std::size_t kRetrySlots = 32;          // records of one group waiting for a retry (Consumer::nack)
inline constexpr std::size_t kMinCapacity = std::size_t{64} << 10;
inline constexpr std::size_t kMaxCapacity = std::size_t{1} << 40;
inline constexpr std::size_t kMaxMessageLimit = std::size_t{1} << 30;  // record lengths are 32-bit in the layout
// The longest block_timeout: a publisher's deadline is kept in nanoseconds (int64), about 292 years.
inline constexpr std::chrono::milliseconds kMaxBlockTimeout{INT64_MAX / 1'000'000};

struct GroupInfo {
  std::string name;
  Offset committed = 0;   // every record before this offset has been acked by the group
  Offset next = 0;        // the next offset the group will hand out
  std::uint64_t lag = 0;  // records published and not yet acked: latest - committed
  unsigned members = 0;   // attached consumers
  unsigned unacked = 0;   // records held by members or waiting for redelivery
  unsigned retrying = 0;  // records nacked and waiting for their retry (at most kRetrySlots)
  // Records back in the group waiting for a member: a dead or departed member's, and with Ordering::key those
  // parked behind a key another member holds (at most kMaxParked of these).
  unsigned parked = 0;
  RetryPolicy retry;      // the group's retry policy
  Ordering ordering = Ordering::none;
  int active_pid = 0;     // Ordering::exclusive: the process of the member that takes (0: none)
};

// A position where a group's readers wait although the tail has passed it: a claim that is not a record yet.
struct StuckInfo {
  enum class Cause {
    stalled_producer,  // its producer is alive (slow, or stopped): never robbed, only reported
    dead_producer,     // its producer is confirmed dead: the next recovery turns the claim into a skip record
    orphaned,          // no producer's claim covers it (lost by a crash of an older libmq, or a scribbled segment):
                       // repair_orphans() turns it into skip records; mqd does so on its own after --orphan-grace
  };
  std::string group;
  Offset offset = 0;           // the offset the group waits for
  std::uint64_t position = 0;  // its byte position in the log
  Cause cause = Cause::orphaned;
  int pid = 0;                 // the producer's pid (stalled, dead); 0 when orphaned
};

// What repair_orphans() did at one orphaned position.
struct OrphanRepair {
  Offset offset = 0;           // the first offset turned into a skip record
  std::uint64_t position = 0;  // where
  std::uint64_t records = 0;   // how many offsets the gap held (each now a skip record, never delivered)
  std::uint64_t bytes = 0;     // bytes of the log the gap took
};

struct TopicInfo {
  std::string name;
  std::size_t capacity = 0;
  std::size_t max_message = 0;
  Policy policy = Policy::block;
  Storage storage = Storage::shm;
  std::chrono::milliseconds block_timeout{0};
  std::uint32_t mode = 0;
  Offset earliest = 0;               // the oldest record still held
  Offset latest = 0;                 // the offset the next record will get
  std::uint64_t bytes_written = 0;   // bytes claimed in the ring since creation, padding included
  unsigned producers = 0;            // attached producers
  unsigned stalled_producers = 0;    // producers whose open claim blocks readers and whose owner is still alive
  // The topic's exclusive producer (ProducerOptions::exclusive): its process (0: there is none), and whether it
  // claims by plain stores (false: by CAS, where the CPU or the kernel lacks AVX or membarrier).
  int exclusive_pid = 0;
  bool exclusive_plain = false;
  std::vector<GroupInfo> groups;
  std::vector<StuckInfo> stuck;      // where groups wait on a claim the tail has passed (empty when all flows)
};

// A cheap, copyable handle; copies share one mapping, which lives as long as the last copy (and the last Producer,
// Consumer or Message made from it). Any thread may use a Topic; a fork child must open its own.
class Client;

class Topic {
 public:
  // Creates a topic segment; Errc::exists if there is one. `name`: 1..249 of [A-Za-z0-9._-], not "." or "..".
  static Result<Topic> create(std::string_view name, const TopicOptions& options = {});
  // Maps an existing topic, validating its header; Errc::not_found if there is none.
  static Result<Topic> open(std::string_view name, const OpenOptions& options = {});
  // Opens the topic, creating it with `options` if it does not exist (Kafka's auto-create).
  static Result<Topic> open_or_create(std::string_view name, const TopicOptions& options = {});
  // Removes the topic's name; processes that have it mapped keep using their mapping until they let go.
  static Result<void> remove(std::string_view name, const OpenOptions& options = {});
  // The names of the topics of a namespace (shm) or a directory (file).
  static Result<std::vector<std::string>> list(const OpenOptions& options = {});

  const std::string& name() const;
  TopicInfo info() const;
  // info().earliest alone, without building the rest of TopicInfo (no allocation): cheap enough per publish.
  Offset earliest() const;
  // The offset of the first record held whose timestamp (Message::timestamp_ns, ns since the epoch) is at or after
  // `timestamp_ns`: where a group resets to replay "since T" (reset_group). info().latest (the next offset) when
  // no record is that new; info().earliest when every record held is. A record still being written counts as
  // written now. Reads the records from the oldest on: time grows with the records held, not for the hot path.
  Result<Offset> offset_for_time(std::int64_t timestamp_ns) const;

  // Creates a consumer group that keeps records from `start` on, before any consumer joins it. Errc::exists if it
  // is there already.
  // `retry`: the group's retry policy (Consumer::nack); Errc::invalid_argument naming the field out of range.
  Result<void> create_group(std::string_view group, Start start = Start::earliest, const RetryPolicy& retry = {},
                            Ordering ordering = Ordering::none);
  // Changes a group's retry policy; records waiting for a retry keep the delay they got. Errc::not_found.
  Result<void> set_retry_policy(std::string_view group, const RetryPolicy& retry);
  // Removes a group at once; Errc::busy while it has live members.
  Result<void> delete_group(std::string_view group);
  // Moves a group (all its members) to `start`, or to `offset` (clamped to nothing: an offset outside
  // [earliest, latest] is Errc::invalid_argument).
  Result<void> reset_group(std::string_view group, Start start);
  Result<void> reset_group(std::string_view group, Offset offset);

  // Kafka's DeleteRecords: the records before offset `before` are no longer held. earliest() becomes `before` (a new
  // group starts there) and every group behind it moves up to it, as reset_group would (records its members hold
  // already stay theirs to ack). The bytes stay in the ring until producers reuse them. Returns the new earliest;
  // `before` at or below earliest() changes nothing, and `before` == info().latest deletes every record held.
  // Errc::invalid_argument when `before` is past the latest offset; Errc::busy when a record before it is still
  // being written (try again).
  Result<Offset> delete_records(Offset before);

  // Recovers what dead processes left behind: open claims become skip records, unacked records of dead members go
  // back to their group. Death must be confirmed (pid + start time gone, or a zombie). Returns how many claims and
  // members were recovered. Consumers and blocked producers call this on their slow paths; the daemon calls it too.
  std::size_t recover_dead();

  // Turns every orphaned position (TopicInfo::stuck, Cause::orphaned: readers wait there, the tail has passed it, and
  // no producer's claim covers it) into skip records up to the next record, so the topic flows again with only the
  // lost claims' offsets missing. Safe at any time: a position a live or dead producer still claims is left to that
  // claim. Recovers dead producers first. Errc::busy if the group table's lock is held by a live, stopped process.
  Result<std::vector<OrphanRepair>> repair_orphans();

  // msync for Storage::file (no-op for shm).
  Result<void> flush();

  // The file that holds the segment: /dev/shm/NAME for shm, its path in the data directory for file storage.
  std::string file() const;
  // Checks the segment again as open() did (its header and tables) and that its file still covers the mapping:
  // Errc::bad_segment naming the problem when another process scribbled over, truncated or removed it. Reads the
  // header only; safe while others use the topic.
  Result<void> validate() const;

  // The socket of the mqd this topic was opened through (Client::open/create), which creates its dead-letter topic;
  // empty when it was opened directly.
  const std::string& daemon_socket() const { return daemon_socket_; }

  // Internal: the mapping. Not part of the stable API.
  const std::shared_ptr<detail::Segment>& segment() const { return segment_; }

 private:
  friend class Client;
  explicit Topic(std::shared_ptr<detail::Segment> segment) : segment_(std::move(segment)) {}
  std::shared_ptr<detail::Segment> segment_;
  std::string daemon_socket_{};
};

// Checks a topic name against Kafka's rule; the error names the problem.
Result<void> validate_topic_name(std::string_view name);
// Checks a consumer group name: 1..255 printable ASCII characters.
Result<void> validate_group_name(std::string_view name);
// Checks a retry policy against the ranges RetryPolicy states; Errc::invalid_argument naming the field.
Result<void> validate_retry_policy(const RetryPolicy& retry);

}  // namespace mq
