// The consuming path: a member takes a run of records at its group's cursor (one record for poll, up to kMaxBatch for
// poll_batch) with one 16-byte CAS on {position, offset}, after announcing the run in its slot (`pending`, `low`) so
// that neither a producer nor a recoverer can lose it, and holds the run as one entry until acked. Redeliveries of
// dead members' runs, then nacked records whose retry is due, are drained before new records; a nack parks a record
// in the group's retry table or dead-letters it. How a run is encoded: layout.hpp (make_run).
#include "libmq/consumer.hpp"

#include "libmq/client.hpp"
#include "libmq/producer.hpp"

#include <grp.h>
#include <sched.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <vector>

#include "atomic16.hpp"
#include "clock.hpp"
#include "futex.hpp"
#include "groups.hpp"
#include "keys.hpp"
#include "layout.hpp"
#include "liveness.hpp"
#include "log.hpp"
#include "recovery.hpp"
#include "segment.hpp"
#include "test_point.hpp"

namespace mq {

using namespace detail;

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

constexpr std::int64_t kSpinNs = 20'000;           // spin_futex: spin this long before sleeping
constexpr std::int64_t kSleepSliceNs = 100'000'000;  // sleep at most this long between slow-path checks
constexpr std::uint64_t kPrefetchAhead = 1024;  // take_run: how far ahead of the record it reads to prefetch
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
// Key ordering: how long a take waits for its group's key lock (held for a few hundred ns by another member) before
// it finds nothing this time; an ack waits as long as the table lock would.
constexpr std::chrono::milliseconds kKeyTakeWait{2};

// When a retry entry whose due word says `due` may be taken: due further ahead than the longest backoff means now
// (the clock was set back, or the word scribbled): a record must not wait for that.
inline std::int64_t effective_due(std::int64_t due, std::int64_t now) {
  return due > now && due - now > std::chrono::nanoseconds(kMaxBackoff).count() ? now : due;
}

enum class Take { got, empty, failed };
// Why a take failed; empty until it does (so a poll builds no Error, and allocates nothing, on its way).
using Failure = std::optional<Error>;

// A record of the run being handed out, found and checked, not handed out yet.
struct Found {
  std::uint64_t position;
  RecordView view;
  std::uint64_t after;  // the run's position after it
  std::uint64_t done;   // the run's records through it
};

// Key ordering: a record waiting in the redelivery list (parked for its key, or a gone member's) or in the retry table.
struct Parked {
  std::uint64_t position;
  std::uint64_t code;                 // its key (key_code_at)
  std::atomic<std::uint64_t>* entry;  // the word that lists it, and what it says
  std::uint64_t run;
  RetryEntry* retry;  // its retry table entry, or nullptr
  bool due;           // may be taken now (a retry whose delay passed; anything in the redelivery list)
};

// Key ordering: one record taken, each its own held run of one, and how it came.
struct Handed {
  std::uint64_t run;
  bool redelivered;
  std::uint32_t failures;
  std::int64_t first_failure;
};

}  // namespace

struct Consumer::State {
  explicit State(Topic t) : topic(std::move(t)) {}
  Topic topic;
  Segment* seg = nullptr;
  std::size_t group_index = 0;
  GroupBlock* group = nullptr;
  MemberSlot* slot = nullptr;
  std::uint64_t fork_gen = 0;
  ConsumerOptions options;
  std::uint64_t lone_tag = 0;  // GroupBlock::lone's tag when this member is the group's lone one; 0: never plain
  std::uint64_t member_tag = 0;  // this member's index + 1 (GroupBlock::active)

