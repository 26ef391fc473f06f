// Dead producers' claims become skip records, and orphaned positions are repaired (see recovery.hpp and
// libmq/doc/design.md, "Dead producers"). Everything here runs under the table lock with producers held.
#include "recovery.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <optional>

#include "atomic16.hpp"
#include "groups.hpp"
#include "layout.hpp"
#include "liveness.hpp"
#include "log.hpp"
#include "test_point.hpp"

namespace mq::detail {

namespace {

// A seq word proves something about position p only when it names exactly p: any other value may be an old header
// or payload bytes an earlier lap left there.
bool names(std::uint64_t seq, std::uint64_t position) { return (seq & ~kStateMask) == position; }

// ... and, naming p, says that a record, a skip record or a pad is complete there.
bool complete(std::uint64_t seq, std::uint64_t position) {
  const std::uint64_t state = seq & kStateMask;
  return names(seq, position) && (state == kCommitted || state == kSkip || state == kPad);
}

std::uint64_t seq_at(const Segment& seg, std::uint64_t position) {
  return seg.record_at(position).seq.load(std::memory_order_acquire);
}

// The offset field of a complete record's header. Read only after its seq named the position (acquire).
Offset header_offset(const Segment& seg, std::uint64_t position) { return seg.record_at(position).offset; }

// A claim as a producer announces it: [start, end()) is a pad to the ring's end when the record would cross it, then
// the record at `at`.
struct Claimed {
  std::uint64_t start = 0;
  std::uint64_t length = 0;
  Offset offset = 0;      // the first record's
  std::uint64_t count = 1;  // records, laid end to end from `at` (a batch: several)
  std::uint64_t at = 0;
  std::uint64_t end() const { return start + length; }
};

// The claim an intent describes; nullopt when the numbers are no claim this library makes (a corrupted slot).
std::optional<Claimed> claimed(const Segment& seg, const ProducerSlot& slot) {
  const std::uint64_t start = slot.intent_pos.load();
  const std::uint64_t length = slot.intent_len.load();
  const std::uint64_t count = slot.intent_count.load();
  const std::uint64_t capacity = seg.capacity();
  if (start == kNone || start % kCacheLine != 0 || length % kCacheLine != 0 || length == 0 || length > capacity ||
      count == 0)
    return std::nullopt;
  const std::uint64_t index = start & (capacity - 1);
  const std::uint64_t pad = index + length > capacity ? capacity - index : 0;
  if ((length - pad) / kCacheLine < count) return std::nullopt;  // every record takes a line at least
  return Claimed{start, length, slot.intent_off.load(), count, start + pad};
}

// A skip record of `length` bytes with `offset` at `position`: the header fields, then the seq word (release).
void write_skip(const Segment& seg, std::uint64_t position, std::uint64_t length, Offset offset) {
  auto& h = seg.record_at(position);
  h.offset = offset;
  h.timestamp_ns = 0;
  h.length = static_cast<std::uint32_t>(length);
  h.payload_len = 0;
  h.key_len = kNullKey;
  h.headers_len = 0;
  h.seq.store(position | kSkip, std::memory_order_release);
}

// The announced claim that covers `position` in slot i, if any.
bool covers(const ProducerSlot& slot, std::uint64_t position) {
  const std::uint64_t start = slot.intent_pos.load();
  const std::uint64_t length = slot.intent_len.load();
  return start != kNone && position >= start && position - start < length;
}

// Proof that the claim with `offset` starts at `position` of the lap the tail is in: the tail is there with that
// offset, a producer (alive or dead) announced that claim, or a complete record, skip record or pad names the
// position with that offset (a pad carries none: the record after it, at the next lap's start, does).
bool claim_starts_at(const Segment& seg, Word16 tail, std::uint64_t position, Offset offset) {
  if (position > tail.lo) return false;
  if (position == tail.lo) return tail.hi == offset;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const auto& slot = seg.producer(i);
    if (slot.owner.load() != 0 && slot.intent_pos.load() == position && slot.intent_off.load() == offset) return true;
  }
  const std::uint64_t seq = seq_at(seg, position);
  if (!complete(seq, position)) return false;
  if ((seq & kStateMask) != kPad) return header_offset(seg, position) == offset;
  const std::uint64_t index = position & seg.mask();
  if (index == 0) return false;  // a pad never starts a lap: corrupted
  const std::uint64_t record = position + (seg.capacity() - index);
  const std::uint64_t after = seq_at(seg, record);
  return complete(after, record) && (after & kStateMask) != kPad && header_offset(seg, record) == offset;
}

// The offset of the claim that starts at `position` (a boundary claim_starts_at would accept), if it can be read.
std::optional<Offset> offset_at(const Segment& seg, Word16 tail, std::uint64_t position) {
  if (position == tail.lo) return tail.hi;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const auto& slot = seg.producer(i);
    if (slot.owner.load() != 0 && slot.intent_pos.load() == position) return slot.intent_off.load();
  }
  const std::uint64_t seq = seq_at(seg, position);
  if (!complete(seq, position)) return std::nullopt;
  if ((seq & kStateMask) != kPad) return header_offset(seg, position);
  const std::uint64_t index = position & seg.mask();
  if (index == 0) return std::nullopt;
  const std::uint64_t record = position + (seg.capacity() - index);
  const std::uint64_t after = seq_at(seg, record);
  if (!complete(after, record) || (after & kStateMask) == kPad) return std::nullopt;
  return header_offset(seg, record);
}

