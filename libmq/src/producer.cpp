// The publishing path: claim (one 16-byte CAS on the tail word yields both the bytes and the offset; an exclusive
// producer's claim is a plain 16-byte store), fill, commit (one exchange on the record's seq word), and a futex wake
// only when some consumer sleeps. No lock, no syscall otherwise; a full block topic waits on the slow path below.
#include "libmq/producer.hpp"

#include <time.h>

#include <algorithm>
#include <limits>
#include <cstring>

#include "atomic16.hpp"
#include "clock.hpp"
#include "futex.hpp"
#include "groups.hpp"
#include "layout.hpp"
#include "liveness.hpp"
#include "log.hpp"
#include "membarrier.hpp"
#include "recovery.hpp"
#include "segment.hpp"
#include "test_point.hpp"

namespace mq {

namespace detail {

struct ProducerState {
  explicit ProducerState(Topic t) : topic(std::move(t)) {}
  Topic topic;
  Segment* seg = nullptr;
  ProducerSlot* slot = nullptr;
  std::uint64_t fork_gen = 0;
  std::chrono::milliseconds block_timeout{0};
  bool exclusive = false;  // ProducerOptions::exclusive: the segment's exclusive_owner is this process
  bool plain = false;      // and it claims by plain stores (SegmentHeader::exclusive_slot has kExclusivePlain)
  std::uint64_t cached_limit = 0;      // may claim up to here without rescanning the groups
  std::uint64_t cached_epoch = kNone;  // SegmentHeader::group_epoch when cached_limit was computed
  std::uint64_t open_claim = kNone;    // position of the open claim's record
  std::uint64_t open_len = 0;          // its length, when its header is still to be written (claim())
  std::uint64_t open_payload = 0;      // its payload bytes
  // A batch (publish_batch, claim_batch): its records, in order; the vector keeps its capacity between batches.
  struct BatchRecord {
    std::uint64_t position;
    std::uint64_t len;
    std::uint64_t payload;  // bytes
    bool header_written;    // claim_batch writes the headers at commit
  };
  std::vector<BatchRecord> batch;
  Offset batch_offset = 0;  // the first record's
  bool batch_open = false;  // a BatchClaim is open
};

// Commits (or aborts, as skip records) the batch in `s.batch`.
Result<Offset> finish_batch(ProducerState& s, bool commit);

// Commits (or aborts, as a skip record) the open claim whose record is at `position`.
Result<Offset> finish(ProducerState& s, std::uint64_t position, bool commit);

#ifdef MQ_TEST_POINTS
ProducerSlot& TestAccess::slot(const Producer& producer) noexcept { return *producer.state_->slot; }
#endif

}  // namespace detail

using namespace detail;

namespace {

Error wrong_process(const Segment& seg) {
  return Error(Errc::wrong_process, "producer was created in another process (before fork): topic=" + seg.name());
}

Error has_exclusive(const Segment& seg, std::uint64_t owner) {
  return Error(Errc::busy, "topic has an exclusive producer (pid " + std::to_string(owner_pid(owner)) +
                               "): no other producer until it closes: topic=" + seg.name());
}

// Takes a free producer slot for `self`, or nullptr.
ProducerSlot* take_slot(const Segment& seg, std::uint64_t self) {
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    auto& slot = seg.producer(i);
    std::uint64_t expected = 0;
    if (slot.owner.load(std::memory_order_relaxed) != 0) continue;
    if (!slot.owner.compare_exchange_strong(expected, self)) continue;
    slot.intent_pos.store(kNone);
    slot.published.store(0, std::memory_order_relaxed);
    slot.stalled.store(0, std::memory_order_relaxed);
    return &slot;
  }
  return nullptr;
}

Error no_slot(const Segment& seg) {
  return Error(Errc::limit, "no free producer slot: topic=" + seg.name() + " max_producers=" +
                                std::to_string(kMaxProducers));
}

}  // namespace

