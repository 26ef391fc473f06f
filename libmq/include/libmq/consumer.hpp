// Consumer: one member of a consumer group. Every group sees every record; inside a group each record goes to one
// member (competing consumers). Delivery is at-least-once: what a member holds unacked when it dies goes to another.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "libmq/error.hpp"
#include "libmq/options.hpp"
#include "libmq/record.hpp"
#include "libmq/topic.hpp"

namespace mq {

// The dead-letter topic of a topic, its consumer group that keeps dead letters, and the headers a dead letter
// carries besides the record's own (values in decimal text but for topic, group and error).
inline constexpr std::string_view kDeadLetterSuffix = ".dlq";
inline constexpr std::string_view kDeadLetterGroup = "replay";
namespace dlq_header {
inline constexpr std::string_view topic = "mq.dlq.topic";        // the source topic
inline constexpr std::string_view offset = "mq.dlq.offset";      // the record's offset in it
inline constexpr std::string_view group = "mq.dlq.group";        // the group that gave up on it
inline constexpr std::string_view attempts = "mq.dlq.attempts";  // deliveries it had in that group
inline constexpr std::string_view first_failure = "mq.dlq.first_failure_ns";  // CLOCK_REALTIME ns of its first nack
inline constexpr std::string_view error = "mq.dlq.error";        // the text the last nack gave (its first 1 KiB)
}  // namespace dlq_header
inline constexpr std::size_t kMaxDeadLetterError = 1024;

// The options `source`'s dead-letter topic is created with: in the same place as the source (storage, namespace or
// data directory), with its access rights (mode and the group of its file) and block timeout, big enough for the
// source's largest record (the source's capacity up to 1 MiB, doubled until a quarter of it holds max_message and
// 4 KiB more), and with the kDeadLetterGroup group. mqd creates it with these when the source was opened through it
// (Client::create_dead_letter); the consuming process itself when the source was opened directly.
TopicOptions dead_letter_options(const Topic& source);

// One thread at a time. Joins the group (creating it at options.start if it does not exist) and takes one of its
// kMaxMembers slots until destroyed. On destruction, with auto_ack the last record it handed out is acked (the
// application is done with it, as Kafka commits on close); the records it still holds unacked go back to the group.
class Consumer {
 public:
  // Throws mq::Error (invalid group name, Errc::limit when the group or group table is full); see make().
  Consumer(Topic topic, ConsumerOptions options);
  static Result<Consumer> make(Topic topic, ConsumerOptions options);
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer();

  // The next record for this member, waiting up to `timeout` (0: do not wait). Errc::timed_out when nothing came;
  // Errc::lost (overwrite topics) with Error::lost() = how many records this group lost; Errc::limit when this
  // member holds kMaxUnacked records (ack some first); Errc::bad_segment on a corrupted record.
  // With auto_ack, the previous record is acked first.
  [[nodiscard]] Result<Message> poll(std::chrono::nanoseconds timeout);
  // Up to `max` records (1..kMaxBatch) taken with ONE CAS on the group's cursor and held as one run (one of the
  // kMaxUnacked entries, however many records it holds), waiting up to `timeout` for the first (0: do not wait).
  // `out` is cleared, then gets the records in log order (keep the vector: its capacity is reused, so a batch
  // allocates nothing once it has grown). Returns how many: 0 when nothing came within the timeout (not an error).
  // Errors as poll(). Acking a record acks it and every earlier one this member holds: ack(std::move(out.back()))
  // acks the batch. With auto_ack, what the previous poll or poll_batch handed out is acked first.
  [[nodiscard]] Result<std::size_t> poll_batch(std::vector<Message>& out, std::size_t max,
                                               std::chrono::nanoseconds timeout);
  // Waits up to `timeout` until a poll would likely find something (a record at the group's cursor, a record to
  // redeliver, a dead peer's claim to recover), without taking it: true then, false on timeout. Sleeps on the
  // topic's futex like poll's wait (spinning first as options.wait says). REQUIRES: no poll or ack runs on this
  // Consumer meanwhile; this is the one call that may come from another thread than the polling one (the Node addon
  // parks its event loop's consumer with it). interrupt_wait() from any thread makes it return at once.
  bool wait_ready(std::chrono::nanoseconds timeout);
  // Wakes a wait_ready (and, harmlessly, every sleeper on this topic for one look). Any thread.
  void interrupt_wait() noexcept;