  // Held runs, in receive order (mirror of slot->held, plus `base`: how many of the run's records were acked off its
  // front already, so a Message's `done` can be compared with what is left).
  struct Held {
    std::uint64_t position = 0;  // of its first record not acked
    std::uint64_t count = 0;     // records left in it, skip records included
    std::uint64_t base = 0;      // records acked off its front
  };
  std::array<Held, kMaxUnacked> held{};
  std::uint64_t head = 0;
  std::uint64_t tail = 0;
  // The run being handed out: the newest held run, of which `left` records at `pos` are not handed out yet.
  std::uint64_t run_pos = 0;
  std::uint64_t run_left = 0;
  std::uint64_t run_done = 0;
  bool run_redelivered = false;
  std::uint32_t run_failures = 0;  // nacks of the run being handed out (a retried record's), 0 for any other run
  std::int64_t run_first_failure = 0;
  // The earliest CLOCK_REALTIME a record in the retry table was due at the last look (kNever: none waits): a
  // sleeping member wakes by then.
  std::int64_t next_due = kNever;
  bool exclusive = false;  // the group's ordering is Ordering::exclusive (fixed when it was created)
  bool keyed = false;      // the group's ordering is Ordering::key: takes and acks under the group's key lock
  std::array<std::uint64_t, kMaxUnacked> held_key{};  // keyed: each held run's record's key (key_code_at)
  std::array<Handed, kMaxBatch> handed{};             // keyed: how each record in `found` was taken
  std::array<Parked, kRedeliverSlots + kRetrySlots> parked{};  // keyed: the last gather_parked(), by position
  std::size_t parked_n = 0;
  std::optional<Producer> dlq;  // on the dead-letter topic (which it keeps mapped), made at the first dead letter
  // The last record handed out, which auto_ack acks at the next poll.
  bool have_last = false;
  std::uint64_t last_run = 0, last_after = 0, last_done = 0;

  std::array<Found, kMaxBatch> found;  // the records about to be handed out: found[0 .. found_n)
  std::size_t found_n = 0;
  std::vector<std::byte> copy;  // overwrite topics: the records being read
  std::optional<Error> timed_out;  // built once: an empty poll copies it (static text: no count, no allocation)
  std::uint64_t stuck_at = kNone;
  // Where the last take found the group's cursor at a record not written yet, and the seq word it read there.
  std::uint64_t empty_pos = kNone, empty_seq = 0;
  std::int64_t next_slow_check = 0;
  std::uint32_t polls = 0;  // every 4096 polls a busy member also looks for dead peers (slow_path)
  std::array<std::uint64_t, kMaxMembers> peer_low{};  // peers' `low` at the last slow-path look

  std::string context() const { return "topic=" + seg->name() + " group=" + options.group; }
  // Nothing has changed since the last take found the topic empty: the group's cursor and the seq word at it are as
  // they were, and nothing waits for redelivery. Three loads of lines that stay in this core's cache while the
  // topic is idle; any publish there, a take by another member, a reset or a redelivery changes one of them. While
  // the cursor stays at empty_pos a block topic cannot lap it, so only a commit there changes that word; an
  // overwrite topic can, so there the tail is checked too (later laps' bytes there could be anything). The word is
  // loaded after the cursor: like take_run's look, it may be another record's bytes by then (design.md, "What TSan
  // cannot see"), and the next poll, finding the cursor moved, looks properly.
  // (Inlined by force: with key ordering's ready() as one more caller, GCC called it out of line from poll, +5.)
  [[gnu::always_inline]] bool nothing_new() const {
    return empty_pos != kNone && load_half(group->next.lo) == empty_pos &&
           seg->record_at(empty_pos).seq.load(std::memory_order_acquire) == empty_seq &&
           group->redeliver_count.load(std::memory_order_relaxed) == 0 &&
           group->retry_count.load(std::memory_order_relaxed) == 0 &&
           (seg->policy() == Policy::block || tail_position(*seg) <= empty_pos + seg->capacity());
  }
  Held& at(std::uint64_t i) { return held[i % kMaxUnacked]; }