Result<Producer> Producer::make(Topic topic, ProducerOptions options) {
  Segment& seg = *topic.segment();
  if (options.block_timeout && options.block_timeout->count() < 0)
    return Error(Errc::invalid_argument, "block_timeout must not be negative: topic=" + seg.name() +
                                             " block_timeout_ms=" + std::to_string(options.block_timeout->count()));
  if (options.exclusive) return make_exclusive(std::move(topic), options);
  const std::uint64_t self = self_owner();
  for (int pass = 0; pass < 2; ++pass) {
    if (ProducerSlot* slot = take_slot(seg, self)) {
      // Looked at after our slot is taken (the CAS is a full barrier), as make_exclusive() looks at the slots after
      // it sets its mark: of two that race, at least one sees the other.
      const std::uint64_t exclusive = seg.header().exclusive_owner.load();
      if (exclusive == 0) return Producer(std::move(topic), options, slot);
      slot->owner.store(0);
      if (exclusive == self || !owner_dead(exclusive)) return has_exclusive(seg, exclusive);
    }
    recover_dead_producers(seg);  // slots of dead producers come free, and a dead exclusive producer's mark goes
  }
  return no_slot(seg);
}

// Under the table lock (serialized with group movers, which read the mark, and with other exclusive producers): set
// the mark, then look at the slots. A producer that took a slot before is seen here; one that takes a slot after
// sees the mark (make()); of two that race, both may see each other and both fail with busy, never both succeed.
Result<Producer> Producer::make_exclusive(Topic topic, ProducerOptions options) {
  Segment& seg = *topic.segment();
  auto& h = seg.header();
  const std::uint64_t self = self_owner();
  recover_dead_producers(seg);  // a dead producer's slot, or its exclusive mark, would refuse us
  TableLock lock(seg);
  if (!lock) return lock.error();
  if (const std::uint64_t other = h.exclusive_owner.load(); other != 0) return has_exclusive(seg, other);
  h.exclusive_owner.store(self);
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    if (const std::uint64_t owner = seg.producer(i).owner.load(); owner != 0) {
      h.exclusive_owner.store(0);
      return Error(Errc::busy, "an exclusive producer needs the topic to itself, and another producer is attached "
                               "(pid " + std::to_string(owner_pid(owner)) + "): topic=" + seg.name());
    }
  }
  ProducerSlot* slot = take_slot(seg, self);
  if (slot == nullptr) {
    h.exclusive_owner.store(0);
    return no_slot(seg);
  }
  // Plain claims need a 16-byte store that is atomic and a mover that can fence this process (membarrier.hpp).
  const bool plain = plain_handover_possible();
  h.exclusive_slot.store(static_cast<std::uint64_t>(slot - &seg.producer(0) + 1) | (plain ? kExclusivePlain : 0));
  Producer p(std::move(topic), options, slot);
  p.state_->exclusive = true;
  p.state_->plain = plain;
  return p;
}

Producer::Producer(Topic topic, ProducerOptions options) {
  auto made = make(std::move(topic), options);
  if (!made) throw std::move(made).error();
  state_ = std::move(made->state_);
}

Producer::Producer(Topic topic, ProducerOptions options, ProducerSlot* slot)
    : state_(std::make_unique<ProducerState>(std::move(topic))) {
  state_->seg = state_->topic.segment().get();
  state_->slot = slot;
  state_->fork_gen = fork_generation();
  state_->block_timeout = options.block_timeout.value_or(
      std::chrono::milliseconds(state_->seg->header().block_timeout_ms));
}

Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
  }
  return *this;
}

Producer::~Producer() { release(); }

void Producer::release() noexcept {
  if (!state_ || state_->fork_gen != fork_generation()) return;  // a fork child leaves the parent's slot alone
  if (state_->open_claim != kNone) (void)finish(*state_, state_->open_claim, false);
  if (state_->batch_open) (void)finish_batch(*state_, false);
  state_->slot->intent_pos.store(kNone);
  if (state_->exclusive) {  // after our last claim: a mover that still sees the mark finds no claim to wait for
    auto& h = state_->seg->header();
    h.exclusive_slot.store(0);
    h.exclusive_owner.store(0);
  }
  state_->slot->owner.store(0);
  state_.reset();
}

const Topic& Producer::topic() const noexcept { return state_->topic; }

// Why a claim found no room before its deadline: a full block topic, or producers held by a recovery (which an
// overwrite topic waits for too: a hold lasts as long as a recoverer writes one skip record, unless it is stopped).
static Error no_room(const Segment& seg, std::chrono::milliseconds waited) {
  if (seg.header().hold.load() != 0)
    return Error(Errc::busy, "producers are held by a recovery of a dead claim (table lock pid " +
                                 std::to_string(owner_pid(seg.header().table_lock.load())) + ", stopped?): topic=" +
                                 seg.name() + " waited_ms=" + std::to_string(waited.count()));
  return Error(Errc::full, "topic full: topic=" + seg.name() + " capacity=" + std::to_string(seg.capacity()) +
                               " waited_ms=" + std::to_string(waited.count()));
}

