// The consuming path: a member takes a run of records at its group's cursor (one record for poll, up to kMaxBatch for
// poll_batch) with one 16-byte CAS on {position, offset}, after announcing the run in its slot (`pending`, `low`) so
// that neither a producer nor a recoverer can lose it, and holds the run as one entry until acked. Redeliveries of
// dead members' runs, then nacked records whose retry is due, are drained before new records; a nack parks a record
// in the group's retry table or dead-letters it (consumer_retry.cpp); key ordering's side: consumer_keys.cpp; the
// state they share: consumer_state.hpp. How a run is encoded: layout.hpp (make_run).
#include "consumer_state.hpp"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mq {

// A run from the redelivery list (a dead or closed member's), held whole.
Take Consumer::State::take_redelivered(Failure&) {
  for (auto& entry : group->redeliver) {
    std::uint64_t v = entry.load(std::memory_order_acquire);
    if (v == 0) continue;
    if (run_count(v) == 0 || (run_position(v) & 7) != 0) continue;  // never written so: a corrupted entry, left
    announce(v);
    if (!entry.compare_exchange_strong(v, 0)) {
      retract();
      continue;
    }
    group->redeliver_count.fetch_sub(1);
    hold(run_position(v), run_count(v), true);
    return Take::got;
  }
  return Take::empty;
}

// A record from the retry table whose delay has passed (the earliest due first), held as a run of one. Notes in
// `next_due` when the next one waiting is due. An entry due further ahead than the longest backoff is due now: the
// clock was set back (or the entry scribbled), and a record must not wait for that.
Consumer::State::DueRetry Consumer::State::scan_retries(std::int64_t now) {
  DueRetry found;
  std::int64_t best_due = kNever;
  for (auto& e : seg->retries(group_index).entries) {
    const std::uint64_t v = e.run.load(std::memory_order_acquire);
    if (!retry_waits(v)) continue;
    const std::int64_t due = effective_due(e.due_ns.load(std::memory_order_relaxed), now);
    if (due > now) {
      found.next_due = std::min(found.next_due, due);
    } else if (due < best_due) {
      found.entry = &e;
      found.run = v;
      best_due = due;
    }
  }
  return found;
}

Take Consumer::State::take_retry() {
  const std::int64_t now = realtime_ns();
  for (;;) {
    DueRetry due = scan_retries(now);
    next_due = due.next_due;
    if (due.entry == nullptr) return Take::empty;
    const std::int64_t first = due.entry->first_ns.load(std::memory_order_relaxed);
    const std::uint64_t position = run_position(due.run);
    announce(make_run(position, 1));
    if (!due.entry->run.compare_exchange_strong(due.run, 0)) {  // another member took it first: look again
      retract();
      continue;
    }
    group->retry_count.fetch_sub(1);
    hold(position, 1, true, static_cast<std::uint32_t>(run_count(due.run)), first);
    return Take::got;
  }
}

// nack with the retry table full: takes the waiting record due first as take_retry would, but into this member's
// hands without freeing its entry (marked `mark`: being filled by us), which `entry` then names for the nacked
// record. So a member holding a record always gets room for it once any waiting record is due, whatever the other
// members hold. False (nothing changed) when none is due, or this member has no room to hold one more run, or is
// still handing out a run.
bool Consumer::State::swap_with_due(std::uint64_t mark, RetryEntry*& entry) {
  if (run_left != 0 || tail - head >= kMaxUnacked) return false;
  const std::int64_t now = realtime_ns();
  for (;;) {
    DueRetry due = scan_retries(now);
    if (due.entry == nullptr) return false;
    const std::uint64_t position = run_position(due.run);
    announce(make_run(position, 1));
    if (!due.entry->run.compare_exchange_strong(due.run, mark)) {
      retract();
      continue;
    }
    hold(position, 1, true, static_cast<std::uint32_t>(run_count(due.run)),
         due.entry->first_ns.load(std::memory_order_relaxed));
    entry = due.entry;
    return true;
  }
}

Take Consumer::State::resync(Word16 from, Failure& err) {
  const Word16 to = earliest(*seg);
  if (to.lo <= from.lo) return Take::empty;
  if (!cas16(&group->next, from, to)) return Take::empty;  // another member moved it: look again
  const std::uint64_t lost = to.hi - from.hi;
  if (lost == 0) return Take::empty;  // only a pad lay between: nothing was lost, look again from `to`
  err = Error(Errc::lost, "reader lapped by producers: " + context() + " lost=" + std::to_string(lost), lost);
  return Take::failed;
}