  // announce, update_low and hold are on every take and ack: inlined by force (with the keyed take beside them, GCC
  // made them calls, +30 instructions a plain take+ack: bench/instructions.py).
  [[gnu::always_inline]] void announce(std::uint64_t run) {
    // Both stores are ordered before the taking CAS (a full barrier); a producer that sees the CAS sees them.
    slot->pending.store(run, std::memory_order_relaxed);
    const std::uint64_t position = run_position(run);
    if (slot->low.load(std::memory_order_relaxed) > position) slot->low.store(position, std::memory_order_relaxed);
  }
  [[gnu::always_inline]] void update_low() {
    std::uint64_t low = kNone;
    for (std::uint64_t i = head; i != tail; ++i) low = std::min(low, at(i).position);
    slot->low.store(low, std::memory_order_release);  // release: our reads of acked records are done
    // A producer waiting for room? (Holding nothing, our share of the group's low is its cursor.)
    if (seg->header().room_waiters.load(std::memory_order_relaxed) != 0)
      wake_producers(*seg, low != kNone ? low : load_half(group->next.lo));
  }
  // Moves the group's cursor from `next` to `after` after the take is announced: by a plain store when this member
  // is the group's lone one (`lone`, the group's word, loaded before `next`) and nothing changed that since (checked
  // after the announcement with only a compiler barrier between: a joiner's or a mover's membarrier is the other
  // half, groups.cpp set_lone()), else by CAS. False: another member (or a mover) moved the cursor first.
  [[gnu::always_inline]] bool advance(Word16& next, Word16 after, std::uint64_t lone) {
    if (lone_tag != 0 && (lone & kLoneTagMask) == lone_tag) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (group->lone.load(std::memory_order_relaxed) == lone &&
          group->state.load(std::memory_order_relaxed) == kGroupActive) {
        store16(&group->next, after);
        return true;
      }
    }
    return cas16(&group->next, next, after);
  }
  void retract() {
    slot->pending.store(0, std::memory_order_relaxed);
    update_low();
  }
  void publish_held(std::uint64_t i) {
    slot->held[i % kMaxUnacked].store(make_run(at(i).position, at(i).count), std::memory_order_relaxed);
  }
  // Holds the run (position, count) just taken, and makes it the run being handed out.
  [[gnu::always_inline]] void hold(std::uint64_t position, std::uint64_t count, bool redelivered,
                                   std::uint32_t failures = 0, std::int64_t first_failure = 0) {
    at(tail) = Held{position, count, 0};
    publish_held(tail);
    ++tail;
    slot->tail.store(tail, std::memory_order_release);
    slot->pending.store(0, std::memory_order_release);
    run_pos = position;
    run_left = count;
    run_done = 0;
    run_redelivered = redelivered;
    run_failures = failures;
    run_first_failure = first_failure;
  }
  // Ends the run being handed out after the records handed out so far (the rest is lost: overwrite topics).
  void cut_run() {
    Held& h = at(tail - 1);
    const std::uint64_t kept = run_done - h.base;
    run_left = 0;
    if (kept == 0) {
      --tail;
      slot->tail.store(tail, std::memory_order_release);
    } else {
      h.count = kept;
      publish_held(tail - 1);
    }
    update_low();
  }
  // Acks through the record that ended at `after` as the `done`-th of held run `run`, and every earlier held run.
  // False if that record is not held (acked already).
  // (Inlined by force: with nack as a third caller, GCC stopped inlining it into ack, +17 instructions an ack.)
  [[gnu::always_inline]] bool ack_through(std::uint64_t run, std::uint64_t after, std::uint64_t done) {
    if (run < head || run >= tail) return false;
    Held& h = at(run);
    if (done <= h.base) return false;
    test_point(TestPoint::ack_started);
    if (done >= h.base + h.count) {
      head = run + 1;
      if (run == tail - 1) run_left = 0;  // (only skip records could be left: nothing more to hand out)
    } else {
      h.count = h.base + h.count - done;
      h.base = done;
      h.position = after;
      publish_held(run);
      head = run;
    }
    slot->head.store(head, std::memory_order_release);
    update_low();
    if (have_last && (last_run < head || (last_run == run && last_done <= done))) have_last = false;
    return true;
  }
  // ack_through, and under key ordering with the key lock held, the keys of the runs it acked released. (Inlined
  // by force, the keyed side out of line: as a call, or with the lock inline, it cost every ack 35 instructions.)
  [[gnu::always_inline]] bool ack_held(std::uint64_t run, std::uint64_t after, std::uint64_t done) {
    if (keyed) [[unlikely]]
      return ack_keyed(run, after, done);
    return ack_through(run, after, done);
  }
  [[gnu::noinline]] bool ack_keyed(std::uint64_t run, std::uint64_t after, std::uint64_t done) {
    KeyLock lock(*seg, group_index, TableLock::kTableLockWait);
    const std::uint64_t from = head;
    if (!ack_through(run, after, done)) return false;
    if (lock) release_acked(from);  // (else the keys stay this member's until a recount: order kept, not lost)
    return true;
  }
  // REQUIRES: the key lock. Releases the keys of held runs [from, head), acked just now; members that found their
  // records parked behind these keys look again.
  void release_acked(std::uint64_t from) {
    for (std::uint64_t i = from; i < head; ++i) release_key(seg->keys(group_index), held_key[i % kMaxUnacked]);
    if (group->redeliver_count.load() != 0 || group->retry_count.load() != 0) wake_consumers(*seg);
  }
  void ack_last() {
    if (have_last) (void)ack_held(last_run, last_after, last_done);
    have_last = false;
  }

  // After the CAS that took the run (position, count) at the group's cursor, which ends at `after`: holds it, and
  // the walk that read it hands it all out now (skip records after its last record belong to it).
  void hold_taken(std::uint64_t position, std::uint64_t count, std::uint64_t after) {
    test_point(TestPoint::take_won);
    empty_pos = kNone;  // records flowed: nothing_new() answers from one compare until the topic runs dry again
    hold(position, count, false);
    run_pos = after;
    run_left = 0;
    run_done = count;
  }
  // Fills `m` with the record `v` at `position` of held run `run` (its bytes at `base`: the ring's, or the copy's).
  void fill(Message& m, std::uint64_t run, std::uint64_t position, const RecordView& v, const std::byte* base,
            std::uint64_t after, std::uint64_t done) {
    const std::uint64_t key = v.key_len == kNullKey ? 0 : v.key_len;
    m.owner_ = this;
    m.offset_ = v.offset;
    m.position_ = position;
    m.run_ = run;
    m.after_ = after;
    m.done_ = done;
    m.timestamp_ns_ = v.timestamp_ns;
    m.redelivered_ = run_redelivered;
    m.attempt_ = run_failures + 1;
    m.first_failure_ns_ = run_first_failure;
    if (v.key_len != kNullKey) m.key_ = std::span<const std::byte>(base + kRecordHeaderBytes, key);
    else m.key_.reset();
    m.headers_ = std::span<const std::byte>(base + kRecordHeaderBytes + key, v.headers_len);
    m.payload_ = std::span<const std::byte>(base + payload_start(key, v.headers_len), v.payload_len);
  }
  // `n` records were handed out, the last of run `run` (auto_ack acks it at the next poll).
  void handed_out(std::size_t n, std::uint64_t run, std::uint64_t after, std::uint64_t done) {
    have_last = true;
    last_run = run;
    last_after = after;
    last_done = done;
    slot->delivered.store(slot->delivered.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // poll's common case, inline: a block topic, no run in hand, nothing to redeliver, and at the group's cursor one
  // committed record without key or headers (read_plain). Takes it as take_run(1) would (announce, one CAS, hold)
  // into `m`. False for anything else, a lost CAS included: next() then looks the general way.
  bool take_plain(Message& m) {
    if (keyed || seg->policy() != Policy::block || run_left != 0 || tail - head >= kMaxUnacked ||
        group->redeliver_count.load(std::memory_order_relaxed) != 0 ||
        group->retry_count.load(std::memory_order_relaxed) != 0 || standing_by())
      return false;
    const std::uint64_t lone = group->lone.load(std::memory_order_acquire);  // before the cursor: see advance()
    Word16 next{load_half(group->next.lo), load_half(group->next.hi)};
    RecordView v;
    if (!read_plain(*seg, next, v)) return false;
    const Word16 after{next.lo + v.length, next.hi + 1};
    announce(make_run(next.lo, 1));
    if (!advance(next, after, lone)) {
      retract();
      return false;
    }
    hold_taken(next.lo, 1, after.lo);
    fill(m, tail - 1, next.lo, v, seg->ring() + (next.lo & seg->mask()), after.lo, 1);
    handed_out(1, tail - 1, after.lo, 1);
    return true;
  }
  Take take_redelivered(Failure& err);
  // The retry table at `now`: the waiting entry due first (nullptr if none is due yet) with its run word, and when
  // the first one not due yet is due (kNever if none waits).
  struct DueRetry {
    RetryEntry* entry = nullptr;
    std::uint64_t run = 0;
    std::int64_t next_due = kNever;
  };
  DueRetry scan_retries(std::int64_t now);
  Take take_retry();
  bool swap_with_due(std::uint64_t mark, RetryEntry*& entry);
  std::size_t member_index() const { return static_cast<std::size_t>(slot - group->members); }
  // An exclusive group's member that is not the one taking (GroupBlock::active): it takes nothing.
  bool standing_by() const {
    const std::uint64_t active = group->active.load(std::memory_order_acquire);
    return active != 0 && active != member_tag;
  }
  bool holds(const Message& m) const {
    return m.owner_ == this && m.run_ >= head && m.run_ < tail && m.done_ > held[m.run_ % kMaxUnacked].base;
  }
  // What nack and dead_letter (`op`) ask of `m` first: this process's consumer, held by it, in a block topic.
  Result<void> may_hand_back(const Message& m, std::string_view op) const;
  Result<void> dead_letter(const Message& m, std::int64_t first_failure, std::string_view error);
  Result<void> dead_letter_and_ack(const Message& m, std::string_view error);
  Result<Topic> dead_letter_from_daemon();
  Result<Consumer::Nacked> nack(Message& m, std::optional<std::chrono::milliseconds> delay, std::string_view error);
  Take take_run(std::size_t max, Failure& err);
  Take resync(Word16 from, Failure& err);
  // Key ordering (REQUIRES: the key lock, for all below).
  void gather_parked();
  std::optional<std::size_t> first_eligible() const;
  bool parked_has(std::uint64_t code) const;
  std::uint64_t holder_of(std::uint64_t code) const;
  bool may_take(std::uint64_t code, std::uint64_t holder) const;
  bool park_room(std::atomic<std::uint64_t>** entry) const;
  bool take_parked(const Parked& p);
  bool others_live() const;
  bool fresh(std::uint64_t code, std::uint64_t holder) const;
  enum class Step { took, moved, empty, full, shared, failed };
  Step take_at_cursor(Failure& err, bool may_acquire, std::size_t& acquired);
  bool keyed_ready();
  template <class Slots>
  Take take_keyed(std::size_t max, Slots&& slots_for, Failure& err);
  Take collect(std::size_t max, Failure& err);
  template <class Slots>
  Take emit(Slots&& slots_for, Failure& err);
  template <class Slots>
  Take next(std::size_t max, Slots&& slots_for, Failure& err);
  bool ready();
  void slow_path(std::int64_t now);
  template <class Look>
  bool wait_for(std::chrono::nanoseconds timeout, Look&& look);
};

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
bool Consumer::State::fresh(std::uint64_t code, std::uint64_t holder) const { return code != 0 && holder != member_tag; }

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

namespace {

// The delay before the retry after a record's `failures`-th failure under `policy`, jitter drawn from a per-thread
// generator (xorshift; retries only need spreading, not secrecy).
std::chrono::nanoseconds backoff_for(const RetryPolicy& policy, std::uint32_t failures) {
  thread_local std::uint64_t state = static_cast<std::uint64_t>(mono_ns()) * 0x9e3779b97f4a7c15ULL | 1;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  const double unit = static_cast<double>(state >> 11) / static_cast<double>(std::uint64_t{1} << 53);  // [0, 1)
  double ms = static_cast<double>(policy.backoff.count());
  for (std::uint32_t i = 1; i < failures && ms < static_cast<double>(policy.max_backoff.count()); ++i)
    ms *= policy.factor;
  ms = std::min(ms, static_cast<double>(policy.max_backoff.count())) * (1.0 - policy.jitter * unit);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ms * 1e6));
}

}  // namespace