// A claim's wait for room: when it gives up, and when it next looks for dead members and producers.
struct RoomWait {
  std::int64_t deadline = 0;
  std::int64_t next_check = 0;
  unsigned rounds = 0;
};

constexpr std::int64_t kRoomSliceNs = 1'000'000;    // sleep at most this long between looks (see wake_producers)
constexpr std::int64_t kRoomCheckNs = 100'000'000;  // look for dead members and producers this often while waiting

// Waits for room for a claim [from, end) in a block topic (or for a recovery's hold to end): spins a little (the
// consumer is usually just behind), then sleeps on the topic's room word until a member's ack or a group-table
// change wakes it. It asks to be woken once a quarter of the ring is free beyond what the claim needs (or the whole
// ring up to `from`), as a socket wakes its writer only when half its buffer is free: a consumer that frees room a
// record at a time then pays one wake-up per quarter ring, not one per ack, and the producer writes in bursts.
// False once the deadline has passed.
static bool wait_for_room(ProducerState& s, std::uint64_t from, std::uint64_t end, RoomWait& w) {
  Segment& seg = *s.seg;
  const std::int64_t now = mono_ns();
  if (w.deadline == 0) {
    w.deadline = deadline_after(now, s.block_timeout);
    w.next_check = now + kRoomCheckNs;
  }
  if (now >= w.deadline) return false;
  if (++w.rounds < 64) return true;
  if (now >= w.next_check) {  // a dead member or producer may be what holds the ring
    recover_dead_members(seg);
    recover_dead_producers(seg);
    w.next_check = now + kRoomCheckNs;
  }
  auto& h = seg.header();
  const std::uint64_t bit = std::uint64_t{1} << static_cast<std::size_t>(s.slot - &seg.producer(0));
  const std::uint32_t seen = h.room_seq.load(std::memory_order_acquire);
  const std::uint64_t capacity = seg.capacity();
  const std::uint64_t want = std::min((end > capacity ? end - capacity : 0) + capacity / 4, from);
  for (std::uint64_t w0 = h.room_wanted.load(); want < w0 && !h.room_wanted.compare_exchange_weak(w0, want);) {
  }
  // A full barrier between our bit and the look below; a member stores its new low, then loads the bits. A member
  // whose load passed its store (the store buffer) misses us: its next ack, or its fence before it sleeps, or at
  // worst the slice, wakes us. (A fence per ack would close that window at a cost to every record.)
  h.room_waiters.fetch_or(bit);
  const auto limit = producer_limit(seg);
  if (!limit || end > *limit)
    futex_wait(h.room_seq, seen, std::chrono::nanoseconds(std::min(w.deadline - now, kRoomSliceNs)));
  h.room_waiters.fetch_and(~bit);
  return true;
}

namespace {

// Where a claim landed: [start, start + pad) a pad to the ring's end (when pad != 0), then its records from `at`.
struct Reserved {
  std::uint64_t start = 0;
  std::uint64_t at = 0;
  Offset offset = 0;
};

// An exclusive producer's plain claim, after its intent is announced: the group epoch it checked its limit against
// is still current, loaded after the announcement with only a compiler barrier between (a group mover's
// membarrier is the other half: either it sees the announcement and waits for the tail store, or this load sees its
// epoch), and then the tail moves by one 16-byte store. False (nothing stored): a group moved, look again.
[[gnu::always_inline]] inline bool claim_plain(ProducerState& s, Word16 t, std::uint64_t end, std::uint64_t count,
                                               std::uint64_t epoch) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  auto& h = s.seg->header();
  if (h.group_epoch.load(std::memory_order_acquire) != epoch) [[unlikely]] return false;
  store16(&h.tail, Word16{end, t.hi + count});
  return true;
}

