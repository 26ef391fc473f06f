// Group table slow paths: the table lock, creating/moving groups, member slots, dead-member recovery, and the
// producers' limit scan. The orderings that make the lock-free scan safe are explained in libmq/doc/design.md
// ("Back-pressure" and "Redelivery").
#include "groups.hpp"

#include <sched.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "atomic16.hpp"
#include "keys.hpp"
#include "liveness.hpp"
#include "log.hpp"
#include "membarrier.hpp"
#include "test_point.hpp"

namespace mq::detail {

std::string group_name(const GroupBlock& g) {
  return std::string(g.name, std::min<std::size_t>(g.name_len, kNameBytes - 1));
}

namespace {

// The rare side of a plain writer's handover (an exclusive producer's tail, a lone member's cursor), after the caller
// changed the word the writer re-checks: a barrier on every CPU running a registered process, then a wait while
// `in_flight()` (the writer's announced claim or take sits exactly at the word it moves: announced before the
// barrier, its store not seen yet). Not waited for: a writer whose slot `owner_word` no longer holds `owner`, or who
// is confirmed dead (its store never comes). Errc::busy after TableLock::kTableLockWait (a writer stopped there).
template <class InFlight>
Result<void> wait_out_plain_writer(const Segment& seg, const std::atomic<std::uint64_t>& owner_word,
                                   std::uint64_t owner, InFlight in_flight, const std::string& who) {
  if (owner == 0) return {};
  if (!barrier_all_processes())
    return Error(Errc::io, std::string("membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) failed: ") + std::strerror(errno) +
                               ": topic=" + seg.name());
  test_point(TestPoint::handover_fenced);
  const auto deadline = std::chrono::steady_clock::now() + TableLock::kTableLockWait;
  for (unsigned spins = 1; in_flight(); ++spins) {
    if (spins % 1024 != 0) continue;  // its few instructions are long over after this many looks
    if (owner_word.load() != owner || owner_dead(owner)) return {};
    if (std::chrono::steady_clock::now() > deadline)
      return Error(Errc::busy, who + " (pid " + std::to_string(owner_pid(owner)) +
                                   ") is stopped between announcing a claim or take and making it: topic=" +
                                   seg.name());
    std::this_thread::yield();
  }
  return {};
}

}  // namespace

void elect_active(GroupBlock& block) {
  if (load_ordering(block) != Ordering::exclusive) return;
  const auto live = [&](std::uint64_t tag) {
    if (tag == 0 || tag > kMaxMembers) return false;
    const std::uint64_t owner = block.members[tag - 1].owner.load();
    return owner != 0 && owner != kOrphanOwner && !owner_dead(owner);
  };
  if (live(block.active.load())) return;
  std::uint64_t next = kNoActive;
  for (std::uint64_t tag = 1; tag <= kMaxMembers && next == kNoActive; ++tag)
    if (live(tag)) next = tag;
  block.active.store(next);
}

namespace {

// Makes `tag` (index + 1, or 0) the group's lone member. The word's generation moves with it, so a take the lone
// member began before fails its check and goes by CAS; then a barrier on every CPU running a registered process, and
// a wait while that member's announced take sits exactly at the cursor (announced before the barrier, its store not
// seen yet). After that no plain store of its can erase what the caller writes. libmq/doc/design.md, "Lone members".
Result<void> set_lone(const Segment& seg, GroupBlock& block, std::uint64_t tag) {
  const std::uint64_t old = block.lone.load();
  block.lone.store(((old & ~kLoneTagMask) + kLoneGeneration) | tag);
  const std::uint64_t was = old & kLoneTagMask;
  if (was == 0 || was > kMaxMembers) return {};
  const MemberSlot& slot = block.members[was - 1];
  const auto taking = [&] {
    const std::uint64_t pending = slot.pending.load();  // before the cursor, as bump_epoch's hand_over
    return pending != 0 && run_position(pending) == load_half(block.next.lo);
  };
  return wait_out_plain_writer(seg, slot.owner, slot.owner.load(), taking,
                               "the lone member of group " + group_name(block));
}

// Moves the group's cursor (REQUIRES: the table lock, the group `moving`): its lone member, if any, is handed over
// first, and the generation moves again after, so a take that read the cursor during the move fails its check.
Result<void> store_next(const Segment& seg, GroupBlock& block, Word16 to) {
  if (auto quiet = set_lone(seg, block, block.lone.load() & kLoneTagMask); !quiet) return quiet;
  Word16 seen{load_half(block.next.lo), load_half(block.next.hi)};
  while (!cas16(&block.next, seen, to)) {
  }
  block.lone.fetch_add(kLoneGeneration);
  return {};
}

// After a member joined or left (REQUIRES: the table lock): one member alone, whose process can, takes by plain
// store; any other count of members by CAS.
Result<void> choose_lone(const Segment& seg, GroupBlock& block) {
  std::size_t members = 0;
  std::uint64_t tag = 0;
  for (std::size_t m = 0; m < kMaxMembers; ++m) {
    if (block.members[m].owner.load() == 0) continue;
    ++members;
    tag = block.members[m].plain.load() == 1 ? m + 1 : 0;
  }
  if (members != 1) tag = 0;
  if ((block.lone.load() & kLoneTagMask) == tag) return {};
  return set_lone(seg, block, tag);
}

// After stealing the lock from a dead holder: finish what it may have left half done.
void repair_after_dead_holder(const Segment& seg) {
  for (std::size_t g = 0; g < kMaxGroups; ++g)  // a release cut short
    if (seg.group(g).state.load() != kGroupFree) elect_active(seg.group(g));
  // A recoverer that died holding producers back: release them (the dead claim it was finishing keeps its intent,
  // and the next recovery finishes it).
  seg.header().hold.store(0);
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    auto& block = seg.group(g);
    // A recovery cut short: make the generation even again. Entries it had copied stay in the redelivery list and
    // the dead member keeps its slot, so a later recovery may hand a record out twice: at-least-once, never lost.
    if ((block.gen.load() & 1) != 0) block.gen.fetch_add(1);
    if (block.state.load() == kGroupMoving) {
      // The dead mover may have died before bump_epoch: producers may still cache limits that ignore this group.
      // (Only a stopped exclusive producer mid-claim fails it: the group stays moving for the next lock holder.)
      if (!bump_epoch(seg) || !store_next(seg, block, earliest(seg))) continue;
      block.mover.store(0);
      block.state.store(kGroupActive);
    }
  }
}

}  // namespace