// Takes the run at the group's cursor: up to `max` committed records and the skip records (and pads) among and
// before them, with one CAS, and holds it. A run of skip records only is stepped over without holding anything.
Take Consumer::State::take_run(std::size_t max, Failure& err) {
  const bool overwrite = seg->policy() == Policy::overwrite;
  for (;;) {
    const std::uint64_t lone = group->lone.load(std::memory_order_acquire);  // before the cursor: see advance()
    Word16 next{load_half(group->next.lo), load_half(group->next.hi)};
    if (overwrite && tail_position(*seg) > next.lo + seg->capacity()) {
      const Take t = resync(next, err);
      if (t == Take::failed) return t;
      continue;
    }
    std::uint64_t pos = next.lo;
    std::uint64_t count = 0;      // records in the run (committed and skip)
    std::size_t committed = 0;
    bool retry = false;
    found_n = 0;
    while (committed < max && count < kMaxBatch) {
      // A backlog is read from memory, not cache: ask for the two lines (a small record) a few records ahead.
      // (Addresses, not record_at(): a corrupted cursor may be misaligned, and is reported by read_record below.)
      __builtin_prefetch(seg->ring() + ((pos + kPrefetchAhead) & seg->mask()));
      __builtin_prefetch(seg->ring() + ((pos + kPrefetchAhead + kCacheLine) & seg->mask()));
      if (RecordView plain; read_plain(*seg, Word16{pos, next.hi + count}, plain)) {  // the common record, inline
        const std::uint64_t position = pos;
        ++count;
        ++committed;
        pos += plain.length;
        found[found_n++] = Found{position, plain, pos, count};
        continue;
      }
      std::uint64_t seq = 0;
      auto v = read_record(*seg, pos, &seq);
      if (!v) {
        // Our snapshot of `next` may be stale: other members took and acked past it, and a producer is writing a
        // later lap there (its header fields before its seq). Only a record at the group's current `next` is corrupt.
        if (const Word16 now = load16(&group->next); now.lo != next.lo || now.hi != next.hi) retry = true;
        else if (overwrite && tail_position(*seg) > next.lo + seg->capacity()) retry = true;  // torn by a lap
        else if (count == 0) {
          err = std::move(v).error();
          return Take::failed;
        }
        break;  // a bad record further on: the run ends before it (the next take reports it, if it is real)
      }
      if (v->state == kEmpty || v->state == kClaimed || v->state == kNone) {
        // At the tail: the ring still holds an older lap's bytes (any value) there: not written yet.
        if (count == 0) stuck_at = pos;
        if (pos == next.lo) {  // the group's cursor itself: the next look may stop at nothing_new()
          empty_pos = pos;
          empty_seq = seq;
        }
        break;
      }
      if (v->state == kPad) {
        pos += v->length;
        continue;
      }
      if (v->offset != next.hi + count) {
        // The two halves of `next` were loaded apart: another member may have moved it in between.
        if (const Word16 now = load16(&group->next); now.lo != next.lo || now.hi != next.hi) retry = true;
        else if (overwrite && tail_position(*seg) > next.lo + seg->capacity()) retry = true;
        else if (count == 0) {
          err = Error(Errc::bad_segment, "record offset " + std::to_string(v->offset) + " where the group expects " +
                                             std::to_string(next.hi) + ": " + context());
          return Take::failed;
        }
        break;
      }
      const std::uint64_t position = pos;
      ++count;
      pos += v->length;
      if (v->state == kCommitted) {
        ++committed;
        found[found_n++] = Found{position, *v, pos, count};
      }
    }
    if (retry) continue;
    if (count == 0) {
      if (pos == next.lo) return Take::empty;
      cas16(&group->next, next, Word16{pos, next.hi});  // only pads: step over them
      continue;
    }
    const Word16 after{pos, next.hi + count};
    if (committed == 0) {  // skip records only: step over them, hold nothing
      cas16(&group->next, next, after);
      continue;
    }
    announce(make_run(next.lo, count));
    if (!advance(next, after, lone)) {
      retract();
      continue;
    }
    hold_taken(next.lo, count, pos);
    found[found_n - 1].after = pos;
    found[found_n - 1].done = count;
    return Take::got;
  }
}