  // For an event loop that sleeps on the topic's futex word by other means (an io_uring FUTEX_WAIT, say) instead of
  // in poll: prepare_wait() registers this member as a sleeper, so that producers wake the word, and looks once
  // more: nullopt when a poll would find something now (not registered then), else the word to sleep on while it
  // holds `value` (a u32 in shared memory: wait on it without FUTEX_PRIVATE_FLAG). done_waiting() unregisters;
  // maintain(), about every 100 ms while waiting, runs the slow path a waiting poll runs (dead peers' claims and
  // records). Same thread rules as poll.
  struct WaitWord {
    const std::uint32_t* word;
    std::uint32_t value;
  };
  std::optional<WaitWord> prepare_wait();
  void done_waiting() noexcept;
  void maintain();
  // Acks `message` and every record this member received before it. Errc::invalid_argument if this member does
  // not hold it (acked already, or another consumer's).
  Result<void> ack(Message&& message);
  // Acks everything this member holds.
  Result<void> ack_all();
  // Hands `message` back to the group for a later attempt, acking every record this member received before it (as
  // ack does). It waits in the group's retry table (kRetrySlots records at most), invisible until `delay` has
  // passed (default: the group's RetryPolicy backoff for its attempt), then goes to whichever member polls first,
  // before new records; other records flow meanwhile. The group's committed offset stays below it while it waits.
  // While kRetrySlots records wait, the group's members take no new records, only retries as they come due. A nack
  // that finds every entry taken swaps with a waiting record that is due: this member then holds that record (its
  // next poll hands it out) and the nacked one takes its entry. Only when none is due yet (or this member holds
  // kMaxUnacked runs, or is still handing out a batch) is it Errc::limit, the record staying held: try again once
  // the earliest retry is due.
  // When it was the group's max_attempts-th delivery of the record, the record is dead-lettered instead: published
  // to `<topic>.dlq` (created beside the topic, with its size and mode, if missing, with a consumer group "replay"
  // that keeps dead letters until replayed) with the dlq_header headers (`error` among them), then acked. Block
  // topics only. Errors: Errc::invalid_argument (not held by this member, an overwrite topic), Errc::limit (as
  // above: the record stays held, unchanged), a dead-letter publish's error (full, ...; the record stays held).
  enum class Nacked { retry, dead_lettered };
  Result<Nacked> nack(Message&& message, std::string_view error = {});
  Result<Nacked> nack(Message&& message, std::chrono::milliseconds delay, std::string_view error = {});
  // The batch form: nacks each of `messages` (a poll_batch's, say) in the order this member received them, each as
  // nack(message, delay, error); unset `delay`: each record's backoff. Errc::invalid_argument, before any is
  // nacked, if one is not held. Otherwise stops at the first error (those received before it are nacked, the rest
  // stay held). Returns how many were dead-lettered.
  Result<std::size_t> nack(std::span<Message> messages, std::optional<std::chrono::milliseconds> delay = std::nullopt,
                           std::string_view error = {});
  // Dead-letters `message` now, whatever its attempt and the group's retry policy: for a record no retry can help
  // (one its consumer can never pass on, such as one too large for where it goes). Published to `<topic>.dlq` as
  // nack's last attempt publishes it, with `error` in its mq.dlq.error header, then acked, and like ack it acks
  // every record this member received before it. Block topics only. Errors: Errc::invalid_argument (not held by
  // this member, an overwrite topic), the dead-letter publish's error (full, ...; the record stays held).
  Result<void> dead_letter(Message&& message, std::string_view error);
  // Runs (one per poll, one per poll_batch) this member holds unacked; at kMaxUnacked a poll is Errc::limit.
  std::size_t unacked() const noexcept;

  const Topic& topic() const noexcept;

 private:
  struct State;
  Consumer() = default;
  void release() noexcept;
  std::unique_ptr<State> state_;
};

}  // namespace mq