TableLock::TableLock(const Segment& seg) : seg_(seg) {
  auto& lock = seg.header().table_lock;
  const std::uint64_t self = self_owner();
  const auto deadline = std::chrono::steady_clock::now() + kTableLockWait;
  for (unsigned spins = 0;; ++spins) {
    std::uint64_t holder = 0;
    if (lock.compare_exchange_strong(holder, self)) {
      held_ = true;
      return;
    }
    holder_ = holder;
    if (spins % 1024 == 1023) {
      if (holder != self && owner_dead(holder) && lock.compare_exchange_strong(holder, self)) {
        held_ = true;
        repair_after_dead_holder(seg);
        return;
      }
      if (std::chrono::steady_clock::now() >= deadline) return;
    }
    if (spins < 64) continue;
    if (spins < 4096) sched_yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

bool table_lock_held(const Segment& seg) noexcept {
  return seg.header().table_lock.load(std::memory_order_relaxed) == self_owner();
}

TableLock::~TableLock() {
  if (!held_) return;
  seg_.header().table_lock.store(0);
  // A group moved, left or was deleted, a dead member's runs were freed or handed to the redelivery list, a hold
  // ended: producers waiting for room and members asleep on the topic's word look again. No publish announces
  // these; a member parked by an event loop (a futex wait it does not leave by itself) would otherwise sleep on a
  // redelivery or a reset until the next publish, even when its own slow path made the change.
  wake_producers(seg_);
  wake_consumers(seg_);
}

Error TableLock::error() const {
  return Error(Errc::busy, "the topic's group table is locked by live pid " + std::to_string(owner_pid(holder_)) +
                               " (stopped?): topic=" + seg_.name());
}

std::optional<std::size_t> find_group(const Segment& seg, std::string_view name) {
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    const auto& block = seg.group(g);
    if (block.state.load(std::memory_order_acquire) == kGroupFree) continue;
    if (block.name_len == name.size() && std::memcmp(block.name, name.data(), name.size()) == 0) return g;
  }
  return std::nullopt;
}

namespace {

// bump_epoch() with an exclusive producer that claims by plain stores (its store of the tail would erase a CAS of
// ours): after the epoch's increment, a barrier on every CPU running a registered process, then a wait while the
// producer's announced claim sits exactly at the tail (announced before the barrier, its tail store not seen yet:
// it may have loaded the old epoch). Its intent is loaded before the tail: a claim whose intent was overwritten
// (committed, or the next one announced) stored the tail before that. libmq/doc/design.md, "Exclusive producers".
Result<Word16> hand_over(const Segment& seg, std::size_t index) {
  auto& h = seg.header();
  const ProducerSlot& slot = seg.producer(index);
  const auto claiming = [&] { return slot.intent_pos.load() == load_tail(h.tail).lo; };
  if (auto quiet = wait_out_plain_writer(seg, slot.owner, h.exclusive_owner.load(), claiming,
                                         "the exclusive producer");
      !quiet)
    return quiet.error();
  // Later than the tail the wait saw only by claims made since, which saw the new epoch.
  const Word16 t = load_tail(h.tail);
  return Word16{t.lo, t.hi & kOffsetMask};
}

}  // namespace

Result<Word16> bump_epoch(const Segment& seg) {
  seg.header().group_epoch.fetch_add(1);  // before the tail CAS: see reserve() in producer.cpp
  const std::uint64_t exclusive = seg.header().exclusive_slot.load();
  const std::uint64_t index = (exclusive & ~kExclusivePlain) - 1;  // a scribbled index is no plain producer's
  if ((exclusive & kExclusivePlain) != 0 && index < kMaxProducers) return hand_over(seg, index);
  Word16 seen{load_half(seg.header().tail.lo), load_half(seg.header().tail.hi)};
  while (!cas16(&seg.header().tail, seen, Word16{seen.lo, seen.hi + (std::uint64_t{1} << kEpochShift)})) {
  }
  return Word16{seen.lo, seen.hi & kOffsetMask};
}

std::optional<Word16> locate_offset(const Segment& seg, Offset offset) {
  Word16 at = earliest(seg);
  const Word16 tail = tail_snapshot(seg);
  if (offset < at.hi || offset > tail.hi) return std::nullopt;
  while (at.hi < offset) {
    if (at.lo >= tail.lo) return std::nullopt;
    auto v = read_record(seg, at.lo);
    if (!v || v->state == kEmpty || v->state == kNone || v->state == kClaimed) return std::nullopt;
    if (v->state != kPad) {
      if (v->offset != at.hi) return std::nullopt;
      ++at.hi;
    }
    at.lo += v->length;
  }
  return at;
}

Result<void> move_group_locked(const Segment& seg, std::size_t g, std::variant<Start, Offset> to) {
  assert(table_lock_held(seg));
  auto& block = seg.group(g);
  // Producers treat a moving group as "wait": none can pass it while we pick its new position.
  block.mover.store(self_owner());
  const std::uint32_t previous = block.state.exchange(kGroupMoving);
  const auto bumped = bump_epoch(seg);
  if (!bumped) {
    block.mover.store(0);
    block.state.store(previous == kGroupFree ? kGroupActive : previous);
    return bumped.error();
  }
  const Word16 tail = *bumped;
  Word16 target = tail;
  Result<void> result;
  if (std::holds_alternative<Start>(to)) {
    if (std::get<Start>(to) == Start::earliest) target = earliest(seg);
  } else if (auto found = locate_offset(seg, std::get<Offset>(to))) {
    target = *found;
  } else {
    result = Error(Errc::invalid_argument, "offset " + std::to_string(std::get<Offset>(to)) +
                                               " is not held: topic=" + seg.name() + " group=" + group_name(block));
  }
  if (result) result = store_next(seg, block, target);
  if (result) {
    // The group restarts at target: nothing older is owed. A member may be taking an entry right now (CAS to 0,
    // then fetch_sub): uncount only what this exchange removed, or the count wraps to 2^64 - 1. Records waiting for
    // a retry go the same way; an entry a member is filling stays its own (it acks the record after).
    for (auto& r : block.redeliver)
      if (r.exchange(0) != 0) block.redeliver_count.fetch_sub(1);
    drop_retries_before(seg, g, kNone);
  }
  block.mover.store(0);
  block.state.store(previous == kGroupFree ? kGroupActive : previous);
  return result;
}

void store_retry_policy(GroupBlock& block, const RetryPolicy& r) {
  block.retry.max_attempts.store(r.max_attempts);
  block.retry.backoff_ms.store(static_cast<std::uint32_t>(r.backoff.count()));
  block.retry.max_backoff_ms.store(static_cast<std::uint32_t>(r.max_backoff.count()));
  block.retry.factor_milli.store(static_cast<std::uint32_t>(r.factor * 1000.0 + 0.5));
  block.retry.jitter_milli.store(static_cast<std::uint32_t>(r.jitter * 1000.0 + 0.5));
}

RetryPolicy load_retry_policy(const GroupBlock& block) {
  RetryPolicy r;
  const auto& w = block.retry;
  const auto max_backoff = static_cast<std::int64_t>(w.max_backoff_ms.load(std::memory_order_relaxed));
  r.max_attempts = std::clamp<std::uint32_t>(w.max_attempts.load(std::memory_order_relaxed), 1, kMaxAttempts);
  r.max_backoff = std::chrono::milliseconds(std::min<std::int64_t>(max_backoff, kMaxBackoff.count()));
  r.backoff = std::min(r.max_backoff, std::chrono::milliseconds(w.backoff_ms.load(std::memory_order_relaxed)));
  r.factor = std::clamp(w.factor_milli.load(std::memory_order_relaxed) / 1000.0, 1.0, 100.0);
  r.jitter = std::clamp(w.jitter_milli.load(std::memory_order_relaxed) / 1000.0, 0.0, 1.0);
  return r;
}

void drop_retries_before(const Segment& seg, std::size_t g, std::uint64_t position) {
  auto& block = seg.group(g);
  for (auto& e : seg.retries(g).entries) {
    std::uint64_t v = e.run.load();
    if (retry_waits(v) && run_position(v) < position && e.run.compare_exchange_strong(v, 0))
      block.retry_count.fetch_sub(1);
  }
  resync_retry_count(seg, g);  // (a scribbled entry removed here may not have been counted)
}

std::uint64_t count_retries(const Segment& seg, std::size_t g) {
  std::uint64_t n = 0;
  for (const auto& e : seg.retries(g).entries) n += retry_waits(e.run.load()) ? 1 : 0;
  return n;
}

void resync_retry_count(const Segment& seg, std::size_t g) {
  auto& count = seg.group(g).retry_count;
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::uint64_t seen = count.load();
    const std::uint64_t held = count_retries(seg, g);  // after `seen`: a nack or take meanwhile fails the CAS
    if (seen == held || count.compare_exchange_strong(seen, held)) return;
  }
}