// Key ordering's take, under the group's key lock: parked records this member may take first (earliest first), then
// records at the cursor (parking the ones it may not take), up to `max` records or kMaxUnacked held; each record is
// held as a run of one, so that its key is released when it is acked.
template <class Slots>
Take Consumer::State::take_keyed(std::size_t max, Slots&& slots_for, Failure& err) {
  found_n = 0;
  {
    KeyLock lock(*seg, group_index, kKeyTakeWait);
    if (!lock) return Take::empty;
    // Shared keys: while the group has other members, one take gives this member one key it did not hold at most
    // (with the records of keys it holds and those without a key), so that one member's batch does not take every
    // key while the others idle. A take's first record always may: every take makes progress.
    const bool share = others_live();
    std::size_t acquired = 0;
    while (found_n < max && tail - head < kMaxUnacked) {
      const bool may_acquire = !share || acquired == 0;
      gather_parked();
      if (const auto i = first_eligible()) {
        const bool acquires = fresh(parked[*i].code, holder_of(parked[*i].code));
        if (acquires && !may_acquire) break;
        if (take_parked(parked[*i])) acquired += acquires ? 1 : 0;
        continue;
      }
      const Step step = take_at_cursor(err, may_acquire, acquired);
      if (step == Step::took || step == Step::moved) continue;
      if (step == Step::failed && found_n == 0) return Take::failed;
      err.reset();  // (what it found is handed out; the next take meets the failure again and reports it)
      break;
    }
  }
  if (found_n == 0) return Take::empty;
  Message* const out = slots_for(found_n);
  for (std::size_t i = 0; i < found_n; ++i) {
    const Found& f = found[i];
    run_redelivered = handed[i].redelivered;
    run_failures = handed[i].failures;
    run_first_failure = handed[i].first_failure;
    fill(out[i], handed[i].run, f.position, f.view, seg->ring() + (f.position & seg->mask()), f.after, f.done);
  }
  handed_out(found_n, handed[found_n - 1].run, found[found_n - 1].after, 1);
  return Take::got;
}

// Reads up to `max` committed records of the run being handed out (a redelivered run, handed out in parts) into
// `found`. Block topics: a held record cannot be overwritten, so an unreadable one is corruption. Overwrite
// topics: a lapped run ends there, and what is left of it is lost.
Take Consumer::State::collect(std::size_t max, Failure& err) {
  const bool overwrite = seg->policy() == Policy::overwrite;
  found_n = 0;
  bool unreadable = false;
  // While records remain: the next one, then (once `max` are found) the skip records right after the last, which
  // belong to it (acking it acks them): nothing is then left waiting for a record that never comes.
  while (run_left != 0) {
    auto v = read_record(*seg, run_pos);
    if (!v || !(v->state == kCommitted || v->state == kSkip || v->state == kPad)) {
      if (!v && !overwrite) err = std::move(v).error();
      unreadable = true;
      break;
    }
    if (v->state == kPad) {
      run_pos += v->length;
      continue;
    }
    if (v->state == kCommitted && found_n == max) break;
    const std::uint64_t position = run_pos;
    run_pos += v->length;
    --run_left;
    ++run_done;
    if (v->state == kCommitted) {
      found[found_n++] = Found{position, *v, run_pos, run_done};
    } else if (found_n != 0) {
      found[found_n - 1].after = run_pos;
      found[found_n - 1].done = run_done;
    }
  }
  if (unreadable && !overwrite) {
    if (!err) err = Error(Errc::bad_segment, "a held record is unreadable at position " + std::to_string(run_pos) +
                                                 ": " + context());
    return Take::failed;
  }
  if (unreadable) {  // lapped before we read it: the rest of the run is gone, and so is what we found of it
    const std::uint64_t lost = found_n + run_left;
    run_done -= found_n;
    found_n = 0;
    cut_run();
    err = Error(Errc::lost, "records overwritten before they were read: " + context() + " lost=" + std::to_string(lost),
                lost);
    return Take::failed;
  }
  if (found_n == 0) {
    if (run_left == 0 && run_done == at(tail - 1).count) {  // a run of skip records only: nothing to hold
      --tail;
      slot->tail.store(tail, std::memory_order_release);
      update_low();
    }
    return Take::empty;
  }
  return Take::got;
}