// reserve()'s common case, inline: the claim fits under the cached limit, needs no pad, and its one CAS (or plain
// store) wins. False (claiming nothing) otherwise: reserve() then takes it from the start.
[[gnu::always_inline]] inline bool try_reserve(ProducerState& s, std::uint64_t len, std::uint64_t count,
                                               Reserved& r) {
  Segment& seg = *s.seg;
  auto& tail = seg.header().tail;
  Word16 t = load_tail(tail);
  const std::uint64_t end = t.lo + len;
  // The same ordering as reserve(): the group epoch after the tail, then the intent, then the CAS.
  const std::uint64_t epoch = seg.header().group_epoch.load(std::memory_order_acquire);
  const bool fits = (t.lo & 7) == 0 && (t.lo & seg.mask()) + len <= seg.capacity() && epoch == s.cached_epoch &&
                    end <= s.cached_limit;
  if (!fits) return false;
  ProducerSlot& slot = *s.slot;
  slot.intent_pos.store(t.lo, std::memory_order_relaxed);  // ordered before the CAS (a full barrier)
  slot.intent_len.store(len, std::memory_order_relaxed);
  slot.intent_off.store(t.hi & kOffsetMask, std::memory_order_relaxed);
  slot.intent_count.store(count, std::memory_order_relaxed);
  test_point(TestPoint::claim_announced);
  if (s.plain ? !claim_plain(s, t, end, count, epoch) : !cas16(&tail, t, Word16{end, t.hi + count})) {
    slot.intent_pos.store(kNone, std::memory_order_relaxed);  // as in reserve(): a lost race claims nothing
    return false;
  }
  r = Reserved{t.lo, t.lo, t.hi & kOffsetMask};
  test_point(TestPoint::claim_made);
  return true;
}

// Claims `len` bytes for `count` records with one CAS on the tail word (announcing the claim in the producer's slot
// first), waiting for room in a block topic, and writes the pad in front when the claim would cross the ring's end.
Result<Reserved> reserve(ProducerState& s, std::uint64_t len, std::uint64_t count) {
  Segment& seg = *s.seg;
  auto& tail = seg.header().tail;
  const std::uint64_t capacity = seg.capacity();
  RoomWait wait;
  Word16 t = load_tail(tail);  // one moment: the intent below names exactly the tail word we CAS
  std::uint64_t pad = 0;
  std::uint64_t end = 0;
  for (;;) {
    if ((t.lo & 7) != 0)
      return Error(Errc::bad_segment, "corrupted segment: tail position " + std::to_string(t.lo) +
                                          " not 8-byte aligned: topic=" + seg.name());
    const std::uint64_t index = t.lo & (capacity - 1);
    pad = index + len > capacity ? capacity - index : 0;
    end = t.lo + pad + len;
    // Loaded after t: a group mover or a recovery's hold increments group_epoch before it bumps the tail epoch, so
    // either we see the new value here (and rescan), or the tail changed after we read t (and the CAS below fails).
    // (The same cache line as the tail: nearly free.) Overwrite topics rescan only for a hold, which groups never set.
    const std::uint64_t epoch = seg.header().group_epoch.load(std::memory_order_acquire);
    if (epoch != s.cached_epoch || end > s.cached_limit) {
      const auto limit = producer_limit(seg);
      if (limit) {
        s.cached_limit = *limit;
        s.cached_epoch = epoch;
      }
      if (!limit || end > *limit) {
        s.cached_epoch = kNone;
        s.slot->intent_pos.store(kNone, std::memory_order_relaxed);  // we claim nothing while we wait or give up
        if (!wait_for_room(s, t.lo, end, wait)) return no_room(seg, s.block_timeout);
        t = load_tail(tail);
        continue;
      }
    }
    // Announce the claim before making it, so a recoverer can finish it if this process dies in between.
    s.slot->intent_pos.store(t.lo, std::memory_order_relaxed);  // ordered before the CAS (a full barrier)
    s.slot->intent_len.store(pad + len, std::memory_order_relaxed);
    s.slot->intent_off.store(t.hi & kOffsetMask, std::memory_order_relaxed);
    s.slot->intent_count.store(count, std::memory_order_relaxed);
    test_point(TestPoint::claim_announced);
    if (s.plain) {
      if (claim_plain(s, t, end, count, epoch)) break;
      s.cached_epoch = kNone;  // a group moved after we looked: look again (the tail is ours, t stays true)
    } else if (cas16(&tail, t, Word16{end, t.hi + count})) {
      break;
    }
    // Lost the race: this slot claims nothing. Left set, the intent contests the winner's recovery for as long as
    // we live, and once the ring laps it, aims a later recovery at another lap's record.
    s.slot->intent_pos.store(kNone, std::memory_order_relaxed);
  }
  const Reserved r{t.lo, t.lo + pad, t.hi & kOffsetMask};
  test_point(TestPoint::claim_made);
  if (pad != 0) {
    seg.record_at(r.start).seq.store(r.start | kPad, std::memory_order_release);
    test_point(TestPoint::pad_written);
  }
  return r;
}

// Claims room for `count` records of `len` bytes in all: the inline common case, else reserve().
[[gnu::always_inline]] inline Result<Reserved> claim_room(ProducerState& s, std::uint64_t len, std::uint64_t count) {
  Reserved r;
  if (try_reserve(s, len, count, r)) [[likely]] return r;
  return reserve(s, len, count);
}

}  // namespace