Ordering load_ordering(const GroupBlock& block) {
  const std::uint32_t v = block.retry.ordering.load(std::memory_order_relaxed);
  return v <= static_cast<std::uint32_t>(Ordering::exclusive) ? static_cast<Ordering>(v) : Ordering::none;
}

Result<std::size_t> create_group_locked(const Segment& seg, std::string_view name, Start start,
                                        const RetryPolicy& retry, Ordering ordering) {
  assert(table_lock_held(seg));
  if (ordering == Ordering::key && seg.policy() != Policy::block)
    return Error(Errc::invalid_argument, "key ordering needs a block topic (an overwrite topic's producers would "
                                         "overwrite records parked for their key): topic=" + seg.name() +
                                         " group=" + std::string(name));
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    auto& block = seg.group(g);
    if (block.state.load() != kGroupFree) continue;
    std::memset(block.name, 0, kNameBytes);
    std::memcpy(block.name, name.data(), name.size());
    block.name_len = static_cast<std::uint32_t>(name.size());
    block.gen.store(0);
    block.lone.store(0);
    for (auto& r : block.redeliver) r.store(0);
    block.redeliver_count.store(0);
    for (auto& e : seg.retries(g).entries) e.run.store(0);
    block.retry_count.store(0);
    seg.keys(g).lock.store(0);
    for (auto& k : seg.keys(g).keys) k.store(0);
    store_retry_policy(block, retry);
    block.retry.ordering.store(static_cast<std::uint32_t>(ordering));
    block.active.store(ordering == Ordering::exclusive ? kNoActive : 0);
    for (auto& m : block.members) {
      m.owner.store(0);
      m.pending.store(0);
      m.low.store(kNone);
      m.head.store(0);
      m.tail.store(0);
    }
    if (auto moved = move_group_locked(seg, g, start); !moved) return moved.error();
    return g;
  }
  return Error(Errc::limit, "no free consumer group slot: topic=" + seg.name() + " group=" + std::string(name) +
                                " max_groups=" + std::to_string(kMaxGroups));
}

