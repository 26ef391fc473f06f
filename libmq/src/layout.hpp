// The topic segment's layout, version 7: the one place that says where every byte of a segment lives.
// A segment is a fixed 108 KiB header (identity, tail word, producer table, group table, retry and key tables) then a
// byte ring of variable-length records, each in whole 64-byte cache lines. Why the protocol on top of it is safe:
// libmq/doc/design.md.
//
//   0       SegmentHeader      identity, name, tail, wake words, table lock, boundary index      (2 KiB)
//   2048    ProducerSlot[64]   one per attached Producer: owner + the claim it is making          (4 KiB)
//   6144    GroupBlock[16]     name, retry policy, next {position, offset}, redelivery list, MemberSlot[8]
//                                                                                                 (16 x 3456 B)
//   61440   RetryTable[16]     per group: records nacked and waiting for their retry              (16 x 768 B)
//   73728   KeyTable[16]       per group (Ordering::key): its lock and the keys its members hold   (16 x 2112 B)
//   107520  zero               to the page
//   110592  ring               `capacity` bytes (a power of two); ring index = position & (capacity - 1)
//
// A record in the ring (every record starts on a 64-byte line, takes whole lines and never wraps; a claim that would
// cross the ring's end puts a pad record in front of it that runs to the end, and the record at the ring's start,
// in the same claim). Whole lines: a reader spinning on the next record's seq never holds the line a producer is
// writing the current one into, and a 64 B payload crosses the cores in exactly 2 lines (version 1 packed records
// at 8 bytes: the 64 B round trip went from ~600 to ~530 ns, the claim one from ~470 to ~380 ns, tails halved):
//
//   0   u64  seq           position | state          <- release-stored last: this word publishes the record
//   8   u64  offset        the record's offset (log order)
//   16  i64  timestamp_ns  CLOCK_REALTIME
//   24  u32  length        whole record, header included, multiple of 64
//   28  u32  payload_len
//   32  u32  key_len       kNullKey = no key
//   36  u32  headers_len   encoded headers: { u32 name_len, u32 value_len, name, value }*
//   40  key, headers, zero pad to 8, payload, zero pad to the line's end
//
// Publish rule: a reader at position p trusts the record there only when seq == p | kCommitted (acquire); any other
// seq means "not yet" (stop, do not skip) unless it is p | kSkip (step over it) or p | kPad (go to the next lap).
// A producer writes payload, then header, then seq once (a seq_cst exchange): claimed-but-unpublished shows as
// whatever an earlier lap left in those 8 bytes (an old header, or payload bytes of ANY value), and as the intent in
// the producer's slot. So a seq proves something only when it names exactly p; recovery never reads "a later lap"
// into any other value (libmq/doc/design.md, "Dead producers"). (Storing kClaimed first made the header's line cross
// to a spinning reader twice per record; dropping it took the 64 B round trip from ~985 to ~640 ns.) Nothing writes
// kClaimed now; a seq of exactly p | kClaimed (corruption) reads as "not yet", and recovery overwrites it.
// Vocabulary: a position is a byte count that only grows; an index is position & mask; an offset is a record number.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "libmq/topic.hpp"