TopicOptions dead_letter_options(const Topic& source) {
  const TopicInfo info = source.info();
  const OpenOptions where = source.segment()->where();
  TopicOptions options;
  options.capacity = std::max<std::size_t>(kMinCapacity, std::min<std::size_t>(info.capacity, 1 << 20));
  while (options.capacity / 4 < info.max_message + 4096 && options.capacity < kMaxCapacity) options.capacity *= 2;
  options.block_timeout = info.block_timeout;
  options.storage = where.storage;
  options.directory = where.directory;
  options.ns = where.ns;
  // The source's access rights: its mode and its file's group (mqd's `mq`, say), so whoever may use the topic may
  // read and replay its dead letters.
  options.mode = info.mode;
  if (struct stat st{}; ::stat(source.file().c_str(), &st) == 0) {
    // getgrgid_r: members on other threads may dead-letter at the same time (getgrgid's result is one static).
    ::group entry{};
    ::group* found = nullptr;
    std::vector<char> buffer(4096);
    int err = 0;
    while ((err = ::getgrgid_r(st.st_gid, &entry, buffer.data(), buffer.size(), &found)) == ERANGE &&
           buffer.size() < (std::size_t{1} << 20))
      buffer.resize(buffer.size() * 2);
    if (err == 0 && found != nullptr) options.access_group = found->gr_name;
  }
  options.groups = {std::string(kDeadLetterGroup)};
  return options;
}

