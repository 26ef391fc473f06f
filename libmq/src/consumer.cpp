// The consuming path: a member takes the group's next record with one 16-byte CAS on {position, offset}, after
// announcing it in its slot (`pending`, `low`) so that neither a producer nor a recoverer can lose it; acks move its
// held list forward. Redeliveries of dead members' records are drained before new records.
#include "libmq/consumer.hpp"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <limits>
#include <array>
#include <cstring>
#include <vector>

#include "atomic16.hpp"
#include "clock.hpp"
#include "futex.hpp"
#include "groups.hpp"
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

enum class Take { got, empty, failed };
// Why a take failed; empty until it does (so a poll builds no Error, and allocates nothing, on its way).
using Failure = std::optional<Error>;

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
  std::array<std::uint64_t, kMaxUnacked> held{};  // mirror of slot->held, in receive order
  std::uint64_t head = 0;
  std::uint64_t tail = 0;
  std::vector<std::byte> copy;  // overwrite topics: the record being read
  std::uint64_t stuck_at = kNone;
  std::int64_t next_slow_check = 0;
  std::uint32_t polls = 0;  // every 4096 polls a busy member also looks for dead peers (slow_path)
  std::array<std::uint64_t, kMaxMembers> peer_low{};  // peers' `low` at the last slow-path look

  std::string context() const { return "topic=" + seg->name() + " group=" + options.group; }

  void announce(std::uint64_t position) {
    // Both stores are ordered before the taking CAS (a full barrier); a producer that sees the CAS sees them.
    slot->pending.store(position + 1, std::memory_order_relaxed);
    if (slot->low.load(std::memory_order_relaxed) > position) slot->low.store(position, std::memory_order_relaxed);
  }
  void update_low() {
    std::uint64_t low = kNone;
    for (std::uint64_t i = head; i != tail; ++i) low = std::min(low, held[i % kMaxUnacked]);
    slot->low.store(low, std::memory_order_release);  // release: our reads of acked records are done
  }
  void retract() {
    slot->pending.store(0, std::memory_order_relaxed);
    update_low();
  }
  void hold(std::uint64_t position) {
    held[tail % kMaxUnacked] = position;
    slot->held[tail % kMaxUnacked].store(position, std::memory_order_relaxed);
    ++tail;
    slot->tail.store(tail, std::memory_order_release);
    slot->pending.store(0, std::memory_order_release);
    slot->delivered.store(slot->delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void drop_last() {  // a record that turned out lost: it is not held after all
    --tail;
    slot->tail.store(tail, std::memory_order_release);
    update_low();
  }
  void pop_through(std::uint64_t index) {
    test_point(TestPoint::ack_started);
    head = index + 1;
    slot->head.store(head, std::memory_order_release);
    update_low();
  }

  Take view(std::uint64_t position, const RecordView& v, bool redelivered, Message& out, Failure& err);
  Take take_redelivered(Message& out, Failure& err);
  Take take(Message& out, Failure& err);
  Take resync(Word16 from, Failure& err);
  void slow_path(std::int64_t now);
};

Take Consumer::State::view(std::uint64_t position, const RecordView& v, bool redelivered, Message& out, Failure& err) {
  const std::byte* base = seg->ring() + (position & seg->mask());
  if (seg->policy() == Policy::overwrite) {
    // Nothing holds the producer back: copy, then check that no claim reached these bytes while we copied.
    if (copy.size() < v.length) copy.resize(v.length);  // no zero-fill of what the copy overwrites
    std::memcpy(copy.data(), base, v.length);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (tail_position(*seg) > position + seg->capacity()) {
      drop_last();
      err = Error(Errc::lost, "record overwritten while read: " + context() + " lost=1", 1);
      return Take::failed;
    }
    base = copy.data();
  }
  const std::uint64_t key = v.key_len == kNullKey ? 0 : v.key_len;
  out.owner_ = this;
  out.offset_ = v.offset;
  out.position_ = position;
  out.timestamp_ns_ = v.timestamp_ns;
  out.redelivered_ = redelivered;
  out.key_ = v.key_len == kNullKey ? std::nullopt
                                   : std::optional(std::span<const std::byte>(base + kRecordHeaderBytes, key));
  out.headers_ = std::span<const std::byte>(base + kRecordHeaderBytes + key, v.headers_len);
  out.payload_ = std::span<const std::byte>(base + payload_start(key, v.headers_len), v.payload_len);
  return Take::got;
}

Take Consumer::State::take_redelivered(Message& out, Failure& err) {
  for (auto& entry : group->redeliver) {
    std::uint64_t v = entry.load(std::memory_order_acquire);
    if (v == 0) continue;
    announce(v - 1);
    if (!entry.compare_exchange_strong(v, 0)) {
      retract();
      continue;
    }
    group->redeliver_count.fetch_sub(1);
    hold(v - 1);
    auto record = read_record(*seg, v - 1);
    if (record && record->state == kCommitted) return view(v - 1, *record, true, out, err);
    drop_last();
    if (!record) {
      err = std::move(record).error();
      return Take::failed;
    }
    if (seg->policy() == Policy::overwrite) {
      err = Error(Errc::lost, "redelivered record overwritten: " + context() + " lost=1", 1);
      return Take::failed;
    }
  }
  return Take::empty;
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

Take Consumer::State::take(Message& out, Failure& err) {
  if (group->redeliver_count.load(std::memory_order_relaxed) != 0) {
    const Take t = take_redelivered(out, err);
    if (t != Take::empty) return t;
  }
  const bool overwrite = seg->policy() == Policy::overwrite;
  for (;;) {
    Word16 next{load_half(group->next.lo), load_half(group->next.hi)};
    if (overwrite && tail_position(*seg) > next.lo + seg->capacity()) {
      const Take t = resync(next, err);
      if (t == Take::failed) return t;
      continue;
    }
    auto v = read_record(*seg, next.lo);
    if (!v) {
      // Our snapshot of `next` may be stale: other members took and acked past it, and a producer is writing a later
      // lap there (its header fields before its seq). Only a record at the group's current `next` is corrupt.
      if (const Word16 now = load16(&group->next); now.lo != next.lo || now.hi != next.hi) continue;
      if (overwrite && tail_position(*seg) > next.lo + seg->capacity()) continue;  // torn by a lap: resync
      err = std::move(v).error();
      return Take::failed;
    }
    switch (v->state) {
      case kEmpty:
      case kClaimed:
      case kNone:  // at the tail, the ring still holds an older lap's bytes (any value): not written yet
        stuck_at = next.lo;
        return Take::empty;
      case kPad:
        cas16(&group->next, next, Word16{next.lo + v->length, next.hi});
        continue;
      default:
        break;
    }
    if (v->offset != next.hi) {
      // The two halves of `next` were loaded apart: another member may have moved it in between.
      if (const Word16 now = load16(&group->next); now.lo != next.lo || now.hi != next.hi) continue;
      if (overwrite && tail_position(*seg) > next.lo + seg->capacity()) continue;  // torn by a lap: resync
      err = Error(Errc::bad_segment, "record offset " + std::to_string(v->offset) + " where the group expects " +
                                         std::to_string(next.hi) + ": " + context());
      return Take::failed;
    }
    const Word16 after{next.lo + v->length, next.hi + 1};
    if (v->state == kSkip) {
      cas16(&group->next, next, after);
      continue;
    }
    announce(next.lo);
    if (!cas16(&group->next, next, after)) {
      retract();
      continue;
    }
    test_point(TestPoint::take_won);
    hold(next.lo);
    return view(next.lo, *v, false, out, err);
  }
}

void Consumer::State::slow_path(std::int64_t now) {
  if (now < next_slow_check) return;
  next_slow_check = now + kSleepSliceNs;
  if (stuck_at != kNone && tail_position(*seg) > stuck_at) recover_stuck(*seg, stuck_at);
  // A peer in our group is worth a liveness check (a /proc read) only when it is stuck: it holds records and
  // its lowest one has not moved since the last look.
  bool stuck_peer = false;
  for (std::size_t m = 0; m < kMaxMembers; ++m) {
    const auto& peer = group->members[m];
    const std::uint64_t low = &peer == slot ? kNone : peer.low.load(std::memory_order_relaxed);
    stuck_peer = stuck_peer || (low != kNone && low == peer_low[m]);
    peer_low[m] = low;
  }
  if (stuck_peer) recover_dead_members(*seg);
}

Result<Consumer> Consumer::make(Topic topic, ConsumerOptions options) {
  if (auto valid = validate_group_name(options.group); !valid) return valid.error();
  Segment& seg = *topic.segment();
  auto state = std::make_unique<State>(std::move(topic));
  {
    TableLock lock(seg);
    if (!lock) return lock.error();
    auto g = find_group(seg, options.group);
    if (!g) {
      auto created = create_group_locked(seg, options.group, options.start);
      if (!created) return std::move(created).error();
      g = *created;
    }
    auto m = join_member_locked(seg, *g);
    if (!m) return std::move(m).error();
    state->group_index = *g;
    state->group = &seg.group(*g);
    state->slot = &state->group->members[*m];
  }
  state->seg = &seg;
  state->fork_gen = fork_generation();
  state->options = std::move(options);
  state->head = state->tail = state->slot->tail.load();
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
  if (s.options.auto_ack && s.tail != s.head) s.pop_through(s.tail - 1);
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
  if (s.options.auto_ack && s.tail != s.head) s.pop_through(s.tail - 1);
  if (s.tail - s.head >= kMaxUnacked)
    return Error(Errc::limit, "consumer holds " + std::to_string(kMaxUnacked) + " unacked records; ack first: " +
                                  s.context());
  // A member that never runs dry would never look for dead peers; every 4096 polls it does (rate-limited inside).
  if (++s.polls % 4096 == 0) s.slow_path(mono_ns());
  Message out;
  Failure err;
  s.stuck_at = kNone;
  Take t = s.take(out, err);
  if (t == Take::got) return out;
  if (t == Take::failed) return std::move(*err);
  if (timeout.count() <= 0) return Error(Errc::timed_out, "no record within the timeout: " + s.context());
  const std::int64_t start = mono_ns();
  const std::int64_t deadline = deadline_after(start, timeout);
  auto& h = s.seg->header();
  for (unsigned round = 1;; ++round) {
    std::int64_t now = 0;
    if (s.options.wait == Wait::busy_spin || s.options.wait == Wait::spin_yield ||
        (s.options.wait == Wait::spin_futex)) {
      if (s.options.wait == Wait::spin_yield && round > 64) sched_yield();
      else cpu_relax();
      if (round % 64 != 0 && timeout.count() > 0) {
        t = s.take(out, err);
        if (t == Take::got) return out;
        if (t == Take::failed) return std::move(*err);
        continue;
      }
    }
    now = mono_ns();
    if (now >= deadline) return Error(Errc::timed_out, "no record within the timeout: " + s.context());
    const bool sleep = s.options.wait == Wait::futex || (s.options.wait == Wait::spin_futex && now - start >= kSpinNs);
    if (sleep || now - start >= kSleepSliceNs) s.slow_path(now);
    if (sleep) {
      const std::uint32_t seen = h.wake_seq.load(std::memory_order_acquire);
      const std::size_t bit = s.group_index * kMaxMembers + static_cast<std::size_t>(s.slot - s.group->members);
      h.sleepers[bit / 64].fetch_or(std::uint64_t{1} << (bit % 64));
      std::atomic_thread_fence(std::memory_order_seq_cst);  // Dekker with the producer's commit + sleepers check
      t = s.take(out, err);
      if (t == Take::empty)
        futex_wait(h.wake_seq, seen, std::chrono::nanoseconds(std::min(deadline - now, kSleepSliceNs)));
      h.sleepers[bit / 64].fetch_and(~(std::uint64_t{1} << (bit % 64)));
      if (t == Take::empty) t = s.take(out, err);
    } else {
      t = s.take(out, err);
    }
    if (t == Take::got) return out;
    if (t == Take::failed) return std::move(*err);
  }
}

Result<void> Consumer::ack(Message&& message) {
  State& s = *state_;
  if (s.fork_gen != fork_generation())
    return Error(Errc::wrong_process, "consumer was created in another process (before fork): " + s.context());
  for (std::uint64_t i = s.head; i != s.tail && message.owner_ == &s; ++i) {
    if (s.held[i % kMaxUnacked] == message.position_) {
      s.pop_through(i);
      return {};
    }
  }
  return Error(Errc::invalid_argument, "record not held by this consumer (acked already?): " + s.context() +
                                           " offset=" + std::to_string(message.offset_));
}

Result<void> Consumer::ack_all() {
  State& s = *state_;
  if (s.fork_gen != fork_generation())
    return Error(Errc::wrong_process, "consumer was created in another process (before fork): " + s.context());
  if (s.tail != s.head) s.pop_through(s.tail - 1);
  return {};
}

}  // namespace mq
