// Dead producers' claims become skip records (see recovery.hpp and libmq/doc/design.md, "Dead producers").
#include "recovery.hpp"

#include "atomic16.hpp"
#include "futex.hpp"
#include "layout.hpp"
#include "liveness.hpp"
#include "log.hpp"

namespace mq::detail {

namespace {

// Turns the claim [start, start + length) with `offset` into pad + skip record. Only for a dead owner.
void finish_claim(const Segment& seg, std::uint64_t start, std::uint64_t length, std::uint64_t offset) {
  const std::uint64_t capacity = seg.capacity();
  const std::uint64_t index = start & (capacity - 1);
  const std::uint64_t pad = index + length > capacity ? capacity - index : 0;
  const std::uint64_t at = start + pad;
  if ((start & 7) != 0 || (length & 7) != 0 || length > capacity || length - pad < kRecordHeaderBytes)
    return;  // not a claim this library made: a corrupted slot
  if (pad != 0) {
    auto& p = seg.record_at(start);
    std::uint64_t seen = p.seq.load();
    if ((seen & ~kStateMask) > start) return;  // a later lap owns these bytes: nothing of this claim is left
    // A record (not a pad) at start: another producer won this tail word with a claim of another size.
    if ((seen & ~kStateMask) == start && (seen & kStateMask) != kPad) return;
    if ((seen & ~kStateMask) < start) p.seq.compare_exchange_strong(seen, start | kPad);
  }
  auto& h = seg.record_at(at);
  std::uint64_t seen = h.seq.load();
  if ((seen & ~kStateMask) > at) return;  // a later lap owns these bytes
  if ((seen & ~kStateMask) == at && (seen & kStateMask) != kClaimed) return;  // committed or skipped already
  if ((seen & ~kStateMask) < at) {
    // The owner died before it wrote the header: write one. (A concurrent recoverer writes the same values.)
    h.offset = offset;
    h.timestamp_ns = 0;
    h.length = static_cast<std::uint32_t>(length - pad);
    h.payload_len = 0;
    h.key_len = kNullKey;
    h.headers_len = 0;
  }
  h.seq.compare_exchange_strong(seen, at | kSkip);
  note_boundaries(seg, start, at, start + length);  // the owner may have died before it noted them
  wake_consumers(seg);
}

// The claim a dead producer announced, if it really made it: the tail has passed its start, and no live producer
// announced a claim at the same tail word (that one may be the winner, and will finish it).
bool recover_slot(const Segment& seg, ProducerSlot& slot, std::uint64_t owner) {
  // Take the slot from its dead owner before reading it: a second recoverer, or a new producer that reuses the slot
  // once the first recoverer freed it, must never have its live intent finished (robbed) or cleared by us.
  if (std::uint64_t expected = owner; !slot.owner.compare_exchange_strong(expected, self_owner())) return false;
  const std::uint64_t start = slot.intent_pos.load();
  const std::uint64_t length = slot.intent_len.load();
  const std::uint64_t offset = slot.intent_off.load();
  bool recovered = false;
  const std::uint64_t tail = tail_snapshot(seg).lo;
  // A claim the ring has lapped since (overwrite topics, block topics without groups) has nothing left to finish:
  // its bytes belong to a later lap's records now.
  if (start != kNone && tail > start && tail - start <= seg.capacity()) {
    bool contested = false;
    for (std::size_t i = 0; i < kMaxProducers; ++i) {
      auto& other = seg.producer(i);
      if (&other == &slot) continue;
      const std::uint64_t other_owner = other.owner.load();
      if (other_owner != 0 && other.intent_pos.load() == start && other.intent_off.load() == offset &&
          (other.intent_len.load() != length || !owner_dead(other_owner)))
        contested = true;
    }
    if (!contested) {
      finish_claim(seg, start, length, offset);
      recovered = true;
    }
    if (contested) {
      slot.owner.store(owner);  // give it back: a later pass decides
      return false;
    }
  }
  slot.intent_pos.store(kNone);
  slot.owner.store(0);
  return recovered;
}

}  // namespace

std::size_t recover_dead_producers(const Segment& seg) {
  std::size_t recovered = 0;
  const std::uint64_t self = self_owner();
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    auto& slot = seg.producer(i);
    const std::uint64_t owner = slot.owner.load();
    if (owner == 0 || owner == self || !owner_dead(owner)) continue;
    if (recover_slot(seg, slot, owner)) ++recovered;
  }
  return recovered;
}

bool recover_stuck(const Segment& seg, std::uint64_t position) {
  bool recovered = false;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    auto& slot = seg.producer(i);
    const std::uint64_t owner = slot.owner.load();
    if (owner == 0) continue;
    const std::uint64_t start = slot.intent_pos.load();
    const std::uint64_t length = slot.intent_len.load();
    if (start == kNone || (start & 7) != 0 || position < start || position - start >= length) continue;
    if (owner != self_owner() && owner_dead(owner)) {
      recovered = recover_slot(seg, slot, owner) || recovered;
    } else {
      slot.stalled.store(1, std::memory_order_relaxed);
    }
  }
  return recovered;
}

}  // namespace mq::detail