// The dead-letter topic of a source opened through mqd: mqd creates it (with the source's rights, owned like the
// source) and says where it is. No mqd answering: Errc::no_daemon.
Result<Topic> Consumer::State::dead_letter_from_daemon() {
  auto client = Client::connect({.socket = this->topic.daemon_socket()});
  if (!client) return std::move(client).error();
  return client->create_dead_letter(seg->name());
}

// Publishes `m` to the dead-letter topic (made on first use, beside the source and like it: by mqd when the source
// was opened through it, else here), with its key, headers and timestamp and the dlq_header ones. The caller acks it
// after.
Result<void> Consumer::State::dead_letter(const Message& m, std::int64_t first_failure, std::string_view error) {
  if (!dlq) {
    const std::string name = seg->name() + std::string(kDeadLetterSuffix);
    if (auto valid = validate_topic_name(name); !valid)
      return Error(Errc::invalid_name, "the dead-letter topic's name would be invalid (" +
                                           std::string(valid.error().message()) + "): " + context());
    auto topic = Topic::open(name, seg->where());
    if (!topic && topic.error().code() == Errc::not_found && !this->topic.daemon_socket().empty()) {
      // mqd gone (stopped, restarting): the dead letter must not wait for it; made here below, mqd adopts it.
      if (auto made = dead_letter_from_daemon(); made || made.error().code() != Errc::no_daemon) topic = std::move(made);
    }
    if (!topic && topic.error().code() == Errc::not_found)
      topic = Topic::open_or_create(name, dead_letter_options(this->topic));
    if (!topic)
      return Error(topic.error().code(), "cannot open the dead-letter topic: " + std::string(topic.error().message()));
    auto producer = Producer::make(*topic);
    if (!producer) return std::move(producer).error();
    dlq.emplace(std::move(*producer));
  }
  const auto text = [](std::string_view v) { return std::as_bytes(std::span<const char>(v.data(), v.size())); };
  const std::string offset = std::to_string(m.offset_);
  const std::string attempts = std::to_string(m.attempt_);
  const std::string first = std::to_string(first_failure);
  std::vector<Header> headers(m.headers().begin(), m.headers().end());
  headers.push_back({dlq_header::topic, text(seg->name())});
  headers.push_back({dlq_header::offset, text(offset)});
  headers.push_back({dlq_header::group, text(options.group)});
  headers.push_back({dlq_header::attempts, text(attempts)});
  headers.push_back({dlq_header::first_failure, text(first)});
  headers.push_back({dlq_header::error, text(error.substr(0, kMaxDeadLetterError))});
  Record record{m.payload_, m.key_, headers, m.timestamp_ns_};
  if (auto published = dlq->publish(record); !published)
    return Error(published.error().code(), "cannot dead-letter offset " + offset + ": " + context() + ": " +
                                               std::string(published.error().message()));
  return {};
}

