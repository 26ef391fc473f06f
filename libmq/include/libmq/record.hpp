// Records as a producer hands them in (Record) and as a consumer gets them back (Message). A Message is a view into
// the topic's ring (block topics, zero-copy) or into its consumer's buffer (overwrite topics): see Message's contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "libmq/options.hpp"

namespace mq {

// One record header: a name and bytes. Repeated names are kept, in order.
struct Header {
  std::string_view name;
  std::span<const std::byte> value;
};

// What a producer publishes. `key` unset is a null key, which differs from an empty key.
struct Record {
  std::span<const std::byte> payload;
  std::optional<std::span<const std::byte>> key;
  std::span<const Header> headers;
  std::optional<std::int64_t> timestamp_ns;  // CLOCK_REALTIME ns. Default: the time of the publish (from the TSC,
                                             // within microseconds of the clock: design.md "Timestamps").
};

// The headers of a received record, decoded lazily. The encoding was validated when the record was polled, so
// iterating cannot fail.
class HeaderRange {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Header;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Header;
    iterator() = default;
    iterator(const std::byte* at, const std::byte* end) : at_(at), end_(end) {}
    Header operator*() const;
    iterator& operator++();
    iterator operator++(int) { auto copy = *this; ++*this; return copy; }
    bool operator==(const iterator& other) const { return at_ == other.at_; }

   private:
    const std::byte* at_ = nullptr;
    const std::byte* end_ = nullptr;
  };

  HeaderRange() = default;
  explicit HeaderRange(std::span<const std::byte> encoded) : encoded_(encoded) {}
  iterator begin() const { return {encoded_.data(), encoded_.data() + encoded_.size()}; }
  iterator end() const { return {encoded_.data() + encoded_.size(), encoded_.data() + encoded_.size()}; }
  bool empty() const { return encoded_.empty(); }

 private:
  std::span<const std::byte> encoded_;
};

class Consumer;

// A record a consumer polled. Move-only; hand it back with Consumer::ack.
// Lifetime: must not outlive its Consumer. In a block topic its spans point into the ring and stay valid until this
// record is acked (explicitly, or by auto-ack at the next poll). In an overwrite topic they point into the
// consumer's own copy and stay valid until the consumer's next poll.
class Message {
 public:
  Message() = default;
  Message(Message&&) noexcept = default;
  Message& operator=(Message&&) noexcept = default;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  Offset offset() const noexcept { return offset_; }
  std::span<const std::byte> payload() const noexcept { return payload_; }
  std::optional<std::span<const std::byte>> key() const noexcept { return key_; }
  HeaderRange headers() const noexcept { return HeaderRange(headers_); }
  std::int64_t timestamp_ns() const noexcept { return timestamp_ns_; }
  // True when this record was handed out before and not acked: to a member that died (or left) holding it, or
  // nacked for a retry (Consumer::nack).
  bool redelivered() const noexcept { return redelivered_; }
  // Which delivery of this record to its group this is: 1, then one more after each nack (Consumer::nack). A
  // record redelivered after a member's death counts from 1 again (the dead member's count is not kept).
  std::uint32_t attempt() const noexcept { return attempt_; }
  // CLOCK_REALTIME ns of the first nack of this record; 0 on its first attempt.
  std::int64_t first_failure_ns() const noexcept { return first_failure_ns_; }

 private:
  friend class Consumer;
  const void* owner_ = nullptr;  // the consumer state that handed it out: ack refuses anyone else's
  Offset offset_ = 0;
  std::uint64_t position_ = 0;
  std::uint64_t run_ = 0;    // which held run of the consumer it came in (a running count)
  std::uint64_t after_ = 0;  // the position after it
  std::uint64_t done_ = 0;   // records of its run up to and including it (skip records before it counted)
  std::span<const std::byte> payload_;
  std::optional<std::span<const std::byte>> key_;
  std::span<const std::byte> headers_;
  std::int64_t timestamp_ns_ = 0;
  std::int64_t first_failure_ns_ = 0;
  std::uint32_t attempt_ = 1;
  bool redelivered_ = false;
};

}  // namespace mq
