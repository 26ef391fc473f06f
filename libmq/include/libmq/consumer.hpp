// Consumer: one member of a consumer group. Every group sees every record; inside a group each record goes to one
// member (competing consumers). Delivery is at-least-once: what a member holds unacked when it dies goes to another.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "libmq/error.hpp"
#include "libmq/options.hpp"
#include "libmq/record.hpp"
#include "libmq/topic.hpp"

namespace mq {

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
  // Acks `message` and every record this member received before it. Errc::invalid_argument if this member does
  // not hold it (acked already, or another consumer's).
  Result<void> ack(Message&& message);
  // Acks everything this member holds.
  Result<void> ack_all();
  // Records this member holds unacked.
  std::size_t unacked() const noexcept;

  const Topic& topic() const noexcept;

 private:
  struct State;
  Consumer() = default;
  void release() noexcept;
  std::unique_ptr<State> state_;
};

}  // namespace mq