Result<void> Consumer::State::may_hand_back(const Message& m, std::string_view op) const {
  if (fork_gen != fork_generation())
    return Error(Errc::wrong_process, "consumer was created in another process (before fork): " + context());
  if (!holds(m))
    return Error(Errc::invalid_argument, "record not held by this consumer (acked already?): " + context() +
                                             " offset=" + std::to_string(m.offset_));
  if (seg->policy() != Policy::block)
    return Error(Errc::invalid_argument, std::string(op) + " needs a block topic (an overwrite topic's producers " +
                                             "would overwrite a record waiting for its retry): " + context());
  return {};
}

// The dead letter of `m` (its first failure now if it never failed before), then its ack.
Result<void> Consumer::State::dead_letter_and_ack(const Message& m, std::string_view error) {
  const std::int64_t first = m.first_failure_ns_ != 0 ? m.first_failure_ns_ : realtime_ns();
  if (auto sent = dead_letter(m, first, error); !sent) return sent.error();
  test_point(TestPoint::dead_lettered);
  (void)ack_held(m.run_, m.after_, m.done_);
  return {};
}

Result<Consumer::Nacked> Consumer::State::nack(Message& m, std::optional<std::chrono::milliseconds> delay,
                                               std::string_view error) {
  if (auto allowed = may_hand_back(m, "nack"); !allowed) return allowed.error();
  const RetryPolicy policy = load_retry_policy(*group);
  if (m.attempt_ >= policy.max_attempts) {
    if (auto sent = dead_letter_and_ack(m, error); !sent) return sent.error();
    return Consumer::Nacked::dead_lettered;
  }
  const std::int64_t now = realtime_ns();
  const std::int64_t first = m.first_failure_ns_ != 0 ? m.first_failure_ns_ : now;
  const std::chrono::nanoseconds wait =
      delay ? std::chrono::nanoseconds(std::clamp(*delay, std::chrono::milliseconds(0), kMaxBackoff))
            : backoff_for(policy, m.attempt_);
  // Key ordering: under the key lock, so that no member takes a later record of its key between the entry and the ack.
  std::optional<KeyLock> keys;
  if (keyed) keys.emplace(*seg, group_index, TableLock::kTableLockWait);
  // Win a free entry, fill it, then make it a run: from then on any member may take it, and producers count it.
  const std::uint64_t mark = kRetryFilling | (member_index() << 6);
  RetryEntry* entry = nullptr;
  for (auto& e : seg->retries(group_index).entries) {
    std::uint64_t free = 0;
    if (e.run.load(std::memory_order_relaxed) == 0 && e.run.compare_exchange_strong(free, mark)) {
      entry = &e;
      break;
    }
  }
  // A full table: swap with a record that is due (its entry stays counted, so the count stays). Not under key
  // ordering, whose due record may not be this member's to take.
  const bool swapped = entry == nullptr && !keyed && swap_with_due(mark, entry);
  if (entry == nullptr)
    return Error(Errc::limit, "the group's retry table is full (" + std::to_string(kRetrySlots) +
                                  " records wait for a retry, none due yet); the record stays held: " + context() +
                                  " offset=" + std::to_string(m.offset_));
  entry->due_ns.store(now + wait.count(), std::memory_order_relaxed);
  entry->first_ns.store(first, std::memory_order_relaxed);
  if (!swapped) group->retry_count.fetch_add(1);  // before the run word: a hint, high for a moment rather than low
  entry->run.store(make_run(m.position_, m.attempt_));
  group->gen.fetch_add(2);  // a producer's scan that missed the entry but sees the ack below looks again
  test_point(TestPoint::retry_parked);
  const std::uint64_t from = head;
  (void)ack_through(m.run_, m.after_, m.done_);
  if (keys && *keys) release_acked(from);
  wake_consumers(*seg);  // sleeping members learn when it is due
  return Consumer::Nacked::retry;
}