// Hands out the records in `found` into the n Messages slots_for(n) gives. Block topics: views into the ring.
// Overwrite topics: copies, checked after the copy against the tail; if a claim reached any of them, the lot and the
// rest of the run are lost (the group's cursor is past them): exactly that many, the count the reader is told.
template <class Slots>
Take Consumer::State::emit(Slots&& slots_for, Failure& err) {
  const std::size_t n = found_n;
  const bool overwrite = seg->policy() == Policy::overwrite;
  if (overwrite) {
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i) bytes += found[i].view.length;
    if (copy.size() < bytes) copy.resize(bytes);  // no zero-fill of what the copy overwrites
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(copy.data() + at, seg->ring() + (found[i].position & seg->mask()), found[i].view.length);
      at += found[i].view.length;
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    // Positions grow along the run, so if any record was lapped, the first was.
    if (tail_position(*seg) > found[0].position + seg->capacity()) {
      const std::uint64_t lost = n + run_left;
      run_done -= found[n - 1].done - (found[0].done - 1);  // nothing of this lot was handed out
      run_left = 0;
      found_n = 0;
      cut_run();
      err = Error(Errc::lost, "records overwritten while read: " + context() + " lost=" + std::to_string(lost), lost);
      return Take::failed;
    }
  }
  const std::uint64_t run = tail - 1;
  std::size_t copied = 0;
  Message* const out = slots_for(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Found& f = found[i];
    const RecordView& v = f.view;
    const std::byte* base = seg->ring() + (f.position & seg->mask());
    if (overwrite) {
      base = copy.data() + copied;
      copied += v.length;
    }
    fill(out[i], run, f.position, v, base, f.after, f.done);
  }
  handed_out(n, run, found[n - 1].after, found[n - 1].done);
  return Take::got;
}

// The next records for this member, up to `max`: the rest of the run being handed out, else a redelivered run, else
// a new run at the group's cursor.
template <class Slots>
Take Consumer::State::next(std::size_t max, Slots&& slots_for, Failure& err) {
  for (;;) {
    if (run_left != 0) {
      const Take t = collect(max, err);
      if (t == Take::got) return emit(slots_for, err);
      if (t == Take::failed) return t;
      continue;  // skip records only: the run is done
    }
    if (tail - head >= kMaxUnacked) {
      err = Error(Errc::limit, "consumer holds " + std::to_string(kMaxUnacked) + " unacked runs; ack first: " +
                                   context());
      return Take::failed;
    }
    if (standing_by()) return Take::empty;
    if (nothing_new()) {
      stuck_at = empty_pos;  // as take_run would find it: the slow path still sees a claim that never commits
      return Take::empty;
    }
    if (keyed) return take_keyed(max, slots_for, err);
    // A full retry table: no new records, and no redeliveries either, until one of its records comes due and is
    // taken (back-pressure, as a full ring gives producers). In an exclusive group a record waiting for its retry
    // holds back those after it (offset order).
    next_due = kNever;  // (take_retry notes the next one, if any waits)
    const std::uint64_t waiting = group->retry_count.load(std::memory_order_relaxed);
    if (waiting < kRetrySlots && group->redeliver_count.load(std::memory_order_relaxed) != 0) {
      const Take t = take_redelivered(err);
      if (t == Take::got) continue;  // collected from the run in the next round
      if (t == Take::failed) return t;
    }
    if (waiting != 0) {
      if (take_retry() == Take::got) continue;
      if (waiting >= kRetrySlots || exclusive) return Take::empty;
    }
    const Take t = take_run(max, err);
    if (t != Take::got) return t;
    return emit(slots_for, err);
  }
}

// Whether a take would find something now (wait_ready), without taking it.
bool Consumer::State::ready() {
  if (run_left != 0) return true;
  if (standing_by()) return false;
  if (keyed) return !nothing_new() && keyed_ready();
  if (group->redeliver_count.load(std::memory_order_relaxed) != 0 &&
      group->retry_count.load(std::memory_order_relaxed) < kRetrySlots)  // (see next())
    return true;
  next_due = kNever;
  if (group->retry_count.load(std::memory_order_relaxed) != 0) {
    const DueRetry due = scan_retries(realtime_ns());
    next_due = due.next_due;
    if (due.entry != nullptr) return true;
    if (group->retry_count.load(std::memory_order_relaxed) >= kRetrySlots || exclusive) return false;  // (next())
  }
  const std::uint64_t next = load_half(group->next.lo);
  if (seg->policy() == Policy::overwrite && tail_position(*seg) > next + seg->capacity()) return true;
  auto v = read_record(*seg, next);
  return !v || v->state == kCommitted || v->state == kSkip || v->state == kPad;
}

