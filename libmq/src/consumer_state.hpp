// A consumer's private state (Consumer::State) and the helpers its sources share: consumer.cpp (the take, poll, ack
// and the wait), consumer_keys.cpp (key ordering's parked records and the take at the cursor) and consumer_retry.cpp
// (nack, retries and dead letters). Only these three include it.
#pragma once

#include "libmq/consumer.hpp"
#include "libmq/producer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
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

using namespace detail;  // (as in the three sources: the layout's types name every line of the state)

namespace detail {

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

}  // namespace detail

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

}  // namespace mq