namespace mq::detail {

inline constexpr std::uint64_t kMagic = 0x31504f544d42494cULL;  // "LIBMTOP1" little-endian
// 2: records in whole 64-byte lines. 3: producers honour a recovery's hold (SegmentHeader::hold); owner ids carry a
// boot tag (liveness.hpp). 4: batches: a claim may hold several records (ProducerSlot::intent_count), and a member's
// held, pending and redelivery entries are runs of records (a Run: position | count). 5: exclusive producers
// (SegmentHeader::exclusive_owner) and lone members (GroupBlock::lone), which a library that did not know them would
// race with plain stores. 6: retries (Consumer::nack): a retry table per group after the group table, the group's
// retry policy in its block. 7: key ordering (Ordering::key): a key table per group after the retry tables.
inline constexpr std::uint32_t kLayoutVersion = 7;
inline constexpr std::size_t kCacheLine = 64;  // fixed in the ABI, not hardware_destructive_interference_size
inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kIndexSlots = 64;          // boundary index: one slot per capacity/64 bytes
inline constexpr std::size_t kRedeliverSlots = 56;      // per group; >= kMaxUnacked + 1 (one dead member at a time)
static_assert(kRetrySlots == 32, "a group's retry table is 12 lines (RetryTable)");
inline constexpr std::size_t kNameBytes = 256;
inline constexpr std::uint32_t kNullKey = 0xffffffffu;
inline constexpr std::uint64_t kNone = ~std::uint64_t{0};

// Record states, in the low 3 bits of RecordHeader::seq (positions are multiples of 8).
inline constexpr std::uint64_t kEmpty = 0;      // never written at this position
inline constexpr std::uint64_t kClaimed = 1;    // unused since version 2 (see the publish rule): "not yet"
inline constexpr std::uint64_t kCommitted = 2;  // readable
inline constexpr std::uint64_t kSkip = 3;       // aborted or recovered claim: keeps its offset, never delivered
inline constexpr std::uint64_t kPad = 4;        // filler to the ring's end; carries no offset
inline constexpr std::uint64_t kStateMask = 7;

// Tail word, second half: the next offset in the low 56 bits and a group epoch in the top 8. A group that joins or
// moves bumps the epoch with a CAS on the same 16 bytes, so no producer claim can slip past a group it did not see.
inline constexpr int kEpochShift = 56;
inline constexpr std::uint64_t kOffsetMask = (std::uint64_t{1} << kEpochShift) - 1;

// A run of records a member takes with one CAS on its group's cursor (held, pending and redelivery entries): the
// position of its first record (or of a pad before it) with, in the low 6 bits a position never uses, how many
// records (committed or skip records, pads not counted) it holds: 1..kMaxBatch. Never 0, so 0 means "none".
inline constexpr std::uint64_t kRunCountMask = kCacheLine - 1;
static_assert(kMaxBatch == kRunCountMask, "a run's count fits the bits a line-aligned position leaves free");
inline constexpr std::uint64_t make_run(std::uint64_t position, std::uint64_t count) { return position | count; }
inline constexpr std::uint64_t run_position(std::uint64_t run) { return run & ~kRunCountMask; }
inline constexpr std::uint64_t run_count(std::uint64_t run) { return run & kRunCountMask; }

inline constexpr std::uint64_t align8(std::uint64_t n) { return (n + 7) & ~std::uint64_t{7}; }
inline constexpr std::uint64_t align_line(std::uint64_t n) { return (n + kCacheLine - 1) & ~(kCacheLine - 1); }

struct RecordHeader {
  std::atomic<std::uint64_t> seq;
  std::uint64_t offset;
  std::int64_t timestamp_ns;
  std::uint32_t length;
  std::uint32_t payload_len;
  std::uint32_t key_len;
  std::uint32_t headers_len;
};
inline constexpr std::size_t kRecordHeaderBytes = 40;
static_assert(sizeof(RecordHeader) == kRecordHeaderBytes);
static_assert(offsetof(RecordHeader, offset) == 8 && offsetof(RecordHeader, length) == 24);
static_assert(offsetof(RecordHeader, headers_len) == 36);

// Bytes a record takes in the ring, and where its payload starts inside it.
inline constexpr std::uint64_t payload_start(std::uint64_t key_len, std::uint64_t headers_len) {
  return align8(kRecordHeaderBytes + key_len + headers_len);
}
inline constexpr std::uint64_t record_bytes(std::uint64_t key_len, std::uint64_t headers_len,
                                            std::uint64_t payload_len) {
  return align_line(payload_start(key_len, headers_len) + payload_len);
}

// 16 bytes changed together by one CAS (see atomic16.hpp): {position, offset | epoch} or {position, offset}.
struct alignas(16) Word16 {
  std::uint64_t lo;
  std::uint64_t hi;
};
static_assert(sizeof(Word16) == 16);

struct alignas(kCacheLine) SegmentHeader {
  // line 0: identity, written once by the creator before `magic`
  std::atomic<std::uint64_t> magic;  // stored last (release) when the segment is ready
  std::uint32_t version;
  std::uint32_t header_bytes;
  std::uint64_t capacity;
  std::uint64_t max_message;
  std::uint32_t policy;
  std::uint32_t storage;
  std::uint64_t block_timeout_ms;
  std::int64_t created_ns;
  std::uint32_t mode;
  std::uint32_t name_len;
  // line 1: table sizes (validated against this build's constants at open)
  alignas(kCacheLine) std::uint32_t producer_slots;
  std::uint32_t group_slots;
  std::uint32_t member_slots;
  std::uint32_t held_slots;
  std::uint32_t redeliver_slots;
  std::uint32_t index_slots;
  std::uint32_t retry_slots;
  std::uint32_t key_slots;
  std::uint64_t ring_offset;
  std::uint64_t total_bytes;
  // lines 2..5
  alignas(kCacheLine) char name[kNameBytes];
  // line 6: written by producers only (claim CAS)
  alignas(kCacheLine) Word16 tail;
  std::atomic<std::uint64_t> group_epoch;  // every group move, full width (the 8-bit tail epoch wraps at 256)
  // line 7: a sleeping member sets its bit (group * kMaxMembers + member) in `sleepers` and sleeps on `wake_seq`;
  // a producer wakes only if a bit is set. Recovery clears a dead member's bit: a crash cannot leave it set.
  alignas(kCacheLine) std::atomic<std::uint32_t> wake_seq;
  std::atomic<std::uint64_t> sleepers[2];
  // line 8: slow-path lock for the group table (create/join/leave/recover/delete/reset); holds the owner's id.
  // `hold`, set only by the lock holder: position + 1 (0 = none) that no claim may pass by more than `capacity`
  // while a recoverer writes a dead claim's skip record (recovery.hpp, ProducerHold). Producers read it when they
  // rescan their limit, which a change of group_epoch forces.
  alignas(kCacheLine) std::atomic<std::uint64_t> table_lock;
  std::atomic<std::uint64_t> hold;
  // line 9: a producer waiting for room in a full block topic lowers `room_wanted` to the position it wants the
  // group's low to reach, sets its slot's bit in `room_waiters` and sleeps on `room_seq`. A member whose ack takes
  // its low to `room_wanted` wakes them (resetting it to kNone), as do a member about to sleep and every group-table
  // change, each only if a bit is set. Recovery clears a dead producer's bit. (Zero in segments made before these
  // existed: 0 wanted means "wake at any ack"; a library that does not know the words never wakes, and a waiting
  // producer then looks again after at most 1 ms.)
  alignas(kCacheLine) std::atomic<std::uint32_t> room_seq;
  std::atomic<std::uint64_t> room_waiters;
  std::atomic<std::uint64_t> room_wanted;
  // line 10: where the log starts after Topic::delete_records (Kafka's DeleteRecords), {position, offset} of the
  // first record still held; {0, 0} = not set, the ring's oldest record is the start. Only raised, under the table
  // lock; earliest() answers the later of the two. (Zero in segments made before it existed.)
  alignas(kCacheLine) Word16 log_start;
  // line 11: the exclusive producer (ProducerOptions::exclusive), set and cleared under the table lock: its owner id
  // (0 = none) and its slot's index + 1, with kExclusivePlain set when it claims with plain stores instead of the
  // tail CAS (a group move then hands over with it by membarrier: libmq/doc/design.md, "Exclusive producers").
  alignas(kCacheLine) std::atomic<std::uint64_t> exclusive_owner;
  std::atomic<std::uint64_t> exclusive_slot;
  alignas(kCacheLine) char reserved[1024 - 12 * kCacheLine];  // lines 12..15: zero, for later versions
  // lines 16..23: index[k % 64] = the first record position at or after chunk k's start (chunk = capacity / 64)
  alignas(kCacheLine) std::atomic<std::uint64_t> index[kIndexSlots];
};
inline constexpr std::size_t kSegmentHeaderBytes = 2048;
static_assert(sizeof(SegmentHeader) <= kSegmentHeaderBytes);
static_assert(offsetof(SegmentHeader, tail) == 6 * kCacheLine);
static_assert(offsetof(SegmentHeader, wake_seq) == 7 * kCacheLine);
static_assert(offsetof(SegmentHeader, table_lock) == 8 * kCacheLine && offsetof(SegmentHeader, hold) == 8 * kCacheLine + 8);
static_assert(offsetof(SegmentHeader, room_seq) == 9 * kCacheLine);
static_assert(offsetof(SegmentHeader, log_start) == 10 * kCacheLine);
static_assert(offsetof(SegmentHeader, exclusive_owner) == 11 * kCacheLine);
inline constexpr std::uint64_t kExclusivePlain = std::uint64_t{1} << 32;  // in SegmentHeader::exclusive_slot
static_assert(offsetof(SegmentHeader, index) == 1024);

struct alignas(kCacheLine) ProducerSlot {
  std::atomic<std::uint64_t> owner;        // 0 = free; else an owner id (liveness.hpp)
  std::atomic<std::uint64_t> intent_pos;   // kNone, or the tail position this producer is claiming at
  std::atomic<std::uint64_t> intent_len;   // bytes of that claim, pad included
  std::atomic<std::uint64_t> intent_off;   // the offset that claim's first record gets
  std::atomic<std::uint64_t> published;    // records committed (stats)
  std::atomic<std::uint64_t> stalled;      // set by a reader that found this producer's claim blocking it
  std::atomic<std::uint64_t> intent_count;  // records in that claim (a batch: several, laid end to end after the pad)
};
static_assert(sizeof(ProducerSlot) == kCacheLine);

struct alignas(kCacheLine) MemberSlot {
  // line 0: written by the member (and by the recoverer under the table lock once the member is dead)
  std::atomic<std::uint64_t> owner;    // 0 = free
  std::atomic<std::uint64_t> pending;  // the run being taken (make_run), 0 = none
  std::atomic<std::uint64_t> low;      // lowest position this member may still read (pending or held); kNone
  std::atomic<std::uint64_t> head;     // held runs: held[head % kMaxUnacked .. tail % kMaxUnacked), receive order
  std::atomic<std::uint64_t> tail;
  std::atomic<std::uint64_t> delivered;  // stats
  std::atomic<std::uint64_t> plain;      // 1: its process can take by plain store when lone (membarrier, AVX)
  // lines 1..4
  alignas(kCacheLine) std::atomic<std::uint64_t> held[kMaxUnacked];
};
inline constexpr std::size_t kMemberSlotBytes = 5 * kCacheLine;
static_assert(sizeof(MemberSlot) == kMemberSlotBytes);

// GroupBlock::lone: the lone member's index + 1 in the low bits, and a generation above them that every change of
// the word (and every move of the group's cursor, twice) advances, so a take that read the word before a change fails
// its check after (consumer_state.hpp, advance()).
inline constexpr std::uint64_t kLoneTagMask = 0xff;
inline constexpr std::uint64_t kLoneGeneration = std::uint64_t{1} << 8;

inline constexpr std::uint32_t kGroupFree = 0;
inline constexpr std::uint32_t kGroupMoving = 1;  // being created or reset: producers wait for it to settle
inline constexpr std::uint32_t kGroupActive = 2;

// A group's retry policy (RetryPolicy) and ordering as its block keeps them: set under the table lock, read without.
struct RetryWords {
  std::atomic<std::uint32_t> max_attempts;  // 1..kMaxAttempts
  std::atomic<std::uint32_t> backoff_ms;
  std::atomic<std::uint32_t> max_backoff_ms;
  std::atomic<std::uint32_t> factor_milli;  // factor x 1000
  std::atomic<std::uint32_t> jitter_milli;  // jitter x 1000
  std::atomic<std::uint32_t> ordering;      // Ordering
};
static_assert(sizeof(RetryWords) == 24);

// GroupBlock::active: 0 = any member takes (Ordering::none); else, for Ordering::exclusive, the index + 1 of the
// member that alone takes, or kNoActive while the group has no member.
inline constexpr std::uint64_t kNoActive = ~std::uint64_t{0};

struct alignas(kCacheLine) GroupBlock {
  // line 0
  std::atomic<std::uint32_t> state;
  std::uint32_t name_len;
  std::atomic<std::uint64_t> mover;  // owner id of the process creating/resetting it (state kGroupMoving)
  // The group's lone member (index + 1; 0 = none), set under the table lock when one member alone remains and its
  // slot says `plain`: it moves `next` by a plain store instead of a CAS, handing over by membarrier to a joiner or
  // a mover (libmq/doc/design.md, "Lone members").
  std::atomic<std::uint64_t> lone;
  RetryWords retry;
  // Ordering::exclusive: which member takes (kNoActive, else index + 1); 0 for Ordering::none. Set under the table
  // lock when a member joins a group without one, and when the one that takes leaves or is recovered.
  std::atomic<std::uint64_t> active;
  // lines 1..4
  alignas(kCacheLine) char name[kNameBytes];
  // line 5: members take records by CAS on {position, offset}
  alignas(kCacheLine) Word16 next;
  // line 6: recovery generation (odd while a dead member's records move to `redeliver`; +2 by a nack that parks a
  // record in the retry table), redelivery count, and how many records wait in the retry table (RetryTable)
  alignas(kCacheLine) std::atomic<std::uint64_t> gen;
  std::atomic<std::uint64_t> redeliver_count;
  std::atomic<std::uint64_t> retry_count;
  // lines 7..13: runs to hand out again (make_run), 0 = empty
  alignas(kCacheLine) std::atomic<std::uint64_t> redeliver[kRedeliverSlots];
  // lines 14..53
  MemberSlot members[kMaxMembers];
};
inline constexpr std::size_t kGroupBlockBytes = 54 * kCacheLine;
static_assert(sizeof(GroupBlock) == kGroupBlockBytes);
static_assert(kRedeliverSlots >= kMaxUnacked + 1);
// Parking (Ordering::key) keeps room for one member's records coming back: what is left is kMaxParked.
static_assert(kMaxParked == kRedeliverSlots - (kMaxUnacked + 1));

// A record nacked for a later retry (Consumer::nack). Only a member that won the entry (CAS of `run` from 0 to
// kRetryFilling | its index) writes its times and then `run`; any member takes it once due (CAS of `run` to 0).
struct RetryEntry {
  // 0 = free; make_run(position, failures so far: 1..kMaxAttempts - 1) once filled; kRetryFilling | member index
  // << 6 while a member fills it (a run count of 0: no reader takes it, and the member still holds the record).
  std::atomic<std::uint64_t> run;
  std::atomic<std::int64_t> due_ns;    // CLOCK_REALTIME from when it may be handed out again
  std::atomic<std::int64_t> first_ns;  // CLOCK_REALTIME of its first failure
};
inline constexpr std::uint64_t kRetryFilling = std::uint64_t{1} << 63;
// An entry's run word names a record waiting for its retry (not free, not being filled, not a scribbled count of 0).
inline constexpr bool retry_waits(std::uint64_t run) { return run_count(run) != 0 && (run & kRetryFilling) == 0; }
struct alignas(kCacheLine) RetryTable {
  RetryEntry entries[kRetrySlots];
};
inline constexpr std::size_t kRetryTableBytes = 12 * kCacheLine;
static_assert(sizeof(RetryTable) == kRetryTableBytes);

// Ordering::key. A member takes (and acks) only under its group's key lock, so that records are handed out and keys
// change hands in one order. A key (its hash: two keys that share one are ordered as one) is held by the one member
// that holds its records; a record whose key another member holds, or whose key has an earlier record waiting (in
// the redelivery list or the retry table), is parked in the redelivery list instead of handed out
// (libmq/doc/design.md, "Key ordering").
inline constexpr std::size_t kKeySlots = 256;
static_assert(kKeySlots >= kMaxMembers * kMaxUnacked, "every record the members hold may have its own key");
// A key entry: its hash in the high 32 bits, the member holding it (index + 1) in bits 24..31, and how many of its
// records that member holds in the low 24 (never 0: an entry whose count reaches 0 is freed). 0 = free.
inline constexpr std::uint64_t make_key_entry(std::uint32_t hash, std::uint64_t member_tag, std::uint64_t held) {
  return std::uint64_t{hash} << 32 | member_tag << 24 | held;
}
inline constexpr std::uint32_t key_entry_hash(std::uint64_t e) { return static_cast<std::uint32_t>(e >> 32); }
inline constexpr std::uint64_t key_entry_member(std::uint64_t e) { return (e >> 24) & 0xff; }
inline constexpr std::uint64_t key_entry_held(std::uint64_t e) { return e & 0xffffff; }
// Open addressing (linear probing from hash % kKeySlots), changed only under the lock.
struct alignas(kCacheLine) KeyTable {
  std::atomic<std::uint64_t> lock;  // owner id of the member taking or acking; 0 = free
  alignas(kCacheLine) std::atomic<std::uint64_t> keys[kKeySlots];
};
inline constexpr std::size_t kKeyTableBytes = 33 * kCacheLine;
static_assert(sizeof(KeyTable) == kKeyTableBytes);

inline constexpr std::size_t kProducerTableOffset = kSegmentHeaderBytes;
inline constexpr std::size_t kGroupTableOffset = kProducerTableOffset + kMaxProducers * sizeof(ProducerSlot);
inline constexpr std::size_t kRetryTableOffset = kGroupTableOffset + kMaxGroups * kGroupBlockBytes;
inline constexpr std::size_t kKeyTableOffset = kRetryTableOffset + kMaxGroups * kRetryTableBytes;
inline constexpr std::size_t kRingOffset =
    (kKeyTableOffset + kMaxGroups * kKeyTableBytes + kPageSize - 1) / kPageSize * kPageSize;
static_assert(kGroupTableOffset == 6144 && kRetryTableOffset == 61440 && kKeyTableOffset == 73728);
static_assert(kRingOffset == 110592 && kRingOffset % kPageSize == 0, "the ring starts and ends on a page");

static_assert(std::is_standard_layout_v<SegmentHeader> && std::is_standard_layout_v<GroupBlock>);
static_assert(std::is_standard_layout_v<RecordHeader> && std::is_standard_layout_v<ProducerSlot>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8);

}  // namespace mq::detail