namespace {

// Where place_record put a record: its position, offset and payload bytes.
struct Placed {
  std::uint64_t position = 0;
  Offset offset = 0;
  std::byte* payload = nullptr;
};

// Claims room for one record and, given `copy_from`, writes its payload and header (publish); else only the room
// (claim: the header goes in at commit). The record stays this producer's open claim until finish().
Result<Placed> place_record(ProducerState& s, const Record& shape, std::size_t payload_bytes,
                            const std::byte* copy_from) {
  Segment& seg = *s.seg;
  if (s.fork_gen != fork_generation()) return wrong_process(seg);
  if (seg.truncated()) return truncated_error(seg);
  if (s.open_claim != kNone || s.batch_open)
    return Error(Errc::busy, "this producer has an open claim; commit or abort it first: topic=" + seg.name());
  std::uint64_t headers_len = 0;
  const std::uint64_t len = encoded_size(shape, payload_bytes, seg.max_message(), &headers_len);
  if (len == 0) {
    const std::uint64_t key = shape.key ? shape.key->size() : 0;
    return Error(Errc::too_large, "record too large: topic=" + seg.name() + " max=" +
                                      std::to_string(seg.max_message()) + " size=" +
                                      std::to_string(key + headers_len + payload_bytes));
  }
  auto reserved = claim_room(s, len, 1);
  if (!reserved) [[unlikely]] return std::move(reserved).error();
  const Reserved r = *reserved;
  const std::uint64_t at = r.at;
  std::byte* payload = payload_at(seg, at, shape.key ? shape.key->size() : 0, headers_len);
  // The payload first, the header last (publish: now; claim: at commit), and no "claimed" state in between: the
  // header's cache line then crosses to a spinning reader once, at the commit, instead of once per store. Until
  // then readers see an older lap's seq there, which means "not yet", and the producer slot's intent tells
  // recovery and stats who holds the place.
  if (copy_from != nullptr) {
    if (payload_bytes != 0) std::memcpy(payload, copy_from, payload_bytes);
    test_point(TestPoint::payload_written);
    write_header(seg, at, len, r.offset, shape, payload_bytes, headers_len);
    test_point(TestPoint::header_written);
  }
  note_boundaries(seg, r.start, at, at + len);
  s.open_claim = at;
  s.open_len = copy_from != nullptr ? 0 : len;  // 0: header written already
  s.open_payload = payload_bytes;
  return Placed{at, r.offset, payload};
}

}  // namespace

Result<Claim> Producer::claim_record(const Record& shape, std::size_t payload_bytes, const std::byte* copy_from) {
  auto placed = place_record(*state_, shape, payload_bytes, copy_from);
  if (!placed) return std::move(placed).error();
  return Claim(state_.get(), placed->position, placed->offset, std::span<std::byte>(placed->payload, payload_bytes));
}