void Consumer::State::slow_path(std::int64_t now) {
  if (now < next_slow_check) return;
  next_slow_check = now + kSleepSliceNs;
  if (stuck_at != kNone && tail_position(*seg) > stuck_at) recover_stuck(*seg, stuck_at);
  resync_retry_count(*seg, group_index);  // a count a dead nacker left high (or one a race left low) comes right
  // A peer in our group is worth a liveness check (a /proc read) only when it is stuck: it holds records and
  // its lowest one has not moved since the last look.
  bool stuck_peer = false;
  // A standby of an exclusive group looks at the member that takes: once it is confirmed dead, recovery hands its
  // records and its place to a standby (however few records it held: its `low` may never look stuck).
  if (const std::uint64_t active = group->active.load(); active != 0 && active != member_tag) {
    const std::uint64_t owner = active <= kMaxMembers ? group->members[active - 1].owner.load() : 0;
    if (owner == 0 || owner_dead(owner)) {
      recover_dead_members(*seg);
      TableLock lock(*seg);  // (a place left to a slot that is free: a release cut short)
      if (lock) elect_active(*group);
    }
  }
  for (std::size_t m = 0; m < kMaxMembers; ++m) {
    const auto& peer = group->members[m];
    const std::uint64_t low = &peer == slot ? kNone : peer.low.load(std::memory_order_relaxed);
    stuck_peer = stuck_peer || (low != kNone && low == peer_low[m]);
    peer_low[m] = low;
  }
  if (stuck_peer) recover_dead_members(*seg);
}

// The wait of poll, poll_batch and wait_ready: spin, yield or sleep on the topic's futex as options.wait says, with
// the slow path (recovery of dead peers) at least every kSleepSliceNs. `look` takes (or checks) and says whether to
// stop. Returns false when the deadline passed first.
template <class Look>
bool Consumer::State::wait_for(std::chrono::nanoseconds timeout, Look&& look) {
  State& s = *this;
  const std::int64_t start = mono_ns();
  const std::int64_t deadline = deadline_after(start, timeout);
  auto& h = s.seg->header();
  for (unsigned round = 1;; ++round) {
    const Wait wait = s.options.wait;
    if (wait == Wait::busy_spin || wait == Wait::spin_yield || wait == Wait::spin_futex) {
      if (wait == Wait::spin_yield && round > 64) sched_yield();
      else cpu_relax();
      if (round % 64 != 0) {
        if (look()) return true;
        continue;
      }
    }
    const std::int64_t now = mono_ns();
    if (now >= deadline) return false;
    const bool sleep = wait == Wait::futex || (wait == Wait::spin_futex && now - start >= kSpinNs);
    if (sleep || now - start >= kSleepSliceNs) s.slow_path(now);
    if (sleep) {
      const std::uint32_t seen = h.wake_seq.load(std::memory_order_acquire);
      const std::size_t bit = s.group_index * kMaxMembers + static_cast<std::size_t>(s.slot - s.group->members);
      h.sleepers[bit / 64].fetch_or(std::uint64_t{1} << (bit % 64));
      std::atomic_thread_fence(std::memory_order_seq_cst);  // Dekker with the producer's commit + sleepers check
      wake_producers(*s.seg);  // after the fence: a producer our last ack's wake missed (see wait_for_room)
      bool got = look();
      // Asleep no longer than until the deadline, the next slow-path look, or the first retry due (as the last look
      // found it; a nack of another member's wakes us to look again).
      std::int64_t slice = std::min(deadline - now, kSleepSliceNs);
      if (s.next_due != kNever)  // (one already due was taken by another member: sleep the usual slice)
        if (const std::int64_t left = s.next_due - realtime_ns(); left > 0) slice = std::min(slice, left);
      if (!got) futex_wait(h.wake_seq, seen, std::chrono::nanoseconds(slice));
      h.sleepers[bit / 64].fetch_and(~(std::uint64_t{1} << (bit % 64)));
      if (got || look()) return true;
    } else if (look()) {
      return true;
    }
  }
}

