// Key ordering's side of the take (Ordering::key, see consumer_state.hpp): the records parked in the group's
// redelivery list and retry table with their keys, whether this member may take a key's record, and the take at the
// group's cursor that parks the records it may not take. consumer.cpp's take_keyed and ready() call these, always
// under the group's key lock.
#include "consumer_state.hpp"

namespace mq {

// Key ordering: the records waiting in the group's redelivery list and retry table, with their keys, by position.
void Consumer::State::gather_parked() {
  parked_n = 0;
  next_due = kNever;
  if (group->redeliver_count.load(std::memory_order_relaxed) != 0)
    for (auto& entry : group->redeliver) {
      const std::uint64_t v = entry.load(std::memory_order_acquire);
      if (v == 0 || run_count(v) == 0 || (run_position(v) & 7) != 0) continue;  // (never written so: left)
      parked[parked_n++] = Parked{run_position(v), key_code_at(*seg, run_position(v)), &entry, v, nullptr, true};
    }
  if (group->retry_count.load(std::memory_order_relaxed) != 0) {
    const std::int64_t now = realtime_ns();
    for (auto& e : seg->retries(group_index).entries) {
      const std::uint64_t v = e.run.load(std::memory_order_acquire);
      if (!retry_waits(v)) continue;
      const std::int64_t due = effective_due(e.due_ns.load(std::memory_order_relaxed), now);
      if (due > now) next_due = std::min(next_due, due);
      parked[parked_n++] = Parked{run_position(v), key_code_at(*seg, run_position(v)), &e.run, v, &e, due <= now};
    }
  }
  if (parked_n > 1)
    std::sort(parked.begin(), parked.begin() + static_cast<std::ptrdiff_t>(parked_n),
              [](const Parked& a, const Parked& b) { return a.position < b.position; });
}

// The parked record this member may take first: due, of no key or of a key no other member holds, and the earliest
// one waiting of its key.
std::optional<std::size_t> Consumer::State::first_eligible() const {
  const KeyTable& keys = seg->keys(group_index);
  std::array<std::uint64_t, kRedeliverSlots + kRetrySlots> earlier{};  // keys of the records before
  std::size_t n = 0;
  for (std::size_t i = 0; i < parked_n; ++i) {
    const Parked& p = parked[i];
    if (p.code == 0) {
      if (p.due) return i;
      continue;
    }
    if (std::find(earlier.begin(), earlier.begin() + static_cast<std::ptrdiff_t>(n), p.code) !=
        earlier.begin() + static_cast<std::ptrdiff_t>(n))
      continue;
    earlier[n++] = p.code;
    const std::uint64_t holder = key_holder(keys, p.code);
    if (p.due && (holder == 0 || holder == member_tag)) return i;
  }
  return std::nullopt;
}

bool Consumer::State::parked_has(std::uint64_t code) const {
  return std::any_of(parked.begin(), parked.begin() + static_cast<std::ptrdiff_t>(parked_n),
                     [&](const Parked& p) { return p.code == code; });
}

// Whether the group has a live member besides this one.
bool Consumer::State::others_live() const {
  for (const auto& m : group->members)
    if (&m != slot)
      if (const std::uint64_t owner = m.owner.load(std::memory_order_relaxed); owner != 0 && owner != kOrphanOwner)
        return true;
  return false;
}

// The member holding key `code` (its tag; 0: none, and for a record without a key).
std::uint64_t Consumer::State::holder_of(std::uint64_t code) const {
  return code == 0 ? 0 : key_holder(seg->keys(group_index), code);
}

// Whether taking a record of key `code`, which `holder` holds, would give this member a key it does not hold yet (a
// record without a key gives none).
bool Consumer::State::fresh(std::uint64_t code, std::uint64_t holder) const {
  return code != 0 && holder != member_tag;
}

// Whether a record of key `code`, which `holder` holds, is this member's to take: no key, or one free or its own with
// none of its records waiting before it.
bool Consumer::State::may_take(std::uint64_t code, std::uint64_t holder) const {
  return code == 0 || ((holder == 0 || holder == member_tag) && !parked_has(code));
}

// Whether a record may be parked: the redelivery list keeps room for one member's records coming back
// (release_member_locked). `entry`, if given, gets its first free entry.
bool Consumer::State::park_room(std::atomic<std::uint64_t>** entry) const {
  std::size_t free = 0;
  for (auto& r : group->redeliver)
    if (r.load(std::memory_order_relaxed) == 0) {
      if (free++ == 0 && entry != nullptr) *entry = &r;
    }
  return free > kRedeliverSlots - kMaxParked;
}

// Takes parked record `p` as a run of one. False if its entry changed since the gather (a reset cleared it).
bool Consumer::State::take_parked(const Parked& p) {
  announce(make_run(p.position, 1));
  std::uint64_t seen = p.run;
  if (!p.entry->compare_exchange_strong(seen, 0)) {
    retract();
    return false;
  }
  std::uint32_t failures = 0;
  std::int64_t first = 0;
  if (p.retry != nullptr) {
    group->retry_count.fetch_sub(1);
    failures = static_cast<std::uint32_t>(run_count(p.run));
    first = p.retry->first_ns.load(std::memory_order_relaxed);
  } else {
    group->redeliver_count.fetch_sub(1);
  }
  hold(p.position, 1, true, failures, first);
  run_left = 0;
  run_done = 1;
  held_key[(tail - 1) % kMaxUnacked] = p.code;
  hold_key(seg->keys(group_index), p.code, member_tag);
  auto v = read_record(*seg, p.position);
  if (!v || v->state != kCommitted) {  // a skip record (a claim recovered after it was listed): nothing to hand out
    --tail;                            // (the newest run, nothing of it handed out: dropped, not acked, which would
    slot->tail.store(tail, std::memory_order_release);  // ack every run before it too)
    update_low();
    return true;
  }
  found[found_n] = Found{p.position, *v, p.position + v->length, 1};
  handed[found_n++] = Handed{tail - 1, true, failures, first};
  return true;
}

// The record at the group's cursor: taken (its key free or this member's, and none of its records parked before
// it), parked for later (its key held by another member or an earlier record of it waiting), or stepped over (a pad
// or a skip record); left where it is (Step::shared) when taking it would give this member a key it does not hold
// and `may_acquire` is false. `acquired` counts the keys a take gave it.
Consumer::State::Step Consumer::State::take_at_cursor(Failure& err, bool may_acquire, std::size_t& acquired) {
  // The halves loaded apart (no locked load): a mover's change in between shows as an offset that does not match.
  // (A failed CAS below updates `next`; nothing reads it after.)
  Word16 next{load_half(group->next.lo), load_half(group->next.hi)};
  const auto moved = [&] {
    const Word16 now = load16(&group->next);
    return now.lo != next.lo || now.hi != next.hi;
  };
  std::uint64_t seq = 0;
  auto v = read_record(*seg, next.lo, &seq);
  if (!v) {
    if (moved()) return Step::moved;
    err = std::move(v).error();
    return Step::failed;
  }
  if (v->state == kEmpty || v->state == kClaimed || v->state == kNone) {
    stuck_at = next.lo;
    empty_pos = next.lo;
    empty_seq = seq;
    return Step::empty;
  }
  if (v->state == kPad) {
    cas16(&group->next, next, Word16{next.lo + v->length, next.hi});
    return Step::moved;
  }
  if (v->offset != next.hi) {
    if (moved()) return Step::moved;
    err = Error(Errc::bad_segment, "record offset " + std::to_string(v->offset) + " where the group expects " +
                                       std::to_string(next.hi) + ": " + context());
    return Step::failed;
  }
  const Word16 after{next.lo + v->length, next.hi + 1};
  if (v->state == kSkip) {
    cas16(&group->next, next, after);
    return Step::moved;
  }
  const std::uint64_t code = key_code_of(*seg, next.lo, *v);
  const std::uint64_t holder = holder_of(code);
  const bool may = may_take(code, holder);
  const bool acquires = fresh(code, holder);
  if (acquires && may && !may_acquire) return Step::shared;  // left for another member
  if (may) {
    announce(make_run(next.lo, 1));
    if (!cas16(&group->next, next, after)) {
      retract();
      return Step::moved;
    }
    hold_taken(next.lo, 1, after.lo);
    held_key[(tail - 1) % kMaxUnacked] = code;
    hold_key(seg->keys(group_index), code, member_tag);
    acquired += acquires ? 1 : 0;
    found[found_n] = Found{next.lo, *v, after.lo, 1};
    handed[found_n++] = Handed{tail - 1, false, 0, 0};
    return Step::took;
  }
  // Parked in the redelivery list.
  std::atomic<std::uint64_t>* entry = nullptr;
  if (!park_room(&entry)) return Step::full;
  const std::uint64_t run = make_run(next.lo, 1);
  group->redeliver_count.fetch_add(1);  // first: the count may be high for a moment, never low
  entry->store(run);                    // (before the cursor passes it: a producer's scan sees one or the other)
  test_point(TestPoint::key_parked);
  if (!cas16(&group->next, next, after)) {  // moved by a reset: not ours to park
    std::uint64_t mine = run;
    if (entry->compare_exchange_strong(mine, 0)) group->redeliver_count.fetch_sub(1);
  }
  return Step::moved;
}

// Whether take_keyed would find something now.
bool Consumer::State::keyed_ready() {
  KeyLock lock(*seg, group_index, kKeyTakeWait);
  if (!lock) return false;  // (the wait looks again)
  gather_parked();
  if (first_eligible()) return true;
  const std::uint64_t next = load_half(group->next.lo);
  auto v = read_record(*seg, next);
  if (!v || v->state == kPad || v->state == kSkip) return true;
  if (v->state != kCommitted) return false;
  const std::uint64_t code = key_code_of(*seg, next, *v);
  return may_take(code, holder_of(code)) || park_room(nullptr);  // taken or parked; else it waits for an ack
}

}  // namespace mq