Result<Consumer::Nacked> Consumer::nack(Message&& message, std::string_view error) {
  return state_->nack(message, std::nullopt, error);
}

Result<Consumer::Nacked> Consumer::nack(Message&& message, std::chrono::milliseconds delay, std::string_view error) {
  return state_->nack(message, delay, error);
}

Result<void> Consumer::dead_letter(Message&& message, std::string_view error) {
  if (auto allowed = state_->may_hand_back(message, "dead_letter"); !allowed) return allowed.error();
  return state_->dead_letter_and_ack(message, error);
}

Result<std::size_t> Consumer::nack(std::span<Message> messages, std::optional<std::chrono::milliseconds> delay,
                                   std::string_view error) {
  // In receive order (each nack acks what came before it), every one held before any is nacked.
  std::vector<Message*> order;
  for (auto& m : messages) {
    if (!state_->holds(m))
      return Error(Errc::invalid_argument, "record not held by this consumer (acked already?): " + state_->context() +
                                               " offset=" + std::to_string(m.offset_));
    order.push_back(&m);
  }
  std::sort(order.begin(), order.end(),
            [](const Message* a, const Message* b) { return a->run_ != b->run_ ? a->run_ < b->run_ : a->done_ < b->done_; });
  std::size_t dead = 0;
  for (Message* m : order) {
    auto nacked = state_->nack(*m, delay, error);
    if (!nacked) return nacked.error();
    dead += *nacked == Nacked::dead_lettered ? 1 : 0;
  }
  return dead;
}

}  // namespace mq