namespace detail {

// Publishes (or turns into a skip record) the record at `position` whose header is written: one seq_cst exchange
// publishes the record (release) and orders it before the sleepers check (Dekker). What it replaces is an older
// lap's bytes (publish or claim); a skip means a recoverer declared us dead and finished the claim: put its skip
// back and report revoked.
[[gnu::always_inline]] inline Result<Offset> seal(ProducerState& s, std::uint64_t position, bool commit) {
  Segment& seg = *s.seg;
  auto& header = seg.record_at(position);
  const Offset offset = header.offset;
  const std::uint64_t old = header.seq.exchange(position | (commit ? kCommitted : kSkip));
  const bool ok = old != (position | kSkip);
  if (!ok) [[unlikely]] header.seq.store(old);
  test_point(TestPoint::committed);
  s.open_claim = kNone;
  ProducerSlot& slot = *s.slot;
  slot.intent_pos.store(kNone, std::memory_order_release);
  if (ok) slot.published.store(slot.published.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (slot.stalled.load(std::memory_order_relaxed) != 0) [[unlikely]] slot.stalled.store(0, std::memory_order_relaxed);
  wake_consumers(seg);
  if (!ok) [[unlikely]]
    return Error(Errc::revoked, "claim was recovered before its commit: topic=" + seg.name() + " offset=" +
                                    std::to_string(offset));
  // Written into zero pages (fault_guard): not in the topic.
  if (seg.truncated()) [[unlikely]] return truncated_error(seg);
  return offset;
}

Result<Offset> finish(ProducerState& s, std::uint64_t position, bool commit) {
  if (s.open_len != 0) {  // claim(): the header goes in now, just before the seq word
    write_plain_header(*s.seg, position, s.open_len, s.slot->intent_off.load(std::memory_order_relaxed),
                       s.open_payload, record_time_ns());
    s.open_len = 0;
    test_point(TestPoint::header_written);
  }
  return seal(s, position, commit);
}

}  // namespace detail

namespace {

// Whether a record of `payload_bytes` without key or headers may take the inline paths (publish_payload, claim()):
// every check that could fail, in one branch; false sends the caller to the general path, which names the error.
[[gnu::always_inline]] inline bool plain_record_ok(const ProducerState& s, std::size_t payload_bytes) {
  const Segment& seg = *s.seg;
  return !(s.fork_gen != fork_generation() || seg.truncated() || s.open_claim != kNone || s.batch_open ||
           payload_bytes > seg.max_message() || payload_bytes == 0);
}

// The general publish: any record shape, and every error a publish can meet.
Result<Offset> publish_record(ProducerState& s, const Record& record) {
  // A non-null pointer even for an empty payload: null means claim() (header written at commit, no key/headers).
  static constexpr std::byte kNoPayload{};
  auto placed = place_record(s, record, record.payload.size(),
                             record.payload.empty() ? &kNoPayload : record.payload.data());
  if (!placed) return std::move(placed).error();
  return finish(s, placed->position, true);  // no Claim in between: nothing could abort it
}

// The common publish, a payload without key, headers or a timestamp of its own: place_record and finish in one
// frame, the same stores in the same order, with every check that could fail folded into one branch to the general
// path (which names the error).
Result<Offset> publish_payload(ProducerState& s, std::span<const std::byte> payload) {
  Segment& seg = *s.seg;
  if (!plain_record_ok(s, payload.size())) [[unlikely]]
    return publish_record(s, Record{payload, std::nullopt, {}, std::nullopt});
  const std::uint64_t len = record_bytes(0, 0, payload.size());
  auto reserved = claim_room(s, len, 1);
  if (!reserved) [[unlikely]] return std::move(reserved).error();
  const Reserved r = *reserved;
  const std::uint64_t at = r.at;
  std::memcpy(payload_at(seg, at, 0, 0), payload.data(), payload.size());
  test_point(TestPoint::payload_written);
  write_plain_header(seg, at, len, r.offset, payload.size(), record_time_ns());
  test_point(TestPoint::header_written);
  note_boundaries(seg, r.start, at, at + len);
  return seal(s, at, true);
}

}  // namespace

Result<Offset> Producer::publish(std::span<const std::byte> payload) { return publish_payload(*state_, payload); }

Result<Offset> Producer::publish(const Record& record) {
  if (!record.key && record.headers.empty() && !record.timestamp_ns) return publish_payload(*state_, record.payload);
  return publish_record(*state_, record);
}

Result<Claim> Producer::claim(std::size_t payload_bytes) {
  ProducerState& s = *state_;
  if (!plain_record_ok(s, payload_bytes)) [[unlikely]] return claim_record(Record{}, payload_bytes, nullptr);
  // place_record's claim, inline: the room now, the header at commit (finish()).
  const std::uint64_t len = record_bytes(0, 0, payload_bytes);
  auto reserved = claim_room(s, len, 1);
  if (!reserved) [[unlikely]] return std::move(reserved).error();
  const std::uint64_t at = reserved->at;
  note_boundaries(*s.seg, reserved->start, at, at + len);
  s.open_claim = at;
  s.open_len = len;
  s.open_payload = payload_bytes;
  return Claim(&s, at, reserved->offset, std::span<std::byte>(payload_at(*s.seg, at, 0, 0), payload_bytes));
}

Claim::Claim(Claim&& other) noexcept
    : producer_(std::exchange(other.producer_, nullptr)),
      position_(other.position_),
      offset_(other.offset_),
      bytes_(other.bytes_) {}

Claim& Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    if (producer_ != nullptr) std::move(*this).abort();
    producer_ = std::exchange(other.producer_, nullptr);
    position_ = other.position_;
    offset_ = other.offset_;
    bytes_ = other.bytes_;
  }
  return *this;
}

Claim::~Claim() {
  if (producer_ != nullptr) std::move(*this).abort();
}