void lay_skips(const Segment& seg, std::uint64_t from, std::uint64_t to, Offset first, std::uint64_t n);

// REQUIRES: the table lock and a ProducerHold at or below c.start; `c` won its start (proven by its end) and no live
// producer contests it. Writes what its dead owner did not: the pad, then skip records for its records that are not
// complete. Its records are published in order, so the complete ones (each names its exact position) are a prefix;
// the rest is tiled with as many skip records as records were left. A part a later lap has already passed (the tail
// is more than a capacity ahead: no reader can be there) is left alone. Any value that does not name its exact
// position is an earlier lap's, and overwritten.
void finish_claim(const Segment& seg, const Claimed& c, std::uint64_t tail) {
  assert(table_lock_held(seg) && seg.header().hold.load() != 0 && seg.header().hold.load() - 1 <= c.start);
  const std::uint64_t capacity = seg.capacity();
  if (c.at != c.start && tail - c.start <= capacity) {
    auto& pad = seg.record_at(c.start).seq;
    if (!complete(pad.load(std::memory_order_acquire), c.start)) pad.store(c.start | kPad, std::memory_order_release);
  }
  test_point(TestPoint::recovery_writing);
  if (tail - c.at > capacity) return;
  std::uint64_t q = c.at;
  std::uint64_t done = 0;
  while (done < c.count) {
    const std::uint64_t seq = seq_at(seg, q);
    if (!complete(seq, q) || (seq & kStateMask) == kPad) break;
    const std::uint64_t length = seg.record_at(q).length;
    if (length < kCacheLine || length % kCacheLine != 0 || length > c.end() - q) break;  // not this claim's: tile
    q += length;
    ++done;
  }
  if (done < c.count) lay_skips(seg, q, c.end(), c.offset + done, c.count - done);
  note_boundaries(seg, c.start, c.at, c.end());  // the owner may have died before it noted them
}

// What recovery does with a dead producer's slot: free it (nothing of its claim is left to write, or it is written
// now), or keep it for a later pass (a live producer may still finish the claim, or nothing proves yet which claim
// won its start: the orphan repair settles that).
enum class Settle { free, finished, keep };

