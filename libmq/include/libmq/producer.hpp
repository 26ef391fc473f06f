// Producer and Claim: the publishing side. publish() copies once into the ring; claim() hands out the ring bytes
// themselves (zero-copy) to fill and commit. Offsets are assigned at claim: 0, 1, 2, ... in log order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "libmq/error.hpp"
#include "libmq/options.hpp"
#include "libmq/record.hpp"
#include "libmq/topic.hpp"

namespace mq {

namespace detail {
struct ProducerSlot;
struct ProducerState;
struct TestAccess;  // test builds only (libmq/src/test_point.hpp)
}
class Producer;

// An open claim: a writable span in the ring, reserved for one record with a fixed offset. Move-only.
// commit() publishes it; abort() or destruction without commit turns it into a skip record (the offset stays taken
// and is never delivered). Readers of the topic stop at an open claim, so commit promptly.
// Lifetime: must not outlive its Producer (moving the Producer is fine).
class Claim {
 public:
  Claim(Claim&& other) noexcept;
  Claim& operator=(Claim&& other) noexcept;
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim();

  std::span<std::byte> bytes() const noexcept { return bytes_; }
  Offset offset() const noexcept { return offset_; }

  // Errc::revoked if the claim was recovered as a dead producer's before the commit.
  [[nodiscard]] Result<Offset> commit() &&;
  void abort() &&;

 private:
  friend class Producer;
  Claim(detail::ProducerState* producer, std::uint64_t position, Offset offset, std::span<std::byte> bytes)
      : producer_(producer), position_(position), offset_(offset), bytes_(bytes) {}
  detail::ProducerState* producer_ = nullptr;  // null once committed or aborted
  std::uint64_t position_ = 0;
  Offset offset_ = 0;
  std::span<std::byte> bytes_;
};

// A batch claim: writable spans in the ring for several records with consecutive offsets, reserved with one CAS.
// Move-only. commit() publishes them all, in order; abort() or destruction without commit turns them all into skip
// records. Like Claim: readers stop at it until it is committed, and it must not outlive its Producer.
class BatchClaim {
 public:
  BatchClaim(BatchClaim&& other) noexcept;
  BatchClaim& operator=(BatchClaim&& other) noexcept;
  BatchClaim(const BatchClaim&) = delete;
  BatchClaim& operator=(const BatchClaim&) = delete;
  ~BatchClaim();

  std::size_t size() const noexcept { return count_; }
  // Record i's payload bytes. REQUIRES: i < size().
  std::span<std::byte> bytes(std::size_t i) const noexcept;
  // The first record's offset; record i gets offset() + i.
  Offset offset() const noexcept { return offset_; }

  // The first offset. Errc::revoked if the batch was recovered as a dead producer's before the commit.
  [[nodiscard]] Result<Offset> commit() &&;
  void abort() &&;

 private:
  friend class Producer;
  BatchClaim(detail::ProducerState* producer, Offset offset, std::size_t count)
      : producer_(producer), offset_(offset), count_(count) {}
  detail::ProducerState* producer_ = nullptr;  // null once committed or aborted
  Offset offset_ = 0;
  std::size_t count_ = 0;
};

// Records in one publish_batch or claim_batch.
inline constexpr std::size_t kMaxPublishBatch = 1024;

// Publishes to one topic. One thread at a time (use one Producer per thread); any number of Producers in any number
// of processes may publish to one topic at once, and the order of each Producer's records is kept; or one exclusive
// Producer alone (ProducerOptions::exclusive), whose claims take no locked instruction.
// At most one open Claim per Producer. A Producer takes one of the topic's kMaxProducers slots until destroyed.
class Producer {
 public:
  // Throws mq::Error when the topic has no free producer slot (Errc::limit), or an exclusive producer stands in the
  // way (Errc::busy: ProducerOptions::exclusive); see make() for the Result form.
  explicit Producer(Topic topic, ProducerOptions options = {});
  static Result<Producer> make(Topic topic, ProducerOptions options = {});
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  ~Producer();

  // Copies `payload` into the ring as one record with a null key and no headers. Returns its offset.
  // Errc::full (block topic, no room before the timeout), Errc::too_large, Errc::wrong_process.
  [[nodiscard]] Result<Offset> publish(std::span<const std::byte> payload);
  [[nodiscard]] Result<Offset> publish(const Record& record);
  // Reserves `payload_bytes` in the ring (8-byte aligned, contiguous). Errors as publish, plus Errc::busy when a
  // claim of this producer is still open.
  [[nodiscard]] Result<Claim> claim(std::size_t payload_bytes);
  // Publishes `records` (1..kMaxPublishBatch) with ONE claim: consecutive offsets, the first returned, laid end to
  // end in the ring (a pad in front if they would cross its end). All or nothing: Errc::full (block topic, no room
  // for all of them before the timeout) or Errc::too_large (a record over the max message size, or a batch over
  // half the capacity) write nothing.
  [[nodiscard]] Result<Offset> publish_batch(std::span<const Record> records);
  [[nodiscard]] Result<Offset> publish_batch(std::span<const std::span<const std::byte>> payloads);
  // Reserves one record per entry of `payload_bytes` (1..kMaxPublishBatch) with one claim; errors as publish_batch.
  [[nodiscard]] Result<BatchClaim> claim_batch(std::span<const std::size_t> payload_bytes);

  const Topic& topic() const noexcept;

 private:
  friend struct detail::TestAccess;
  Producer(Topic topic, ProducerOptions options, detail::ProducerSlot* slot);
  static Result<Producer> make_exclusive(Topic topic, ProducerOptions options);
  void release() noexcept;
  // copy_from: publish() hands the payload to copy in (the header is then written last); claim() passes null.
  Result<Claim> claim_record(const Record& shape, std::size_t payload_bytes, const std::byte* copy_from);
  // The batch paths: n records, record i shaped by shape(i) -> {Record, payload bytes, copy source or null}.
  template <class Shape>
  Result<Offset> claim_records(std::size_t n, Shape&& shape, bool commit);
  std::unique_ptr<detail::ProducerState> state_;
};

}  // namespace mq
