// The record log on top of the ring: reading and checking one record header, writing one, and the boundary index
// that finds the oldest record still held. Everything read from the ring is bounds-checked here before use.
#pragma once

#include <cstdint>
#include <span>

#include "clock.hpp"
#include "layout.hpp"
#include "libmq/error.hpp"
#include "libmq/record.hpp"
#include "segment.hpp"

namespace mq::detail {

// What a reader found at a position.
struct RecordView {
  std::uint64_t state = kEmpty;  // kEmpty (not yet written), kClaimed, kCommitted, kSkip, kPad, or kNone = lapped
  std::uint64_t length = 0;      // bytes to step over (pad: to the ring's end)
  Offset offset = 0;
  std::int64_t timestamp_ns = 0;
  std::uint32_t payload_len = 0;
  std::uint32_t key_len = 0;  // kNullKey = no key
  std::uint32_t headers_len = 0;
};

// An unaligned little-endian u32 (headers encoding).
std::uint32_t read_u32(const std::byte* p);

// Checks the header at `position` in `ring` (capacity = ring.size(), a power of two) after its seq word `seq`
// was loaded (acquire). States other than committed/skip/claimed/pad are returned without reading further; for the
// rest every length is checked against the ring and `max_message` (and the headers encoding is walked).
// Errc::bad_segment names the field that is off.
Result<RecordView> inspect_record(std::span<const std::byte> ring, std::uint64_t position, std::uint64_t seq,
                                  std::uint64_t max_message);

// Loads the seq of the record at `position` (acquire) and inspects it. State kEmpty when the position has not
// been written in this lap; kNone when a later lap has overwritten it. `seq`, when given, receives the word inspected.
Result<RecordView> read_record(const Segment& seg, std::uint64_t position, std::uint64_t* seq = nullptr);

// The reader touches the rest of the record at `base` (ring index `index`, `length` bytes) next: start fetching its
// lines (the producer's core has them) so the transfers overlap the reader's checks. Up to 4 lines: a hint, not a copy.
inline void prefetch_record(const std::byte* base, std::uint64_t index, std::uint64_t length) {
  for (std::uint64_t line = kCacheLine - (index & (kCacheLine - 1)); line < length && line < 256; line += kCacheLine)
    __builtin_prefetch(base + line, 0, 3);
}

// The header fields of read_plain, read without TSan's instrumentation for the reason inspect_record gives.
__attribute__((no_sanitize("thread"))) inline bool plain_fields(const RecordHeader& h, Offset offset,
                                                                std::uint64_t room, std::uint64_t max_message,
                                                                RecordView& v) {
  if (h.key_len != kNullKey || h.headers_len != 0 || h.offset != offset) return false;
  v.length = h.length;
  v.payload_len = h.payload_len;
  v.timestamp_ns = h.timestamp_ns;
  return v.payload_len <= max_message && record_bytes(0, 0, v.payload_len) == v.length && v.length <= room;
}

// A consumer's common case, inline: true, with `v` filled as read_record would, when the record at `at` =
// {position, offset} is committed, at that offset, without key or headers, and its lengths pass every check
// inspect_record makes. False for anything else (another state, a key, headers, a corruption): the caller then reads
// it with read_record, which says what.
inline bool read_plain(const Segment& seg, Word16 at, RecordView& v) {
  const std::uint64_t index = at.lo & seg.mask();
  if ((at.lo & 7) != 0 || seg.capacity() - index < kRecordHeaderBytes) return false;
  const RecordHeader& h = seg.record_at(at.lo);
  if (h.seq.load(std::memory_order_acquire) != (at.lo | kCommitted)) return false;  // pairs with the publish
  if (!plain_fields(h, at.hi, seg.capacity() - index, seg.max_message(), v)) return false;
  v.state = kCommitted;
  v.offset = at.hi;
  v.key_len = kNullKey;
  v.headers_len = 0;
  prefetch_record(reinterpret_cast<const std::byte*>(&h), index, v.length);
  return true;
}

// Bytes a record takes, or 0 when key + headers + payload exceed the topic's max message size. Inline for a record
// without key or headers (a batch of payloads); encoded_parts_size for the rest.
std::uint64_t encoded_parts_size(const Record& shape, std::size_t payload_bytes, std::uint64_t max_message,
                                 std::uint64_t* headers_len);
inline std::uint64_t encoded_size(const Record& shape, std::size_t payload_bytes, std::uint64_t max_message,
                                  std::uint64_t* headers_len) {
  if (shape.key || !shape.headers.empty()) return encoded_parts_size(shape, payload_bytes, max_message, headers_len);
  *headers_len = 0;
  return payload_bytes > max_message ? 0 : record_bytes(0, 0, payload_bytes);
}

// Where the payload of a record at `position` with these key and headers lengths goes.
inline std::byte* payload_at(const Segment& seg, std::uint64_t position, std::uint64_t key_len,
                             std::uint64_t headers_len) {
  return seg.ring() + (position & seg.mask()) + payload_start(key_len, headers_len);
}

// The header fields of a claimed record without key, headers or a timestamp of its own (publish of a payload, a
// claim); not its seq word (the caller publishes).
inline void write_plain_header(const Segment& seg, std::uint64_t position, std::uint64_t length, Offset offset,
                               std::size_t payload_bytes, std::int64_t now_ns) {
  auto& h = seg.record_at(position);
  h.offset = offset;
  h.timestamp_ns = now_ns;
  h.length = static_cast<std::uint32_t>(length);
  h.payload_len = static_cast<std::uint32_t>(payload_bytes);
  h.key_len = kNullKey;
  h.headers_len = 0;
}

// Writes the header fields, key and headers of a claimed record; not its seq word (the caller publishes).
// `now_ns`: the timestamp when the record has none (0: read the clock here; a batch reads it once for all).
// Inline for a plain record; write_parts_header for one with a key, headers or a timestamp of its own.
void write_parts_header(const Segment& seg, std::uint64_t position, std::uint64_t length, Offset offset,
                        const Record& shape, std::size_t payload_bytes, std::uint64_t headers_len,
                        std::int64_t now_ns);
inline void write_header(const Segment& seg, std::uint64_t position, std::uint64_t length, Offset offset,
                         const Record& shape, std::size_t payload_bytes, std::uint64_t headers_len,
                         std::int64_t now_ns = 0) {
  if (shape.key || headers_len != 0 || shape.timestamp_ns)
    return write_parts_header(seg, position, length, offset, shape, payload_bytes, headers_len, now_ns);
  write_plain_header(seg, position, length, offset, payload_bytes, now_ns != 0 ? now_ns : record_time_ns());
}

// After a record was published (its seq word stored): wakes the consumers sleeping on the topic's futex, if any
// (their bits in `sleepers`); nothing but two loads when none sleeps.
void wake_sleeping_consumers(const Segment& seg);
inline void wake_consumers(const Segment& seg) {
  auto& h = seg.header();
  // seq_cst: pairs with a sleeping consumer's bit in `sleepers` + fence before its last look (Dekker).
  if ((h.sleepers[0].load(std::memory_order_seq_cst) | h.sleepers[1].load(std::memory_order_seq_cst)) != 0)
    wake_sleeping_consumers(seg);
}

// After room may have appeared in a block topic: wakes the producers waiting for it, if any (their bits in
// `room_waiters`), when `low` (a member's new low after an ack) reached the position they want; kNone (a member
// about to sleep, a group-table change) wakes them whatever they want. One load of a line that stays shared when
// none waits.
void wake_producers(const Segment& seg, std::uint64_t low = kNone);

// Records in the boundary index the record starts that a claim [start, end) created (pad_end: where the record
// itself starts when the claim begins with a pad; == start otherwise).
void note_chunk_starts(const Segment& seg, std::uint64_t start, std::uint64_t pad_end, std::uint64_t end) noexcept;
inline void note_boundaries(const Segment& seg, std::uint64_t start, std::uint64_t pad_end,
                            std::uint64_t end) noexcept {
  // Chunk starts in [start, end) only: a chunk start equal to `end` belongs to the next claim. (Noting it here
  // would overwrite, one lap early, the slot of the chunk 64 back, which earliest() needs right now.)
  const std::uint64_t chunk_mask = (seg.capacity() / kIndexSlots) - 1;  // chunk = capacity / 64
  if (((start + chunk_mask) & ~chunk_mask) >= end) return;  // the common case: no chunk start inside this claim
  note_chunk_starts(seg, start, pad_end, end);
}

// The oldest record still held: {position, offset}. Never earlier than tail - capacity; within one index chunk
// (capacity / 64 bytes) of the true oldest; never before the log start delete_records set.
Word16 earliest(const Segment& seg);

// Moves the log's start (SegmentHeader::log_start) up to `start`, a record's {position, offset} or the tail; never
// down. The caller holds the table lock and moves the groups behind it (Topic::delete_records).
void raise_log_start(const Segment& seg, Word16 start);

// {tail position, next offset} without the epoch: one atomic 16-byte read (a locked instruction: slow paths only).
Word16 tail_snapshot(const Segment& seg);

// The tail position alone: a plain acquire load, for readers' lapping checks on the hot path.
inline std::uint64_t tail_position(const Segment& seg) {
  return std::atomic_ref<const std::uint64_t>(seg.header().tail.lo).load(std::memory_order_acquire);
}

}  // namespace mq::detail