Result<std::size_t> join_member_locked(const Segment& seg, std::size_t g) {
  assert(table_lock_held(seg));
  auto& block = seg.group(g);
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t m = 0; m < kMaxMembers; ++m) {
      auto& slot = block.members[m];
      if (slot.owner.load() != 0) continue;
      slot.pending.store(0);
      slot.low.store(kNone);
      const std::uint64_t t = slot.tail.load();
      slot.head.store(t);
      slot.delivered.store(0);
      slot.plain.store(plain_handover_possible() ? 1 : 0);
      slot.owner.store(self_owner());
      elect_active(block);  // the first member of an exclusive group takes; later ones stand by
      if (auto chosen = choose_lone(seg, block); !chosen) {  // a second member: the first hands over to CAS
        slot.owner.store(0);
        return chosen.error();
      }
      return m;
    }
    // Full: free the slots of members that are confirmed dead, then look once more.
    for (std::size_t m = 0; m < kMaxMembers; ++m) {
      const std::uint64_t owner = block.members[m].owner.load();
      if (owner != 0 && owner != self_owner() && owner_dead(owner)) release_member_locked(seg, g, m);
    }
  }
  return Error(Errc::limit, "consumer group is full: topic=" + seg.name() + " group=" + group_name(block) +
                                " max_members=" + std::to_string(kMaxMembers));
}