Result<Offset> Claim::commit() && {
  if (producer_ == nullptr) return Error(Errc::invalid_argument, "claim already committed or aborted");
  ProducerState* p = std::exchange(producer_, nullptr);
  if (p->fork_gen != fork_generation()) return wrong_process(*p->seg);
  return finish(*p, position_, true);
}

void Claim::abort() && {
  if (producer_ == nullptr) return;
  ProducerState* p = std::exchange(producer_, nullptr);
  if (p->fork_gen != fork_generation()) return;
  (void)finish(*p, position_, false);
}

}  // namespace mq

namespace mq {

namespace detail {

Result<Offset> finish_batch(ProducerState& s, bool commit) {
  Segment& seg = *s.seg;
  auto& records = s.batch;
  const Offset first = s.batch_offset;
  s.batch_open = false;
  // A recoverer that declared us dead has tiled the batch with skip records of its own lengths: touch nothing then.
  bool ok = seg.record_at(records.front().position).seq.load(std::memory_order_acquire) !=
            (records.front().position | kSkip);
  std::size_t published = 0;
  if (ok) {
    if (!records.front().header_written) {
      const std::int64_t now = record_time_ns();  // one timestamp for the batch
      for (std::size_t i = 0; i < records.size(); ++i)
        write_header(seg, records[i].position, records[i].len, first + i, Record{}, records[i].payload, 0, now);
      test_point(TestPoint::header_written);
    }
    // In log order: readers take each record as soon as it is published. The first by an exchange, the same
    // revocation check a single publish makes (a recoverer acts only on a producer confirmed dead: this catches the
    // case where that confirmation was wrong, the limit libmq/doc/design.md states); the rest by release stores, one
    // locked instruction per batch instead of per record (32 records of 64 B: 58 -> 31 ns a record, bench/micro).
    for (const auto& r : records) {
      auto& h = seg.record_at(r.position);
      const std::uint64_t state = r.position | (commit ? kCommitted : kSkip);
      if (published == 0) {
        const std::uint64_t old = h.seq.exchange(state);
        if (old == (r.position | kSkip)) {
          h.seq.store(old);
          ok = false;
          break;
        }
      } else {
        h.seq.store(state, std::memory_order_release);
      }
      ++published;
      test_point(TestPoint::committed);  // after each record: a death here leaves a committed prefix
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the stores before the sleepers check (Dekker)
  }
  const std::size_t count = records.size();
  records.clear();
  s.slot->intent_pos.store(kNone, std::memory_order_release);
  if (commit)
    s.slot->published.store(s.slot->published.load(std::memory_order_relaxed) + published, std::memory_order_relaxed);
  if (s.slot->stalled.load(std::memory_order_relaxed) != 0) s.slot->stalled.store(0, std::memory_order_relaxed);
  wake_consumers(seg);
  if (!ok)
    return Error(Errc::revoked, "batch claim was recovered before its commit: topic=" + seg.name() + " offsets=" +
                                    std::to_string(first) + ".." + std::to_string(first + count - 1) +
                                    " committed=" + std::to_string(commit ? published : 0));
  if (seg.truncated()) return truncated_error(seg);  // written into zero pages (fault_guard): not in the topic
  return first;
}

}  // namespace detail

// The batch paths. shape(i) -> {const Record&, payload bytes, copy source (null: claim_batch)}.
template <class Shape>
Result<Offset> Producer::claim_records(std::size_t n, Shape&& shape, bool commit) {
  ProducerState& s = *state_;
  Segment& seg = *s.seg;
  if (s.fork_gen != fork_generation()) return wrong_process(seg);
  if (seg.truncated()) return truncated_error(seg);
  if (s.open_claim != kNone || s.batch_open)
    return Error(Errc::busy, "this producer has an open claim; commit or abort it first: topic=" + seg.name());
  if (n == 0 || n > kMaxPublishBatch)
    return Error(Errc::invalid_argument, "a batch holds 1.." + std::to_string(kMaxPublishBatch) +
                                             " records: topic=" + seg.name() + " records=" + std::to_string(n));
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto [record, payload_bytes, from] = shape(i);
    std::uint64_t headers_len = 0;
    const std::uint64_t len = encoded_size(record, payload_bytes, seg.max_message(), &headers_len);
    if (len == 0) {
      const std::uint64_t key = record.key ? record.key->size() : 0;
      return Error(Errc::too_large, "record too large: topic=" + seg.name() + " max=" +
                                        std::to_string(seg.max_message()) + " size=" +
                                        std::to_string(key + headers_len + payload_bytes) + " record=" +
                                        std::to_string(i));
    }
    total += len;
  }
  // Half the ring at most: a pad in front (when the batch would cross the ring's end) is then shorter than the
  // batch, and pad + batch always fit behind a consumer that has caught up.
  if (total > seg.capacity() / 2)
    return Error(Errc::too_large, "batch too large: topic=" + seg.name() + " records=" + std::to_string(n) +
                                      " bytes=" + std::to_string(total) + " max=" + std::to_string(seg.capacity() / 2));
  auto reserved = claim_room(s, total, n);
  if (!reserved) return std::move(reserved).error();
  s.batch.clear();
  s.batch_offset = reserved->offset;
  std::uint64_t at = reserved->at;
  const std::int64_t now = record_time_ns();  // one timestamp for the batch (records may carry their own)
  for (std::size_t i = 0; i < n; ++i) {
    const auto [record, payload_bytes, from] = shape(i);
    std::uint64_t headers_len = 0;
    const std::uint64_t len = encoded_size(record, payload_bytes, seg.max_message(), &headers_len);
    if (from != nullptr) {
      std::byte* payload = payload_at(seg, at, record.key ? record.key->size() : 0, headers_len);
      if (payload_bytes != 0) std::memcpy(payload, from, payload_bytes);
      if (i == 0) test_point(TestPoint::payload_written);
      write_header(seg, at, len, reserved->offset + i, record, payload_bytes, headers_len, now);
    }
    s.batch.push_back(ProducerState::BatchRecord{at, len, payload_bytes, from != nullptr});
    at += len;
  }
  if (s.batch.front().header_written) test_point(TestPoint::header_written);
  note_boundaries(seg, reserved->start, reserved->at, at);
  if (!commit) {
    s.batch_open = true;
    return reserved->offset;
  }
  return finish_batch(s, true);
}

namespace {

struct Shaped {
  const Record& record;
  std::size_t payload_bytes;
  const std::byte* from;
};

// A non-null source even for an empty payload (null means "claim": header at commit).
constexpr std::byte kNoPayload{};

}  // namespace

Result<Offset> Producer::publish_batch(std::span<const Record> records) {
  return claim_records(
      records.size(),
      [&](std::size_t i) {
        const Record& r = records[i];
        return Shaped{r, r.payload.size(), r.payload.empty() ? &kNoPayload : r.payload.data()};
      },
      true);
}

Result<Offset> Producer::publish_batch(std::span<const std::span<const std::byte>> payloads) {
  Record shape;
  return claim_records(
      payloads.size(),
      [&](std::size_t i) {
        shape.payload = payloads[i];
        return Shaped{shape, payloads[i].size(), payloads[i].empty() ? &kNoPayload : payloads[i].data()};
      },
      true);
}

Result<BatchClaim> Producer::claim_batch(std::span<const std::size_t> payload_bytes) {
  const Record none{};
  auto first = claim_records(
      payload_bytes.size(), [&](std::size_t i) { return Shaped{none, payload_bytes[i], nullptr}; }, false);
  if (!first) return std::move(first).error();
  return BatchClaim(state_.get(), *first, payload_bytes.size());
}

std::span<std::byte> BatchClaim::bytes(std::size_t i) const noexcept {
  const auto& r = producer_->batch[i];
  return {payload_at(*producer_->seg, r.position, 0, 0), r.payload};
}

BatchClaim::BatchClaim(BatchClaim&& other) noexcept
    : producer_(std::exchange(other.producer_, nullptr)), offset_(other.offset_), count_(other.count_) {}

BatchClaim& BatchClaim::operator=(BatchClaim&& other) noexcept {
  if (this != &other) {
    if (producer_ != nullptr) std::move(*this).abort();
    producer_ = std::exchange(other.producer_, nullptr);
    offset_ = other.offset_;
    count_ = other.count_;
  }
  return *this;
}

BatchClaim::~BatchClaim() {
  if (producer_ != nullptr) std::move(*this).abort();
}

Result<Offset> BatchClaim::commit() && {
  if (producer_ == nullptr) return Error(Errc::invalid_argument, "batch claim already committed or aborted");
  ProducerState* p = std::exchange(producer_, nullptr);
  if (p->fork_gen != fork_generation()) return wrong_process(*p->seg);
  return finish_batch(*p, true);
}

void BatchClaim::abort() && {
  if (producer_ == nullptr) return;
  ProducerState* p = std::exchange(producer_, nullptr);
  if (p->fork_gen != fork_generation()) return;
  (void)finish_batch(*p, false);
}

}  // namespace mq