Result<Consumer> Consumer::make(Topic topic, ConsumerOptions options) {
  if (auto valid = validate_group_name(options.group); !valid) return valid.error();
  if (auto valid = validate_retry_policy(options.retry); !valid) return valid.error();
  Segment& seg = *topic.segment();
  auto state = std::make_unique<State>(std::move(topic));
  {
    TableLock lock(seg);
    if (!lock) return lock.error();
    auto g = find_group(seg, options.group);
    if (!g) {
      auto created = create_group_locked(seg, options.group, options.start, options.retry, options.ordering);
      if (!created) return std::move(created).error();
      g = *created;
    }
    auto m = join_member_locked(seg, *g);
    if (!m) return std::move(m).error();
    state->group_index = *g;
    state->group = &seg.group(*g);
    state->slot = &state->group->members[*m];
    state->lone_tag = state->slot->plain.load() == 1 ? *m + 1 : 0;
    state->member_tag = *m + 1;
    state->exclusive = load_ordering(*state->group) == Ordering::exclusive;
    state->keyed = load_ordering(*state->group) == Ordering::key;
    if (state->keyed) state->lone_tag = 0;  // (takes are serialized by the key lock: always by CAS)
  }
  state->seg = &seg;
  state->fork_gen = fork_generation();
  state->options = std::move(options);
  state->head = state->tail = state->slot->tail.load();
  state->timed_out.emplace(Errc::timed_out);
  Consumer c;
  c.state_ = std::move(state);
  return c;
}

Consumer::Consumer(Topic topic, ConsumerOptions options) {
  auto made = make(std::move(topic), std::move(options));
  if (!made) throw std::move(made).error();
  state_ = std::move(made->state_);
}

Consumer::Consumer(Consumer&&) noexcept = default;

Consumer& Consumer::operator=(Consumer&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
  }
  return *this;
}

Consumer::~Consumer() { release(); }

void Consumer::release() noexcept {
  if (!state_ || state_->fork_gen != fork_generation()) return;
  State& s = *state_;
  // With auto-ack the last record was handed to the application, which is done with it now (as Kafka commits on
  // close). What we still hold otherwise goes back to the group.
  if (s.options.auto_ack) s.ack_last();
  {  // the lock must be released before state_ (maybe the last handle on the mapping) goes
    TableLock lock(*s.seg);
    // The redelivery list is full, or the table lock is held by a stopped process: a later recovery hands these
    // back (leaving our live owner id would pin the slot, and its `low`, until this process exits).
    if (!lock || !release_member_locked(*s.seg, s.group_index, static_cast<std::size_t>(s.slot - s.group->members)))
      s.slot->owner.store(kOrphanOwner);
  }
  state_.reset();
}

const Topic& Consumer::topic() const noexcept { return state_->topic; }

std::size_t Consumer::unacked() const noexcept { return state_ ? state_->tail - state_->head : 0; }


Result<Message> Consumer::poll(std::chrono::nanoseconds timeout) {
  State& s = *state_;
  if (s.fork_gen != fork_generation())
    return Error(Errc::wrong_process, "consumer was created in another process (before fork): " + s.context());
  if (s.seg->truncated()) return truncated_error(*s.seg);
  if (s.options.auto_ack) s.ack_last();
  // A member that never runs dry would never look for dead peers; every 4096 polls it does (rate-limited inside).
  if (++s.polls % 4096 == 0) s.slow_path(mono_ns());
  // An idle topic answers before a Message is even built (BM_EmptyPoll 16 -> 12.5 ns); next() makes the same check
  // for poll_batch and the wait loop, which costs a compare once records flow (a take clears empty_pos).
  if (timeout.count() <= 0 && s.run_left == 0 && s.nothing_new()) {
    s.stuck_at = s.empty_pos;
    return *s.timed_out;
  }
  Message out;
  s.stuck_at = kNone;
  if (s.take_plain(out)) return out;
  Failure err;
  const auto sink = [&out](std::size_t) { return &out; };  // n is 1
  Take t = s.next(1, sink, err);
  if (t == Take::got) return out;
  if (t == Take::failed) return std::move(*err);
  if (timeout.count() <= 0) return *s.timed_out;
  s.wait_for(timeout, [&] {
    t = s.next(1, sink, err);
    return t != Take::empty;
  });
  if (t == Take::got) return out;
  if (t == Take::failed) return std::move(*err);
  if (s.seg->truncated()) return truncated_error(*s.seg);  // what it waited on became zeros
  return *s.timed_out;
}