bool release_member_locked(const Segment& seg, std::size_t g, std::size_t m) {
  assert(table_lock_held(seg));
  auto& block = seg.group(g);
  auto& slot = block.members[m];
  std::uint64_t owed[kMaxUnacked + 1];
  std::atomic<std::uint64_t>* from[kMaxUnacked + 1];  // where each owed run sits in the dead member's slot
  std::size_t n = 0;
  const std::uint64_t head = slot.head.load();
  const std::uint64_t tail = slot.tail.load();
  const std::uint64_t held = std::min<std::uint64_t>(tail - head, kMaxUnacked);  // a corrupted count is clamped
  // A zero entry was moved already by a recoverer that died half-way through this (see below): not owed twice.
  for (std::uint64_t i = 0; i < held; ++i) {
    auto& entry = slot.held[(head + i) % kMaxUnacked];
    if (const std::uint64_t run = entry.load(); run != 0) {
      from[n] = &entry;
      owed[n++] = run;
    }
  }
  // A take cut short: the member may or may not have won the run. Hand it out again only if the group has passed
  // it and no member holds a run starting there (at-least-once: a duplicate is possible, a loss is not).
  const std::uint64_t pending = slot.pending.load();
  const auto starts_at = [](std::uint64_t run, std::uint64_t position) { return run_position(run) == position; };
  if (pending != 0 && run_position(pending) < load_half(block.next.lo) &&
      std::none_of(owed, owed + n, [&](std::uint64_t r) { return starts_at(r, run_position(pending)); })) {
    bool held_elsewhere = false;
    for (std::size_t other = 0; other < kMaxMembers; ++other) {
      if (other == m) continue;
      const auto& o = block.members[other];
      const std::uint64_t oh = o.head.load();
      const std::uint64_t n_held = std::min<std::uint64_t>(o.tail.load() - oh, kMaxUnacked);  // corrupted: clamped
      for (std::uint64_t i = 0; i < n_held && !held_elsewhere; ++i) {
        const std::uint64_t run = o.held[(oh + i) % kMaxUnacked].load();
        held_elsewhere = run != 0 && starts_at(run, run_position(pending));
      }
    }
    if (!held_elsewhere) {
      from[n] = &slot.pending;
      owed[n++] = pending;
    }
  }
  // Key ordering: members park records in the redelivery list under the group's key lock, so this takes it too,
  // and the keys the member held are counted again without it after.
  std::optional<KeyLock> keys;
  if (load_ordering(block) == Ordering::key) {
    keys.emplace(seg, g, TableLock::kTableLockWait);
    if (!*keys) return false;
  }
  std::size_t free_slots = 0;
  for (const auto& r : block.redeliver) free_slots += r.load() == 0 ? 1 : 0;
  if (free_slots < n) return false;

  block.gen.fetch_add(1);  // odd: producers rescan until the move below is complete
  std::size_t r = 0;
  for (std::size_t i = 0; i < n; ++i) {
    while (block.redeliver[r].load() != 0) ++r;
    block.redeliver_count.fetch_add(1);  // first: the count may be high for a moment, never low
    block.redeliver[r].store(owed[i]);
    // Moved: a recoverer that dies from here on and the one that finishes its work do not hand this run out again
    // (a live member may already have taken it from the redelivery list).
    from[i]->store(0);
    test_point(TestPoint::redelivery_moving);
  }
  // An entry of the retry table it was filling when it died: it still held that record (owed above). It may have
  // counted the entry already.
  for (auto& e : seg.retries(g).entries) {
    std::uint64_t filling = kRetryFilling | (m << 6);
    e.run.compare_exchange_strong(filling, 0);
  }
  resync_retry_count(seg, g);
  slot.pending.store(0);
  slot.head.store(tail);
  slot.low.store(kNone);
  const std::size_t bit = g * kMaxMembers + m;  // a member that died asleep must not keep producers waking
  seg.header().sleepers[bit / 64].fetch_and(~(std::uint64_t{1} << (bit % 64)));
  slot.owner.store(0);
  if (keys) rebuild_keys(seg, g);
  elect_active(block);  // it took for an exclusive group: a live standby takes over
  block.gen.fetch_add(1);  // even again
  (void)choose_lone(seg, block);  // the member that remains, if alone, takes by plain store (nothing to wait for)
  return true;
}

