// Options of topics, producers and consumers. Each field says its default and what it requires; a value out of
// range is rejected with Errc::invalid_argument naming the field, never clamped.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mq {

using Offset = std::uint64_t;

// What a full topic does to a publisher.
enum class Policy : std::uint32_t {
  block = 0,      // wait up to the block timeout for every consumer group to make room, then Errc::full
  overwrite = 1,  // never wait: overwrite the oldest records; a lapped reader gets Errc::lost with the exact count
};

// Where the topic's segment lives.
enum class Storage : std::uint32_t {
  shm = 0,   // POSIX shared memory (/dev/shm): gone at reboot
  file = 1,  // a memory-mapped file in TopicOptions::directory: survives a reboot (msync it with Topic::flush)
};

// Where a new consumer group starts reading.
enum class Start { earliest, latest };

// How a consumer waits for records.
enum class Wait {
  busy_spin,    // never leaves the CPU: lowest latency, burns a core
  spin_yield,   // spins, then sched_yield()s between checks
  spin_futex,   // spins ~20 us, then sleeps on a futex; producers wake it only when it sleeps (default)
  futex,        // sleeps at once: the least CPU, a wake-up on every record
};

struct TopicOptions {
  // Ring size in bytes. Default: 1 MiB. REQUIRES: a power of two, 64 KiB <= capacity <= 1 TiB.
  std::size_t capacity = std::size_t{1} << 20;
  // Largest key + headers + payload of one record. Default: 0 = min(capacity / 4, 1 GiB).
  // REQUIRES: <= capacity / 4 and <= 1 GiB.
  std::size_t max_message = 0;
  // Default: Policy::block.
  Policy policy = Policy::block;
  // How long a publish into a full block topic waits before Errc::full. Default: 10 s. REQUIRES: >= 0.
  std::chrono::milliseconds block_timeout{10'000};
  // Default: Storage::shm.
  Storage storage = Storage::shm;
  // For Storage::file: the folder that holds the topic's file. REQUIRES: non-empty for Storage::file.
  std::string directory{};
  // Permission bits of the segment. Default: 0660. REQUIRES: not world-writable, no bits beyond 0777.
  std::uint32_t mode = 0660;
  // The Unix group that owns the segment (with `mode`, who may use the topic). Setting a group the creator is not
  // in needs CAP_CHOWN. Default: empty = the creator's group.
  std::string access_group{};
  // Consumer groups created with the topic (starting at its earliest record), so their records are kept before
  // their consumers first start. Default: none.
  std::vector<std::string> groups{};
  // Namespace: a prefix of the segment's name so several installations or test runs never collide.
  // Default: unset = the MQ_NAMESPACE environment variable, or none. REQUIRES: the topic-name charset, <= 64 chars.
  std::optional<std::string> ns{};
};

// How to find an existing topic (storage and namespace must match the ones it was created with).
struct OpenOptions {
  Storage storage = Storage::shm;     // Default: Storage::shm.
  std::string directory{};              // For Storage::file. REQUIRES: non-empty for Storage::file.
  std::optional<std::string> ns{};      // Default: MQ_NAMESPACE, or none.
};

struct ProducerOptions {
  // Overrides the topic's block timeout for this producer. Default: unset = the topic's.
  std::optional<std::chrono::milliseconds> block_timeout{};
  // The topic's only producer for as long as it lives: it claims without a locked instruction (plain stores where
  // the CPU and kernel allow: AVX and membarrier(2); else the shared CAS), publishing faster. Making it fails with
  // Errc::busy while another producer is attached, and every other producer made while it lives fails with
  // Errc::busy naming its pid; a dead exclusive producer is recovered as any other. Default: false.
  bool exclusive = false;
};

// A consumer group's retries (Consumer::nack): a record nacked without a delay of its own waits
// backoff * factor^(failures - 1), at most max_backoff, shortened by a random fraction up to `jitter`; the nack of
// its max_attempts-th delivery publishes it to the dead-letter topic `<topic>.dlq` and acks it.
inline constexpr std::uint32_t kMaxAttempts = 63;
inline constexpr std::chrono::milliseconds kMaxBackoff{24 * 3600 * 1000};  // one day
struct RetryPolicy {
  // Deliveries of a record, the first included, before it is dead-lettered. Default: 5. REQUIRES: 1..kMaxAttempts.
  std::uint32_t max_attempts = 5;
  // The delay after the first failure. Default: 100 ms. REQUIRES: 0..max_backoff.
  std::chrono::milliseconds backoff{100};
  // Each further failure multiplies the delay by this. Default: 2. REQUIRES: 1..100.
  double factor = 2.0;
  // The longest delay. Default: 30 s. REQUIRES: backoff..kMaxBackoff.
  std::chrono::milliseconds max_backoff{30'000};
  // A delay is shortened by a random fraction of itself up to this (so retries of many records spread out).
  // Default: 0.1. REQUIRES: 0..1.
  double jitter = 0.1;
};

// How a consumer group shares its records among its members.
enum class Ordering : std::uint32_t {
  none = 0,       // competing consumers: whichever member polls takes the next record
  key = 1,        // records with the same key go to one member at a time, in offset order; other keys in parallel
  exclusive = 2,  // one member takes, in offset order; the others stand by and take over when it leaves or dies
};
// The ordering's name as mqctl, the control protocol and the Node addon spell it ("none", "key", "exclusive"), and
// back (nullopt for any other name).
std::string_view ordering_name(Ordering ordering);
std::optional<Ordering> parse_ordering(std::string_view name);

struct ConsumerOptions {
  // The consumer group. Records are shared among the members of a group; every group sees every record.
  // REQUIRES: 1..255 printable ASCII characters.
  std::string group{};
  // Where the group starts if it does not exist yet (an existing group continues from its committed position).
  // Default: Start::latest, as Kafka's auto.offset.reset.
  Start start = Start::latest;
  // Default: Wait::spin_futex.
  Wait wait = Wait::spin_futex;
  // Ack the previous record at the next poll, and the last one when the Consumer is destroyed. Default: true.
  bool auto_ack = true;
  // The group's retry policy when this consumer creates the group (an existing group keeps its own:
  // Topic::set_retry_policy changes it). Default: RetryPolicy's defaults.
  RetryPolicy retry{};
  // The group's ordering when this consumer creates the group (an existing group keeps its own). With
  // Ordering::exclusive, a record waiting for its retry holds back the records after it. Default: Ordering::none.
  Ordering ordering = Ordering::none;
};

}  // namespace mq