// REQUIRES: the table lock and a ProducerHold at or below the slot's intent position. `tail` was read after the hold.
Settle settle(const Segment& seg, std::size_t i, Word16 tail) {
  assert(table_lock_held(seg));
  const auto c = claimed(seg, seg.producer(i));
  const std::uint64_t capacity = seg.capacity();
  if (!c || tail.lo <= c->start) return Settle::free;         // no claim was made at its position
  if (tail.lo >= c->end() + capacity) return Settle::free;     // a later lap has passed every byte of it
  // The word at its start, if no later lap has passed it: a complete record there where this claim begins with a
  // pad, or a complete pad where it has none, means another claim (of another shape) won this start.
  if (tail.lo - c->start <= capacity) {
    const std::uint64_t first = seq_at(seg, c->start);
    if (complete(first, c->start) && ((first & kStateMask) == kPad) != (c->at != c->start)) return Settle::free;
  }
  // Other producers that announced the same tail word: a live one may be the winner, still writing.
  struct Rival {
    std::uint64_t end;
    std::uint64_t count;
  };
  std::array<Rival, kMaxProducers> rival{};
  std::size_t rivals = 0;
  for (std::size_t j = 0; j < kMaxProducers; ++j) {
    if (j == i) continue;
    const auto& other = seg.producer(j);
    const std::uint64_t owner = other.owner.load();
    if (owner == 0 || other.intent_pos.load() != c->start || other.intent_off.load() != c->offset) continue;
    if (!owner_dead(owner)) return Settle::keep;
    rival[rivals++] = Rival{c->start + other.intent_len.load(), other.intent_count.load()};
  }
  if (claim_starts_at(seg, tail, c->end(), c->offset + c->count)) {  // the next claim starts at its end: it won
    finish_claim(seg, *c, tail.lo);
    return Settle::finished;
  }
  for (std::size_t r = 0; r < rivals; ++r)  // a dead rival of another shape won (its own settle finishes it)
    if ((rival[r].end != c->end() || rival[r].count != c->count) &&
        claim_starts_at(seg, tail, rival[r].end, c->offset + rival[r].count))
      return Settle::free;
  return Settle::keep;
}

void free_slot(const Segment& seg, std::size_t i) {
  ProducerSlot& slot = seg.producer(i);
  slot.intent_pos.store(kNone);
  slot.stalled.store(0, std::memory_order_relaxed);
  auto& h = seg.header();
  if ((h.exclusive_slot.load() & ~kExclusivePlain) == i + 1) {  // a dead exclusive producer: others may come now
    h.exclusive_slot.store(0);
    h.exclusive_owner.store(0);
  }
  slot.owner.store(0);
}

// Skip records over [from, to) with offsets first, first + 1, ... (n of them): n - 1 of one line, the last takes
// the rest. Written back to front, so the record at `from` (where readers wait) becomes readable last.
void lay_skips(const Segment& seg, std::uint64_t from, std::uint64_t to, Offset first, std::uint64_t n) {
  for (std::uint64_t k = n; k-- > 0;) {
    const std::uint64_t at = from + k * kCacheLine;
    write_skip(seg, at, k + 1 == n ? to - at : kCacheLine, first + k);
  }
}

// REQUIRES: the table lock and a ProducerHold at or below p. Fills the orphaned gap [p, q) that holds `n` lost
// offsets from `first` on with skip records (and a pad where the gap crosses the ring's end; records never do).
// False if n offsets cannot fit the gap (then it is not what it seems, and nothing is written).
bool fill_gap(const Segment& seg, std::uint64_t p, std::uint64_t q, Offset first, std::uint64_t n) {
  assert(table_lock_held(seg) && seg.header().hold.load() != 0 && seg.header().hold.load() - 1 <= p);
  if (n == 0 || n > (q - p) / kCacheLine) return false;  // every claim takes a line at least
  const std::uint64_t to_end = seg.capacity() - (p & seg.mask());
  if (q - p <= to_end) {  // within one lap
    lay_skips(seg, p, q, first, n);
    note_boundaries(seg, p, p, q);
    return true;
  }
  const std::uint64_t lap = p + to_end;  // the next lap's start: a record starts there
  const std::uint64_t after = std::min(n, (q - lap) / kCacheLine);
  const std::uint64_t before = n - after;
  if (after == 0 || before * kCacheLine > to_end) return false;
  lay_skips(seg, lap, q, first + before, after);
  if (before == 0) {
    seg.record_at(p).seq.store(p | kPad, std::memory_order_release);
  } else {
    lay_skips(seg, p, lap, first, before);
  }
  note_boundaries(seg, p, before == 0 ? lap : p, q);
  return true;
}

}  // namespace