std::size_t recover_dead_members(const Segment& seg) {
  // Look without the lock first: the common answer is "nobody died".
  bool any = false;
  for (std::size_t g = 0; g < kMaxGroups && !any; ++g) {
    const auto& block = seg.group(g);
    if (block.state.load() == kGroupFree) continue;
    if (block.state.load() == kGroupMoving && owner_dead(block.mover.load())) any = true;
    for (const auto& slot : block.members) {
      const std::uint64_t owner = slot.owner.load();
      if (owner != 0 && owner != self_owner() && owner_dead(owner)) {
        any = true;  // one is enough to take the lock; each owner_dead() reads /proc
        break;
      }
    }
  }
  if (!any) return 0;
  TableLock lock(seg);
  if (!lock) return 0;
  std::size_t recovered = 0;
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    if (seg.group(g).state.load() == kGroupFree) continue;
    for (std::size_t m = 0; m < kMaxMembers; ++m) {
      const std::uint64_t owner = seg.group(g).members[m].owner.load();
      if (owner != 0 && owner != self_owner() && owner_dead(owner) && release_member_locked(seg, g, m)) ++recovered;
    }
  }
  return recovered;
}

std::optional<std::uint64_t> group_low(const Segment& seg, std::size_t g) {
  const auto& block = seg.group(g);
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::uint64_t gen = block.gen.load();
    if ((gen & 1) != 0) return std::nullopt;
    // Order matters: next first, then redeliveries and retries, then members (a member announces `low` before it
    // takes). A nack parks its record in the retry table, adds 2 to `gen` and only then acks it (raising its `low`):
    // a scan that saw the raised `low` but not the entry sees `gen` changed (libmq/doc/design.md, "Retries").
    std::uint64_t low = load_half(block.next.lo, std::memory_order_seq_cst);
    if (block.redeliver_count.load() != 0)
      for (const auto& r : block.redeliver)
        if (const std::uint64_t v = r.load(); v != 0) low = std::min(low, run_position(v));
    for (const auto& e : seg.retries(g).entries)  // whatever retry_count says: it may be low for a moment
      if (const std::uint64_t v = e.run.load(); run_count(v) != 0) low = std::min(low, run_position(v));
    for (const auto& slot : block.members) low = std::min(low, slot.low.load());
    if (block.gen.load() == gen) return low;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> producer_limit(const Segment& seg) {
  std::uint64_t limit = kNone;
  if (const std::uint64_t hold = seg.header().hold.load(); hold != 0) limit = hold - 1 + seg.capacity();
  if (seg.policy() == Policy::overwrite) return limit;  // groups never hold an overwrite topic's producers back
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    const std::uint32_t state = seg.group(g).state.load();
    if (state == kGroupFree) continue;
    if (state == kGroupMoving) return std::nullopt;
    const auto low = group_low(seg, g);
    if (!low) return std::nullopt;
    limit = std::min(limit, *low + seg.capacity());
  }
  return limit;
}

}  // namespace mq::detail
