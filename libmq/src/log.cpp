// Record headers in the ring: checked reads, claimed writes, and the boundary index (see log.hpp, layout.hpp).
#include "log.hpp"

#include <time.h>

#include <cstring>
#include <optional>
#include <string>

#include "atomic16.hpp"
#include "clock.hpp"
#include "futex.hpp"

namespace mq::detail {

std::uint32_t read_u32(const std::byte* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

namespace {

Error corrupt(std::uint64_t position, const std::string& what) {
  return Error(Errc::bad_segment, "corrupted record at position " + std::to_string(position) + ": " + what);
}


// Walks the encoded headers; false if an entry runs past the end. (Not TSan-instrumented: see inspect_record.)
__attribute__((no_sanitize("thread"))) bool headers_well_formed(const std::byte* p, std::uint64_t len) {
  auto u32 = [](const std::byte* q) {
    std::uint32_t v;
    std::memcpy(&v, q, sizeof v);
    return std::uint64_t{v};
  };
  std::uint64_t at = 0;
  while (at < len) {
    if (len - at < 8) return false;
    const std::uint64_t name = u32(p + at);
    const std::uint64_t value = u32(p + at + 4);
    at += 8;
    if (name > len - at || value > len - at - name) return false;
    at += name + value;
  }
  return true;
}


}  // namespace

// Not instrumented by ThreadSanitizer, on purpose: a member may read a record at a group cursor that another member
// has just moved past, while a producer already writes the next lap there. Such a read is discarded (the member's
// taking CAS on the cursor fails, and a reported corruption is re-checked against the cursor first), but TSan cannot
// know that; every read here is bounds-checked whatever the bytes say. The same holds for earliest().
__attribute__((no_sanitize("thread")))
Result<RecordView> inspect_record(std::span<const std::byte> ring, std::uint64_t position, std::uint64_t seq,
                                  std::uint64_t max_message) {
  RecordView v;
  const std::uint64_t capacity = ring.size();
  const std::uint64_t index = position & (capacity - 1);
  if ((position & 7) != 0) return corrupt(position, "position not 8-byte aligned");
  const std::uint64_t at = seq & ~kStateMask;
  if (at < position) return v;  // kEmpty: this lap has not reached here
  if (at > position) {
    v.state = kNone;  // a later lap wrote here
    return v;
  }
  v.state = seq & kStateMask;
  if (v.state == kEmpty) return v;
  if (v.state == kPad) {
    if (index == 0) return corrupt(position, "pad at the ring's start");
    v.length = capacity - index;
    return v;
  }
  if (v.state != kClaimed && v.state != kCommitted && v.state != kSkip)
    return corrupt(position, "unknown state " + std::to_string(v.state));
  if (capacity - index < kRecordHeaderBytes) return corrupt(position, "header crosses the ring's end");
  const auto* base = ring.data() + index;
  const auto& h = *reinterpret_cast<const RecordHeader*>(base);
  v.length = h.length;
  v.offset = h.offset;
  v.timestamp_ns = h.timestamp_ns;
  v.payload_len = h.payload_len;
  v.key_len = h.key_len;
  v.headers_len = h.headers_len;
  if (v.length < kRecordHeaderBytes || (v.length & 7) != 0 || v.length > capacity - index)
    return corrupt(position, "length " + std::to_string(v.length) + " does not fit the ring");
  if (v.state == kSkip || v.state == kClaimed) return v;  // contents are not read
  prefetch_record(base, index, v.length);  // before the checks below, so the transfers overlap them
  const std::uint64_t key = v.key_len == kNullKey ? 0 : v.key_len;
  if (key + v.headers_len + std::uint64_t{v.payload_len} > max_message)
    return corrupt(position, "key + headers + payload exceed max_message=" + std::to_string(max_message));
  if (record_bytes(key, v.headers_len, v.payload_len) != v.length)
    return corrupt(position, "length " + std::to_string(v.length) + " does not match its parts");
  if (v.headers_len != 0 && !headers_well_formed(base + kRecordHeaderBytes + key, v.headers_len))
    return corrupt(position, "malformed headers");
  return v;
}

Result<RecordView> read_record(const Segment& seg, std::uint64_t position, std::uint64_t* seq_out) {
  // Check before the 8-byte load: an unaligned position from a corrupted segment could reach past the ring.
  if ((position & 7) != 0) return corrupt(position, "position not 8-byte aligned");
  const std::uint64_t seq = seg.record_at(position).seq.load(std::memory_order_acquire);  // pairs with the publish
  if (seq_out != nullptr) *seq_out = seq;
  return inspect_record(std::span<const std::byte>(seg.ring(), seg.capacity()), position, seq, seg.max_message());
}

std::uint64_t encoded_parts_size(const Record& shape, std::size_t payload_bytes, std::uint64_t max_message,
                                 std::uint64_t* headers_len) {
  std::uint64_t h = 0;
  for (const auto& header : shape.headers) h += 8 + header.name.size() + header.value.size();
  const std::uint64_t key = shape.key ? shape.key->size() : 0;
  *headers_len = h;
  if (key + h + payload_bytes > max_message || payload_bytes > max_message) return 0;
  return record_bytes(key, h, payload_bytes);
}

void write_parts_header(const Segment& seg, std::uint64_t position, std::uint64_t length, Offset offset,
                        const Record& shape, std::size_t payload_bytes, std::uint64_t headers_len,
                        std::int64_t now_ns) {
  auto& h = seg.record_at(position);
  auto* base = reinterpret_cast<std::byte*>(&h);
  h.offset = offset;
  h.timestamp_ns = shape.timestamp_ns ? *shape.timestamp_ns : now_ns != 0 ? now_ns : record_time_ns();
  h.length = static_cast<std::uint32_t>(length);
  h.payload_len = static_cast<std::uint32_t>(payload_bytes);
  const std::uint64_t key = shape.key ? shape.key->size() : 0;
  h.key_len = shape.key ? static_cast<std::uint32_t>(key) : kNullKey;
  h.headers_len = static_cast<std::uint32_t>(headers_len);
  std::byte* at = base + kRecordHeaderBytes;
  if (key != 0) std::memcpy(at, shape.key->data(), key);
  at += key;
  for (const auto& header : shape.headers) {
    const auto name = static_cast<std::uint32_t>(header.name.size());
    const auto value = static_cast<std::uint32_t>(header.value.size());
    std::memcpy(at, &name, 4);
    std::memcpy(at + 4, &value, 4);
    if (name != 0) std::memcpy(at + 8, header.name.data(), name);
    if (value != 0) std::memcpy(at + 8 + name, header.value.data(), value);
    at += 8 + name + value;
  }
}

void note_chunk_starts(const Segment& seg, std::uint64_t start, std::uint64_t pad_end, std::uint64_t end) noexcept {
  const unsigned shift = static_cast<unsigned>(__builtin_ctzll(seg.capacity())) - 6;  // chunk = capacity / 64
  auto& index = seg.header().index;
  for (std::uint64_t k = (start + (std::uint64_t{1} << shift) - 1) >> shift; (k << shift) < end; ++k) {
    const std::uint64_t first = (k << shift) <= pad_end ? pad_end : end;
    index[k % kIndexSlots].store(first, std::memory_order_release);  // after the claimed header: see earliest()
  }
}

Word16 tail_snapshot(const Segment& seg) {
  Word16 t = load16(&seg.header().tail);
  t.hi &= kOffsetMask;
  return t;
}

namespace {

// The offset of the claim a producer announced exactly at `position` (its start, or its record's start after a
// pad), if any. Only exact positions: an intent names the offset of its own start, and no other position's.
std::optional<Offset> claim_at(const Segment& seg, std::uint64_t position) {
  const std::uint64_t capacity = seg.capacity();
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const auto& slot = seg.producer(i);
    if (slot.owner.load() == 0) continue;
    const std::uint64_t start = slot.intent_pos.load();
    if (start == kNone) continue;
    const std::uint64_t index = start & (capacity - 1);
    const std::uint64_t length = slot.intent_len.load();
    const std::uint64_t pad = index + length > capacity ? capacity - index : 0;
    if (position == start || (pad != 0 && position == start + pad)) return slot.intent_off.load();
  }
  return std::nullopt;
}

// The oldest record the ring still holds, ignoring the log start that delete_records may have set.
Word16 ring_oldest(const Segment& seg) {
  const std::uint64_t capacity = seg.capacity();
  const unsigned shift = static_cast<unsigned>(__builtin_ctzll(capacity)) - 6;
  const std::uint64_t chunk = std::uint64_t{1} << shift;
  for (int attempt = 0;; ++attempt) {
    const Word16 tail = tail_snapshot(seg);
    if (tail.lo <= capacity) return Word16{0, 0};  // nothing overwritten yet: the log starts at 0
    if (attempt > 1'000) return tail;              // the ring laps faster than we can look
    const std::uint64_t lower = tail.lo - capacity;
    // The first chunk at or after `lower` whose slot is noted for this lap. A claim across a chunk start that has
    // not noted it (its producer is preempted, or died) costs one chunk of retention, not the whole ring.
    for (std::uint64_t k = (lower + chunk - 1) >> shift; (k << shift) < tail.lo; ++k) {
      const std::uint64_t chunk_start = k << shift;
      std::uint64_t at = seg.header().index[k % kIndexSlots].load(std::memory_order_acquire);
      if (at < chunk_start || at - chunk_start >= capacity) continue;  // not yet noted for this lap: the next one
      bool retry = false;
      for (int hop = 0; hop < 2 && !retry; ++hop) {
        if (at >= tail.lo) return tail;
        auto v = read_record(seg, at);
        if (v && (v->state == kEmpty || v->state == kNone || v->state == kClaimed)) {
          // Nothing readable there yet: a claim the tail has passed but whose producer has not committed (or died,
          // and recovery has not finished it). Its producer's intent names its offset: the oldest record held is
          // that claim, and a reader starting here waits for it. (Before, this retried until it gave up and
          // answered the tail: a new group skipped the whole ring.) Unless a later lap took these bytes meanwhile.
          std::atomic_thread_fence(std::memory_order_acquire);
          if (tail_snapshot(seg).lo - capacity > at) {
            retry = true;
          } else if (const auto claim = claim_at(seg, at)) {
            return Word16{at, *claim};
          } else if (const std::uint64_t seq = seg.record_at(at).seq.load(); (seq & ~kStateMask) == at) {
            retry = true;  // committed (and its intent cleared) while we looked
          } else {
            break;  // no claim covers it (an orphan, see recovery.hpp): the next chunk's record
          }
        } else if (!v) {
          retry = true;
        } else if (v->state == kPad) {
          at += v->length;
        } else {
          const Offset offset = v->offset;
          // The header may have been overwritten while we read it: accept it only if the tail has not lapped it.
          std::atomic_thread_fence(std::memory_order_acquire);
          if (tail_snapshot(seg).lo - capacity > at) retry = true;
          else return Word16{at, offset};
        }
      }
      if (retry) break;
    }
  }
}

}  // namespace

Word16 earliest(const Segment& seg) {
  const Word16 oldest = ring_oldest(seg);
  // log_start only grows, and each change raises its offset: load_tail's rule reads it without a locked instruction.
  Word16& start = seg.header().log_start;
  if (load_half(start.hi) <= oldest.hi) return oldest;  // not set, or the ring has moved past it
  const Word16 set = load_tail(start);
  // A start beyond the tail, or behind the oldest record's position, is not one delete_records wrote (a corrupted
  // segment): ignored, as if not set.
  Word16 tail = load_tail(seg.header().tail);  // not tail_snapshot: no locked instruction per Topic::earliest()
  tail.hi &= kOffsetMask;
  const bool sane = set.hi <= tail.hi && set.lo <= tail.lo && set.lo > oldest.lo;
  return sane && set.hi > oldest.hi ? set : oldest;
}

void raise_log_start(const Segment& seg, Word16 start) {
  Word16& word = seg.header().log_start;
  Word16 seen = load16(&word);
  while (seen.hi < start.hi && !cas16(&word, seen, start)) {
  }
}

void wake_sleeping_consumers(const Segment& seg) {
  auto& h = seg.header();
  h.wake_seq.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(h.wake_seq);
}

void wake_producers(const Segment& seg, std::uint64_t low) {
  auto& h = seg.header();
  if (h.room_waiters.load(std::memory_order_relaxed) != 0 && low >= h.room_wanted.load(std::memory_order_relaxed)) {
    // Every waiter that lowered room_wanted read room_seq before it did: the bump below wakes it, and it lowers
    // room_wanted again if it sleeps once more.
    h.room_wanted.store(kNone, std::memory_order_relaxed);
    h.room_seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(h.room_seq);
  }
}

}  // namespace mq::detail

namespace mq {

Header HeaderRange::iterator::operator*() const {
  const std::uint32_t name = detail::read_u32(at_);
  const std::uint32_t value = detail::read_u32(at_ + 4);
  return Header{std::string_view(reinterpret_cast<const char*>(at_ + 8), name),
                std::span<const std::byte>(at_ + 8 + name, value)};
}

HeaderRange::iterator& HeaderRange::iterator::operator++() {
  at_ += 8 + static_cast<std::size_t>(detail::read_u32(at_)) + detail::read_u32(at_ + 4);
  if (at_ > end_) at_ = end_;
  return *this;
}

}  // namespace mq
