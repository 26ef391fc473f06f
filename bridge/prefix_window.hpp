// PrefixWindow: the outbound route's in-flight records, in the order libmq handed them out, each with a sequence
// number that travels with its Kafka produce and comes back in the delivery report. Reports arrive in any order;
// the checkpoint is the longest prefix of the window whose reports all succeeded (a contiguous prefix, never the
// latest report): only that prefix may be acked in libmq, whose acks are cumulative.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace bridge {

// One thread at a time (the route's: librdkafka serves delivery reports from rd_kafka_poll in the caller's thread).
template <class T>
class PrefixWindow {
 public:
  // Appends `value`, not done yet (or done already: a record that needs no report, such as a dropped echo).
  // Returns its sequence number: 0, 1, 2, ... over the window's life, never reused, not even after clear().
  std::uint64_t push(T value, bool done = false) {
    slots_.push_back({std::move(value), done});
    return base_ + slots_.size() - 1;
  }
  // The entry of `seq`, or null when it has left the window (popped, cleared: a late report to ignore).
  T* find(std::uint64_t seq) {
    if (seq < base_ || seq - base_ >= slots_.size()) return nullptr;
    return &slots_[seq - base_].value;
  }
  // Marks `seq` done; false when it has left the window.
  bool mark_done(std::uint64_t seq) {
    if (seq < base_ || seq - base_ >= slots_.size()) return false;
    slots_[seq - base_].done = true;
    return true;
  }
  // Removes the done prefix and returns its last entry (the one to ack: acking it acks every earlier one), nullopt
  // when the first entry is not done.
  std::optional<T> pop_done_prefix() {
    std::optional<T> last;
    while (!slots_.empty() && slots_.front().done) {
      last = std::move(slots_.front().value);
      slots_.pop_front();
      ++base_;
    }
    return last;
  }
  // Removes the first entry, done or not (one the caller has dealt with another way). REQUIRES: !empty().
  void pop_front() {
    slots_.pop_front();
    ++base_;
  }
  // Drops every entry; their sequence numbers are never found again.
  void clear() {
    base_ += slots_.size();
    slots_.clear();
  }
  std::size_t size() const noexcept { return slots_.size(); }
  bool empty() const noexcept { return slots_.empty(); }
  // Sequence number of the first entry (of the next one pushed when empty), and of the next one pushed.
  std::uint64_t first_seq() const noexcept { return base_; }
  std::uint64_t end_seq() const noexcept { return base_ + slots_.size(); }

 private:
  struct Slot {
    T value;
    bool done;
  };
  std::deque<Slot> slots_;
  std::uint64_t base_ = 0;
};

}  // namespace bridge