ProducerHold::ProducerHold(const Segment& seg, std::uint64_t position) : seg_(seg) {
  assert(table_lock_held(seg));
  seg.header().hold.store(position + 1);
  // Every claim from now on rescans its limit, and sees the hold. (It cannot fail: it waits only on a live exclusive
  // producer, and a dead claim, which a hold is for, never lives beside one: make_exclusive() needs the slots free.)
  (void)bump_epoch(seg);
}

ProducerHold::~ProducerHold() { seg_.header().hold.store(0); }

std::size_t recover_dead_producers(const Segment& seg) {
  // Look without the lock first: the common answer is "nobody died".
  const std::uint64_t self = self_owner();
  std::array<std::uint64_t, kMaxProducers> dead{};
  bool any = false;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const std::uint64_t owner = seg.producer(i).owner.load();
    if (owner != 0 && owner != self && owner_dead(owner)) {
      dead[i] = owner;
      any = true;
    }
  }
  if (!any) return 0;
  TableLock lock(seg);
  if (!lock) return 0;
  std::uint64_t lowest = kNone;
  for (std::size_t i = 0; i < kMaxProducers; ++i)
    if (dead[i] != 0 && seg.producer(i).owner.load() == dead[i])
      lowest = std::min(lowest, seg.producer(i).intent_pos.load());
  std::optional<ProducerHold> hold;
  if (lowest != kNone) hold.emplace(seg, lowest);
  const Word16 tail = tail_snapshot(seg);  // after the hold: no later lap reaches a dead claim while we write
  std::size_t finished = 0;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    auto& slot = seg.producer(i);
    // Another recoverer may have freed the slot before we took the lock, and a live producer taken it since.
    if (dead[i] == 0 || slot.owner.load() != dead[i]) continue;
    const Settle s = settle(seg, i, tail);
    if (s == Settle::keep) continue;
    if (s == Settle::finished) ++finished;
    free_slot(seg, i);
    seg.header().room_waiters.fetch_and(~(std::uint64_t{1} << i));  // died waiting for room: wake nobody for it
  }
  if (finished != 0) wake_consumers(seg);
  return finished;
}

bool recover_stuck(const Segment& seg, std::uint64_t position) {
  bool dead = false;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    auto& slot = seg.producer(i);
    const std::uint64_t owner = slot.owner.load();
    if (owner == 0 || !covers(slot, position)) continue;
    if (owner != self_owner() && owner_dead(owner)) {
      dead = true;
    } else {
      slot.stalled.store(1, std::memory_order_relaxed);
    }
  }
  return dead && recover_dead_producers(seg) != 0;
}