Result<std::size_t> Consumer::poll_batch(std::vector<Message>& out, std::size_t max, std::chrono::nanoseconds timeout) {
  State& s = *state_;
  out.clear();
  if (s.fork_gen != fork_generation())
    return Error(Errc::wrong_process, "consumer was created in another process (before fork): " + s.context());
  if (s.seg->truncated()) return truncated_error(*s.seg);
  if (max == 0 || max > kMaxBatch)
    return Error(Errc::invalid_argument, "poll_batch max must be 1.." + std::to_string(kMaxBatch) + ": " +
                                             s.context() + " max=" + std::to_string(max));
  if (s.options.auto_ack) s.ack_last();
  if (++s.polls % 4096 == 0) s.slow_path(mono_ns());
  Failure err;
  s.stuck_at = kNone;
  const auto sink = [&out](std::size_t n) {
    out.resize(n);  // (empty before: next() hands out one lot)
    return out.data();
  };
  Take t = s.next(max, sink, err);
  if (t == Take::empty && timeout.count() > 0)
    s.wait_for(timeout, [&] {
      t = s.next(max, sink, err);
      return t != Take::empty;
    });
  if (t == Take::failed) return std::move(*err);
  if (t == Take::empty && s.seg->truncated()) return truncated_error(*s.seg);  // what it waited on became zeros
  return out.size();
}

bool Consumer::wait_ready(std::chrono::nanoseconds timeout) {
  State& s = *state_;
  if (s.fork_gen != fork_generation()) return true;  // the poll says why
  if (s.ready()) return true;
  return s.wait_for(timeout, [&] { return s.ready(); });
}

std::optional<Consumer::WaitWord> Consumer::prepare_wait() {
  State& s = *state_;
  auto& h = s.seg->header();
  const std::uint32_t seen = h.wake_seq.load(std::memory_order_acquire);
  const std::size_t bit = s.group_index * kMaxMembers + static_cast<std::size_t>(s.slot - s.group->members);
  h.sleepers[bit / 64].fetch_or(std::uint64_t{1} << (bit % 64));
  std::atomic_thread_fence(std::memory_order_seq_cst);  // Dekker with the producer's commit + sleepers check
  wake_producers(*s.seg);  // after the fence: a producer our last ack's wake missed (see wait_for_room)
  if (s.ready()) {
    h.sleepers[bit / 64].fetch_and(~(std::uint64_t{1} << (bit % 64)));
    return std::nullopt;
  }
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return WaitWord{reinterpret_cast<const std::uint32_t*>(&h.wake_seq), seen};
}

void Consumer::done_waiting() noexcept {
  State& s = *state_;
  const std::size_t bit = s.group_index * kMaxMembers + static_cast<std::size_t>(s.slot - s.group->members);
  s.seg->header().sleepers[bit / 64].fetch_and(~(std::uint64_t{1} << (bit % 64)));
}

void Consumer::maintain() { state_->slow_path(mono_ns()); }

void Consumer::interrupt_wait() noexcept {
  if (!state_) return;
  auto& h = state_->seg->header();
  h.wake_seq.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(h.wake_seq);
}

Result<void> Consumer::ack(Message&& message) {
  State& s = *state_;
  if (s.fork_gen != fork_generation())
    return Error(Errc::wrong_process, "consumer was created in another process (before fork): " + s.context());
  if (message.owner_ == &s && s.ack_held(message.run_, message.after_, message.done_)) return {};
  return Error(Errc::invalid_argument, "record not held by this consumer (acked already?): " + s.context() +
                                           " offset=" + std::to_string(message.offset_));
}

Result<void> Consumer::ack_all() {
  State& s = *state_;
  if (s.fork_gen != fork_generation())
    return Error(Errc::wrong_process, "consumer was created in another process (before fork): " + s.context());
  s.ack_last();
  return {};
}

}  // namespace mq