std::vector<StuckInfo> stuck_positions(const Segment& seg) {
  std::vector<StuckInfo> out;
  const Word16 tail = tail_snapshot(seg);  // first (a full barrier): a claim the tail shows has its intent visible
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    auto& block = seg.group(g);
    if (block.state.load() != kGroupActive) continue;
    const Word16 next = load16(&block.next);
    if (next.lo >= tail.lo || tail.lo - next.lo > seg.capacity()) continue;  // at the tail, or lapped (it resyncs)
    if ((next.lo & 7) != 0 || complete(seq_at(seg, next.lo), next.lo)) continue;
    StuckInfo s{group_name(block), next.hi, next.lo, StuckInfo::Cause::orphaned, 0};
    for (std::size_t i = 0; i < kMaxProducers; ++i) {
      const auto& slot = seg.producer(i);
      const std::uint64_t owner = slot.owner.load();
      if (owner == 0 || !covers(slot, next.lo)) continue;
      const bool live = owner == self_owner() || !owner_dead(owner);
      if (s.cause == StuckInfo::Cause::stalled_producer && !live) continue;  // a live claimant is what matters
      s.cause = live ? StuckInfo::Cause::stalled_producer : StuckInfo::Cause::dead_producer;
      s.pid = owner_pid(owner);
    }
    // A producer may have committed it (and cleared its intent) while we looked: then it is not stuck.
    if (complete(seq_at(seg, next.lo), next.lo)) continue;
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

// REQUIRES: the table lock. Repairs the orphaned position p, if it still is one; what it did, or nullopt.
std::optional<OrphanRepair> repair_locked(const Segment& seg, std::uint64_t p) {
  const ProducerHold hold(seg, p);
  const Word16 tail = tail_snapshot(seg);
  if (p >= tail.lo || tail.lo - p > seg.capacity() || p % kCacheLine != 0 || complete(seq_at(seg, p), p))
    return std::nullopt;
  // A live producer's claim covering p is that producer's to finish. A dead one's was left by recovery because
  // nothing proved which claim won its start: the gap below decides that. Claims announced after p bound the gap.
  std::uint64_t announced_after = tail.lo;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const auto& slot = seg.producer(i);
    const std::uint64_t owner = slot.owner.load();
    if (owner == 0) continue;
    if (covers(slot, p) && (owner == self_owner() || !owner_dead(owner))) return std::nullopt;
    if (const std::uint64_t start = slot.intent_pos.load(); start > p && start < announced_after) announced_after = start;
  }
  // The offset readers expect at p: a group waits there (its cursor cannot move while p is unreadable).
  std::optional<Offset> first;
  for (std::size_t g = 0; g < kMaxGroups && !first; ++g) {
    auto& block = seg.group(g);
    if (block.state.load() != kGroupActive) continue;
    if (const Word16 next = load16(&block.next); next.lo == p) first = next.hi;
  }
  if (!first) return std::nullopt;
  // The gap ends where a claim provably starts: the first line after p that the tail or an announced claim names, or
  // whose seq names it exactly as a complete record, skip record or pad.
  std::uint64_t q = p + kCacheLine;
  while (q < announced_after && !complete(seq_at(seg, q), q)) q += kCacheLine;
  const auto next_offset = offset_at(seg, tail, q);
  if (!next_offset || *next_offset <= *first) return std::nullopt;
  const std::uint64_t n = *next_offset - *first;
  if (!fill_gap(seg, p, q, *first, n)) return std::nullopt;
  return OrphanRepair{*first, p, n, q - p};
}

}  // namespace

Result<std::vector<OrphanRepair>> repair_orphans(const Segment& seg) {
  (void)recover_dead_producers(seg);  // a dead producer's provable claim is finished by its own recovery
  std::vector<OrphanRepair> repaired;
  std::vector<std::uint64_t> positions;
  for (const auto& s : stuck_positions(seg))
    if (s.cause != StuckInfo::Cause::stalled_producer) positions.push_back(s.position);
  if (positions.empty()) return repaired;
  std::sort(positions.begin(), positions.end());
  positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
  {
    const TableLock lock(seg);
    if (!lock) return lock.error();
    for (const std::uint64_t p : positions)
      if (auto r = repair_locked(seg, p)) repaired.push_back(*r);
  }
  if (!repaired.empty()) {
    wake_consumers(seg);
    (void)recover_dead_producers(seg);  // dead claims inside a gap are settled now: their start names a record
  }
  return repaired;
}

}  // namespace mq::detail
