// Scenario code shared by the multi-process (process_*.cpp, forked children) and the concurrency (concurrency_*.cpp,
// threads over one mapping, the suite ThreadSanitizer runs) suites: a self-checking payload, exactly-once bitmaps in
// memory that survives fork (MAP_SHARED | MAP_ANONYMOUS), producer and member roles, and crews that run roles as
// processes or as threads. Roles never use gtest macros (they may run in a child): they return an error text.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "atomic16.hpp"
#include "groups.hpp"
#include "layout.hpp"
#include "liveness.hpp"
#include "log.hpp"
#include "segment.hpp"
#include "test_util.hpp"

namespace mqtest::scenario {

// The fixtures of the two suites (one definition shared by all their files): a private MQ_NAMESPACE per test.
inline std::uint64_t& abort_word();
class ScenarioTest : public mqtest::TopicTest {
 protected:
  void SetUp() override {
    mqtest::TopicTest::SetUp();
    std::atomic_ref<std::uint64_t>(abort_word()).store(0);  // also maps it before any fork
  }
};
class MultiProcess : public ScenarioTest {};
class Concurrency : public ScenarioTest {};

// ---------------------------------------------------------------------------------------------------------------
// Build flavour: sanitized builds run the same scenarios with fewer records.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(undefined_behavior_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// How long a role may see no progress at all before it declares the run wedged (a failure, never a pass).
inline constexpr std::chrono::seconds kStallLimit{30};
// Bound on a whole crew (ctest kills a test at 300 s; fail clearly before that).
inline constexpr std::chrono::seconds kCrewLimit{270};

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------------------------
// Payload: {producer, filler length, sequence, offset (known for claims, else kUnknownOffset), checksum} + filler.
// The checksum (FNV-1a 64) covers the head (checksum field zero) and the filler, so torn or overwritten bytes show.
inline constexpr std::uint64_t kUnknownOffset = ~std::uint64_t{0};

struct PayloadHead {
  std::uint32_t producer;
  std::uint32_t filler;
  std::uint64_t seq;
  std::uint64_t offset;
  std::uint64_t checksum;
};
inline constexpr std::size_t kHeadBytes = sizeof(PayloadHead);
static_assert(kHeadBytes == 32);

inline std::uint64_t fnv1a(std::span<const std::byte> data, std::uint64_t h = 0xcbf29ce484222325ULL) {
  for (const std::byte b : data) {
    h ^= static_cast<std::uint64_t>(b);
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline std::uint64_t payload_checksum(const PayloadHead& head, std::span<const std::byte> filler) {
  PayloadHead h = head;
  h.checksum = 0;
  return fnv1a(filler, fnv1a(std::as_bytes(std::span(&h, 1))));
}

// Writes a payload of exactly out.size() bytes (REQUIRES out.size() >= kHeadBytes) with random filler.
inline void encode_payload(std::span<std::byte> out, std::uint32_t producer, std::uint64_t seq, std::uint64_t offset,
                           std::mt19937_64& rng) {
  PayloadHead head{producer, static_cast<std::uint32_t>(out.size() - kHeadBytes), seq, offset, 0};
  auto filler = out.subspan(kHeadBytes);
  for (std::size_t i = 0; i < filler.size(); i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(filler.data() + i, &r, std::min<std::size_t>(8, filler.size() - i));
  }
  head.checksum = payload_checksum(head, filler);
  std::memcpy(out.data(), &head, kHeadBytes);
}

// Decodes and checks a payload; nullopt (with `why`) when its size or checksum is off.
inline std::optional<PayloadHead> decode_payload(std::span<const std::byte> in, std::string* why) {
  if (in.size() < kHeadBytes) {
    *why = "payload of " + std::to_string(in.size()) + " bytes is shorter than its head";
    return std::nullopt;
  }
  PayloadHead head;
  std::memcpy(&head, in.data(), kHeadBytes);
  if (in.size() != kHeadBytes + head.filler) {
    *why = "payload size " + std::to_string(in.size()) + " != head + filler " + std::to_string(head.filler);
    return std::nullopt;
  }
  if (payload_checksum(head, in.subspan(kHeadBytes)) != head.checksum) {
    *why = "checksum mismatch (producer " + std::to_string(head.producer) + " seq " + std::to_string(head.seq) + ")";
    return std::nullopt;
  }
  return head;
}

// ---------------------------------------------------------------------------------------------------------------
// Memory shared with forked children: mapped before fork, so every child sees the parent's pages at the same address.
class SharedMap {
 public:
  explicit SharedMap(std::size_t bytes) : bytes_(bytes) {
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap of the shared tally failed");
    base_ = static_cast<std::byte*>(p);
  }
  ~SharedMap() { ::munmap(base_, bytes_); }
  SharedMap(const SharedMap&) = delete;
  SharedMap& operator=(const SharedMap&) = delete;
  std::byte* data() const { return base_; }
  std::size_t size() const { return bytes_; }

 private:
  std::byte* base_ = nullptr;
  std::size_t bytes_ = 0;
};

inline std::uint64_t atomic_load(const std::uint64_t& x) {
  return std::atomic_ref<const std::uint64_t>(x).load(std::memory_order_acquire);
}
inline std::uint64_t atomic_add(std::uint64_t& x, std::uint64_t v) {
  return std::atomic_ref<std::uint64_t>(x).fetch_add(v, std::memory_order_acq_rel);
}

// One word shared by every role of a test (mapped on first use, which the fixtures make happen before any fork): set
// when a role fails, so the others stop at their next idle moment instead of waiting out the stall limit.
inline std::uint64_t& abort_word() {
  static SharedMap map(64);
  return *reinterpret_cast<std::uint64_t*>(map.data());
}
inline void request_abort() { atomic_add(abort_word(), 1); }
inline bool aborted() { return atomic_load(abort_word()) != 0; }
inline const std::string kAborted = "aborted: another role failed";

// Says "stalled" once a progress count has not moved for kStallLimit.
class StallDetector {
 public:
  bool stalled(std::uint64_t progress) {
    if (progress != last_) {
      last_ = progress;
      at_ = Clock::now();
      return false;
    }
    return Clock::now() - at_ > kStallLimit;
  }

 private:
  std::uint64_t last_ = ~std::uint64_t{0};
  Clock::time_point at_ = Clock::now();
};

// A bitmap of `bits` bits in shared words. set() says whether the bit was clear before (false: a duplicate).
class Bitmap {
 public:
  Bitmap() = default;
  Bitmap(std::uint64_t* words, std::uint64_t bits) : words_(words), bits_(bits) {}
  static std::size_t words_for(std::uint64_t bits) { return static_cast<std::size_t>((bits + 63) / 64); }

  bool set(std::uint64_t i) {
    const std::uint64_t mask = std::uint64_t{1} << (i % 64);
    return (std::atomic_ref<std::uint64_t>(words_[i / 64]).fetch_or(mask, std::memory_order_acq_rel) & mask) == 0;
  }
  bool test(std::uint64_t i) const {
    return (std::atomic_ref<const std::uint64_t>(words_[i / 64]).load(std::memory_order_acquire) >> (i % 64)) & 1;
  }
  std::uint64_t count() const {
    std::uint64_t n = 0;
    for (std::uint64_t i = 0; i < bits_; ++i) n += test(i) ? 1 : 0;
    return n;
  }
  // The first clear bit in [0, bits), or nullopt when all are set.
  std::optional<std::uint64_t> first_clear() const {
    for (std::uint64_t i = 0; i < bits_; ++i)
      if (!test(i)) return i;
    return std::nullopt;
  }
  std::uint64_t bits() const { return bits_; }

 private:
  std::uint64_t* words_ = nullptr;
  std::uint64_t bits_ = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// Process control for the exact-moment tests. Every wait is bounded; a miss fails the test instead of hanging.

// The state letter of /proc/PID/stat ('R', 'S', 'T', 'Z', ...), or 0 if there is no such process.
inline char proc_state(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return 0;
  char buf[512] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close = std::strrchr(buf, ')');
  return close != nullptr && close[1] == ' ' ? close[2] : 0;
}

// SIGSTOPs `pid` and returns once the kernel reports it stopped (waitpid WUNTRACED), or false after `timeout`.
inline bool stop_process(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  if (::kill(pid, SIGSTOP) != 0) return false;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WUNTRACED | WNOHANG);
    if (r == pid && WIFSTOPPED(status)) return true;
    if (r < 0 || Clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
}

// SIGCONTs a stopped process.
inline bool continue_process(pid_t pid) { return ::kill(pid, SIGCONT) == 0; }

// Waits until `pid` has exited WITHOUT reaping it (waitid WNOWAIT): it stays a zombie. False after `timeout`.
inline bool wait_zombie(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | WNOHANG) == 0 && info.si_pid == pid)
      return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
}

// Polls `pred` (yielding between looks) until it holds or `timeout` passes: a bounded wait on a condition, never a
// sleep standing in for one.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// A forked child's failure: the reason on stderr (the parent's test output shows it), exit code 1.
inline int child_fail(const std::string& what) {
  std::fprintf(stderr, "child %d: %s\n", ::getpid(), what.c_str());
  return 1;
}

// A topic of the smallest ring (64 KiB): a few hundred records fill it, so producers wait for the groups.
inline mq::TopicOptions small_ring() {
  mq::TopicOptions options;
  options.capacity = std::size_t{64} << 10;
  return options;
}

// A payload for the small tests: producer 0, sequence `seq`, `filler` random bytes.
inline std::vector<std::byte> numbered_payload(std::uint64_t seq, std::size_t filler = 64, std::uint32_t producer = 0,
                                               std::uint64_t offset = kUnknownOffset) {
  std::mt19937_64 rng(seq * 7919 + producer);
  std::vector<std::byte> out(kHeadBytes + filler);
  encode_payload(out, producer, seq, offset, rng);
  return out;
}

// Options of a consumer group member. (The name is moved in, not assigned from a literal: g++ 12 reports a false
// -Wrestrict on assigning a string literal to a std::string, GCC PR 105329.)
inline mq::ConsumerOptions member_options(std::string group, mq::Start start, mq::Wait wait, bool auto_ack) {
  mq::ConsumerOptions o;
  o.group = std::move(group);
  o.start = start;
  o.wait = wait;
  o.auto_ack = auto_ack;
  return o;
}

// One record as a test saw it.
struct Got {
  mq::Offset offset = 0;
  bool redelivered = false;
  std::uint64_t seq = 0;
  std::uint64_t claimed_offset = kUnknownOffset;  // the offset the producer wrote in, for claims
};

// Polls until `count` records arrived (each poll may wait up to `per_poll`; a timeout is a failure), checking every
// payload and appending to `out`. With `ack`, acks each record as it arrives. Returns "" or what went wrong.
inline std::string take_records(mq::Consumer& consumer, std::size_t count, std::vector<Got>& out, bool ack = true,
                                std::chrono::milliseconds per_poll = std::chrono::seconds(20)) {
  for (std::size_t i = 0; i < count; ++i) {
    auto m = consumer.poll(per_poll);
    if (!m) return "after " + std::to_string(i) + " of " + std::to_string(count) + " records: " + m.error().what();
    std::string why;
    auto head = decode_payload(m->payload(), &why);
    if (!head) return "offset " + std::to_string(m->offset()) + ": " + why;
    out.push_back(Got{m->offset(), m->redelivered(), head->seq, head->offset});
    if (ack)
      if (auto a = consumer.ack(std::move(*m)); !a) return std::string("ack: ") + a.error().what();
  }
  return {};
}

// ---------------------------------------------------------------------------------------------------------------
// What the many-producers / many-groups scenario publishes.
struct Workload {
  unsigned producers = 4;
  std::uint64_t per_producer = 1000;
  std::size_t max_filler = 96;  // filler bytes per record: uniform in [0, max_filler]
  std::uint64_t seed = 0x5eed;
  std::uint64_t total() const { return producers * per_producer; }
};

// Per-group counters (all written with atomics; one cache line each).
struct alignas(64) GroupCounters {
  std::uint64_t delivered;      // deliveries to the group's members, duplicates included
  std::uint64_t dup_offset;     // an offset delivered twice
  std::uint64_t dup_record;     // a (producer, seq) delivered twice
  std::uint64_t bad_payload;    // size or checksum off
  std::uint64_t out_of_order;   // one member saw a producer's sequence go backwards
  std::uint64_t out_of_range;   // offset >= N or producer/seq outside the workload
  std::uint64_t offset_mismatch;  // a claimed record's offset (written by its producer) != the delivered offset
  std::uint64_t redelivered;    // deliveries flagged redelivered() (no member dies here: must stay 0)
};

// Exactly-once bookkeeping for G groups over N records, in one SharedMap: counters, then per group a bitmap by
// offset and a bitmap by (producer, seq).
class Tally {
 public:
  static std::size_t bytes_for(std::size_t groups, std::uint64_t records) {
    return groups * sizeof(GroupCounters) + 2 * groups * Bitmap::words_for(records) * sizeof(std::uint64_t);
  }
  Tally(const SharedMap& map, std::size_t groups, std::uint64_t records) : groups_(groups), records_(records) {
    if (map.size() < bytes_for(groups, records)) throw std::runtime_error("tally map too small");
    counters_ = reinterpret_cast<GroupCounters*>(map.data());
    auto* words = reinterpret_cast<std::uint64_t*>(map.data() + groups * sizeof(GroupCounters));
    const std::size_t per = Bitmap::words_for(records);
    for (std::size_t g = 0; g < groups; ++g) {
      by_offset_.emplace_back(words + (2 * g) * per, records);
      by_record_.emplace_back(words + (2 * g + 1) * per, records);
    }
  }
  GroupCounters& counters(std::size_t g) const { return counters_[g]; }
  Bitmap& by_offset(std::size_t g) { return by_offset_[g]; }
  Bitmap& by_record(std::size_t g) { return by_record_[g]; }
  std::size_t groups() const { return groups_; }
  std::uint64_t records() const { return records_; }

 private:
  std::size_t groups_;
  std::uint64_t records_;
  GroupCounters* counters_ = nullptr;
  std::vector<Bitmap> by_offset_;
  std::vector<Bitmap> by_record_;
};

// ---------------------------------------------------------------------------------------------------------------
// How many members sleep on the topic's futex word. Written against either form of the segment header (a waiter
// count, or a per-member bitmap of sleepers), so these tests do not pin one internal layout.
template <class Header>
std::uint64_t sleeping_members(const Header& h) {
  if constexpr (requires { h.sleepers; }) {
    std::uint64_t n = 0;
    for (const auto& word : h.sleepers) n += static_cast<std::uint64_t>(std::popcount(word.load()));
    return n;
  } else {
    return h.waiters.load();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A snapshot of a topic's shared state (tail, producer intents, groups, members, the record each group waits at),
// printed when a scenario wedges so the failure explains itself. Read without locks: a diagnostic, not a check.
inline std::string dump_topic(const mq::Topic& topic) {
  using namespace mq::detail;
  const Segment& seg = *topic.segment();
  auto& h = seg.header();
  const Word16 tail = load16(&h.tail);
  std::string out = "topic " + seg.name() + ": tail pos=" + std::to_string(tail.lo) +
                    " next_offset=" + std::to_string(tail.hi & kOffsetMask) +
                    " epoch=" + std::to_string(tail.hi >> kEpochShift) + " sleepers=" + std::to_string(sleeping_members(h)) +
                    " table_lock=" + std::to_string(owner_pid(h.table_lock.load()));
  const auto limit = producer_limit(seg);
  out += " producer_limit=" + (limit ? std::to_string(*limit) : std::string("(moving)")) + "\n";
  for (std::size_t i = 0; i < mq::kMaxProducers; ++i) {
    auto& p = seg.producer(i);
    if (p.owner.load() == 0) continue;
    out += "  producer slot " + std::to_string(i) + " pid=" + std::to_string(owner_pid(p.owner.load())) +
           " intent_pos=" + (p.intent_pos.load() == kNone ? std::string("none") : std::to_string(p.intent_pos.load())) +
           " len=" + std::to_string(p.intent_len.load()) + " off=" + std::to_string(p.intent_off.load()) +
           " published=" + std::to_string(p.published.load()) + " stalled=" + std::to_string(p.stalled.load()) + "\n";
  }
  for (std::size_t g = 0; g < mq::kMaxGroups; ++g) {
    auto& b = seg.group(g);
    if (b.state.load() == kGroupFree) continue;
    const Word16 next = load16(&b.next);
    const auto low = group_low(seg, g);
    out += "  group " + std::string(b.name, b.name_len) + " state=" + std::to_string(b.state.load()) +
           " next pos=" + std::to_string(next.lo) + " off=" + std::to_string(next.hi) + " gen=" +
           std::to_string(b.gen.load()) + " low=" + (low ? std::to_string(*low) : std::string("?")) +
           " redeliver_count=" + std::to_string(b.redeliver_count.load()) + " redeliver=[";
    for (auto& r : b.redeliver)
      if (r.load() != 0) out += std::to_string(r.load() - 1) + " ";
    out += "]";
    auto rec = read_record(seg, next.lo);
    if (rec)
      out += " record@next state=" + std::to_string(rec->state) + " offset=" + std::to_string(rec->offset) +
             " len=" + std::to_string(rec->length);
    else
      out += std::string(" record@next error: ") + rec.error().what();
    out += "\n";
    for (std::size_t m = 0; m < mq::kMaxMembers; ++m) {
      auto& slot = b.members[m];
      if (slot.owner.load() == 0 && slot.tail.load() == slot.head.load()) continue;
      out += "    member " + std::to_string(m) + " pid=" + std::to_string(owner_pid(slot.owner.load())) +
             " pending=" + std::to_string(slot.pending.load()) +
             " low=" + (slot.low.load() == kNone ? std::string("none") : std::to_string(slot.low.load())) +
             " head=" + std::to_string(slot.head.load()) + " tail=" + std::to_string(slot.tail.load()) + " held=[";
      for (std::uint64_t i = slot.head.load(); i != slot.tail.load() && i - slot.head.load() < mq::kMaxUnacked; ++i)
        out += std::to_string(slot.held[i % mq::kMaxUnacked].load()) + " ";
      out += "]\n";
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Roles. Each returns "" on success, else what went wrong first.

// Publishes w.per_producer records as producer `id`, mixing publish() (copy) and claim()/commit() (zero-copy; the
// claim's offset is written into the payload so members can cross-check it). Checks that its offsets increase.
// A full topic (Errc::full after a short block timeout) is retried until the run aborts or nothing moved for
// kStallLimit; nothing was written by a publish that said `full`, so the order is kept.
inline std::string run_producer(const mq::Topic& topic, unsigned id, const Workload& w) {
  auto producer = mq::Producer::make(topic, mq::ProducerOptions{std::chrono::milliseconds(500)});
  if (!producer) return "producer " + std::to_string(id) + ": " + producer.error().what();
  std::mt19937_64 rng(w.seed * 1000003 + id);
  std::vector<std::byte> buffer(kHeadBytes + w.max_filler);
  std::uint64_t last = kUnknownOffset;
  StallDetector stall;
  // Retry on full; true to go on, false with `error` set to give up.
  auto full = [&](const mq::Error& e, std::uint64_t seq, std::string& error) {
    if (e.code() != mq::Errc::full) {
      error = "producer " + std::to_string(id) + " seq " + std::to_string(seq) + ": " + e.what();
    } else if (aborted()) {
      error = kAborted;
    } else if (stall.stalled(topic.info().bytes_written)) {  // (slow path only: every block timeout)
      error = "producer " + std::to_string(id) + " seq " + std::to_string(seq) + ": full for " +
              std::to_string(kStallLimit.count()) + " s\n" + dump_topic(topic);
    }
    return error.empty();
  };
  for (std::uint64_t seq = 0; seq < w.per_producer; ++seq) {
    const std::size_t size = kHeadBytes + static_cast<std::size_t>(rng() % (w.max_filler + 1));
    std::uint64_t offset = 0;
    std::string error;
    if (rng() % 3 == 0) {
      auto claim = producer->claim(size);
      while (!claim && full(claim.error(), seq, error)) claim = producer->claim(size);
      if (!claim) return error;
      if (claim->bytes().size() != size) return "claim gave " + std::to_string(claim->bytes().size()) + " bytes";
      offset = claim->offset();
      encode_payload(claim->bytes(), id, seq, offset, rng);
      auto committed = std::move(*claim).commit();
      if (!committed) return "producer " + std::to_string(id) + " commit: " + committed.error().what();
      if (*committed != offset)
        return "commit returned offset " + std::to_string(*committed) + " for a claim at " + std::to_string(offset);
    } else {
      encode_payload(std::span(buffer.data(), size), id, seq, kUnknownOffset, rng);
      auto published = producer->publish(std::span<const std::byte>(buffer.data(), size));
      while (!published && full(published.error(), seq, error))
        published = producer->publish(std::span<const std::byte>(buffer.data(), size));
      if (!published) return error;
      offset = *published;
    }
    if (last != kUnknownOffset && offset <= last)
      return "producer " + std::to_string(id) + ": offset " + std::to_string(offset) + " after " +
             std::to_string(last);
    last = offset;
  }
  return {};
}

struct MemberSpec {
  std::string group;
  std::size_t group_index = 0;
  bool auto_ack = true;
  unsigned ack_every = 1;  // without auto_ack: ack every this many records (an ack covers the earlier ones)
  mq::Wait wait = mq::Wait::spin_futex;
};

// Consumes as one member of spec.group until the group as a whole has received w.total() records, checking every
// payload, the per-producer order this member sees, and marking the group's bitmaps (a bit set twice = duplicate).
inline std::string run_member(const mq::Topic& topic, const MemberSpec& spec, const Workload& w, Tally& tally) {
  auto consumer = mq::Consumer::make(topic, member_options(spec.group, mq::Start::earliest, spec.wait, spec.auto_ack));
  if (!consumer) return "member of " + spec.group + ": " + consumer.error().what();
  GroupCounters& c = tally.counters(spec.group_index);
  Bitmap& by_offset = tally.by_offset(spec.group_index);
  Bitmap& by_record = tally.by_record(spec.group_index);
  const std::uint64_t total = w.total();
  std::vector<std::uint64_t> next_seq(w.producers, 0);
  std::string first_error;
  auto fail = [&](std::uint64_t& counter, const std::string& what) {
    atomic_add(counter, 1);
    if (first_error.empty()) first_error = "group " + spec.group + ": " + what;
  };
  StallDetector stall;
  unsigned since_ack = 0;
  for (;;) {
    auto m = consumer->poll(std::chrono::milliseconds(20));
    if (!m) {
      if (m.error().code() != mq::Errc::timed_out)
        return "group " + spec.group + " poll: " + m.error().what() + "\n" + dump_topic(topic);
      // Idle: ack what we hold. In a block topic unacked records pin the ring (their spans stay valid until acked),
      // so a member that waits for more while holding some would hold every producer back.
      if (!spec.auto_ack) {
        since_ack = 0;
        if (auto acked = consumer->ack_all(); !acked) return "ack_all: " + std::string(acked.error().what());
      }
      const std::uint64_t now_seen = atomic_load(c.delivered);
      if (now_seen >= total) break;
      if (aborted()) return kAborted;
      if (stall.stalled(now_seen))
        return "group " + spec.group + " wedged: " + std::to_string(now_seen) + " of " + std::to_string(total) +
               " records after no progress for " + std::to_string(kStallLimit.count()) + " s\n" + dump_topic(topic);
      continue;
    }
    const std::uint64_t offset = m->offset();
    if (m->redelivered()) fail(c.redelivered, "offset " + std::to_string(offset) + " flagged redelivered");
    if (offset >= total) {
      fail(c.out_of_range, "offset " + std::to_string(offset) + " >= " + std::to_string(total));
    } else if (!by_offset.set(offset)) {
      fail(c.dup_offset, "offset " + std::to_string(offset) + " delivered twice");
    }
    std::string why;
    if (auto head = decode_payload(m->payload(), &why)) {
      if (head->producer >= w.producers || head->seq >= w.per_producer) {
        fail(c.out_of_range, "producer " + std::to_string(head->producer) + " seq " + std::to_string(head->seq));
      } else {
        if (!by_record.set(head->producer * w.per_producer + head->seq))
          fail(c.dup_record, "producer " + std::to_string(head->producer) + " seq " + std::to_string(head->seq) +
                                 " delivered twice");
        if (head->seq < next_seq[head->producer])
          fail(c.out_of_order, "producer " + std::to_string(head->producer) + " seq " + std::to_string(head->seq) +
                                   " after " + std::to_string(next_seq[head->producer] - 1));
        next_seq[head->producer] = head->seq + 1;
        if (head->offset != kUnknownOffset && head->offset != offset)
          fail(c.offset_mismatch, "claimed offset " + std::to_string(head->offset) + " delivered as " +
                                      std::to_string(offset));
      }
    } else {
      fail(c.bad_payload, "offset " + std::to_string(offset) + ": " + why);
    }
    atomic_add(c.delivered, 1);
    if (!spec.auto_ack && ++since_ack >= spec.ack_every) {
      since_ack = 0;
      if (auto acked = consumer->ack(std::move(*m)); !acked) return "ack: " + std::string(acked.error().what());
    }
  }
  if (auto acked = consumer->ack_all(); !acked) return "ack_all: " + std::string(acked.error().what());
  return first_error;
}

// ---------------------------------------------------------------------------------------------------------------
// Crews: run roles concurrently as forked children (each opens the topic again: handles belong to the process that
// made them) or as threads sharing one Topic handle (one mapping: what ThreadSanitizer can check).
using Role = std::function<std::string(const mq::Topic&)>;

class ProcessCrew {
 public:
  explicit ProcessCrew(std::string topic_name) : topic_name_(std::move(topic_name)) {}
  void spawn(std::string name, const Role& role) {
    names_.push_back(std::move(name));
    const std::string& who = names_.back();
    const std::string topic_name = topic_name_;
    children_.push_back(std::make_unique<mqtest::Child>([&who, &role, topic_name]() -> int {
      auto topic = mq::Topic::open(topic_name);
      if (!topic) {
        std::fprintf(stderr, "%s (pid %d): open: %s\n", who.c_str(), ::getpid(), topic.error().what());
        return 2;
      }
      const std::string error = role(*topic);
      if (error == kAborted) return 3;
      if (!error.empty()) {
        request_abort();
        std::fprintf(stderr, "%s (pid %d): %s\n", who.c_str(), ::getpid(), error.c_str());
        return 1;
      }
      return 0;
    }));
  }
  // Waits for every child (all within kCrewLimit); returns one line per child that failed.
  std::vector<std::string> join() {
    std::vector<std::string> failures;
    int aborted_roles = 0;
    const auto deadline = Clock::now() + kCrewLimit;
    for (std::size_t i = 0; i < children_.size(); ++i) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const int code = children_[i]->wait(std::max(left, std::chrono::milliseconds(1)));
      if (code == 3) ++aborted_roles;
      else if (code != 0) failures.push_back(names_[i] + " exited with " + std::to_string(code) + " (see its stderr)");
    }
    if (failures.empty() && aborted_roles != 0) failures.push_back("roles aborted without a failure");
    return failures;
  }

 private:
  std::string topic_name_;
  std::deque<std::string> names_;  // stable addresses: children captured references before fork
  std::vector<std::unique_ptr<mqtest::Child>> children_;
};

class ThreadCrew {
 public:
  explicit ThreadCrew(mq::Topic topic) : topic_(std::move(topic)) {}
  ~ThreadCrew() { join(); }
  void spawn(std::string name, Role role) {
    threads_.emplace_back([this, name = std::move(name), role = std::move(role)] {
      std::string error;
      try {
        error = role(topic_);
      } catch (const std::exception& e) {
        error = std::string("exception: ") + e.what();
      }
      if (error == kAborted) {
        std::lock_guard lock(mutex_);
        ++aborted_roles_;
      } else if (!error.empty()) {
        request_abort();
        std::lock_guard lock(mutex_);
        failures_.push_back(name + ": " + error);
      }
    });
  }
  std::vector<std::string> join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    std::lock_guard lock(mutex_);
    if (failures_.empty() && aborted_roles_ != 0) failures_.push_back("roles aborted without a failure");
    return failures_;
  }

 private:
  mq::Topic topic_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::vector<std::string> failures_;
  int aborted_roles_ = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// The many-producers / many-groups scenario, with either crew.

struct ManyToMany {
  Workload workload;
  std::vector<unsigned> members{1, 2, 3};  // members per group
  std::string group_name(std::size_t g) const { return "group-" + std::to_string(g + 1); }
};

// Member g.m's options: a mix of auto-ack, explicit acks every few records, and wait strategies.
inline MemberSpec member_spec(const ManyToMany& s, std::size_t g, unsigned m, bool allow_spin_yield) {
  MemberSpec spec;
  spec.group = s.group_name(g);
  spec.group_index = g;
  spec.auto_ack = (m % 2) == 0;
  spec.ack_every = m == 1 ? 7 : 1;
  spec.wait = m == 1 ? mq::Wait::futex : (m == 2 && allow_spin_yield ? mq::Wait::spin_yield : mq::Wait::spin_futex);
  return spec;
}

// Starts members then producers on `crew`. The groups must exist already (created at earliest before the first
// publish, so block back-pressure keeps every record for them).
template <class Crew>
void start_many_to_many(Crew& crew, const ManyToMany& s, Tally& tally, bool allow_spin_yield) {
  for (std::size_t g = 0; g < s.members.size(); ++g)
    for (unsigned m = 0; m < s.members[g]; ++m) {
      const MemberSpec spec = member_spec(s, g, m, allow_spin_yield);
      crew.spawn(spec.group + "/member-" + std::to_string(m),
                 [spec, &s, &tally](const mq::Topic& t) { return run_member(t, spec, s.workload, tally); });
    }
  for (unsigned p = 0; p < s.workload.producers; ++p)
    crew.spawn("producer-" + std::to_string(p),
               [p, &s](const mq::Topic& t) { return run_producer(t, p, s.workload); });
}

// Parent-side checks after the crew finished: per group every offset 0..N-1 and every (producer, seq) exactly once,
// no bad payload, no reordering; and the topic agrees (every group committed N, nothing unacked).
inline void expect_exactly_once(Tally& tally, const ManyToMany& s, const mq::Topic& topic) {
  const std::uint64_t n = s.workload.total();
  for (std::size_t g = 0; g < tally.groups(); ++g) {
    SCOPED_TRACE(s.group_name(g));
    GroupCounters& c = tally.counters(g);
    EXPECT_EQ(atomic_load(c.delivered), n);
    EXPECT_EQ(atomic_load(c.dup_offset), 0u);
    EXPECT_EQ(atomic_load(c.dup_record), 0u);
    EXPECT_EQ(atomic_load(c.bad_payload), 0u);
    EXPECT_EQ(atomic_load(c.out_of_order), 0u);
    EXPECT_EQ(atomic_load(c.out_of_range), 0u);
    EXPECT_EQ(atomic_load(c.offset_mismatch), 0u);
    EXPECT_EQ(atomic_load(c.redelivered), 0u);
    const auto missing_offset = tally.by_offset(g).first_clear();
    EXPECT_FALSE(missing_offset) << "offset " << missing_offset.value_or(0) << " never delivered (gap)";
    const auto missing_record = tally.by_record(g).first_clear();
    EXPECT_FALSE(missing_record) << "producer " << missing_record.value_or(0) / s.workload.per_producer << " seq "
                                 << missing_record.value_or(0) % s.workload.per_producer << " never delivered";
  }
  const mq::TopicInfo info = topic.info();
  EXPECT_EQ(info.latest, n);
  EXPECT_EQ(info.producers, 0u);
  ASSERT_EQ(info.groups.size(), s.members.size());
  for (const auto& g : info.groups) {
    SCOPED_TRACE(g.name);
    EXPECT_EQ(g.committed, n);
    EXPECT_EQ(g.next, n);
    EXPECT_EQ(g.lag, 0u);
    EXPECT_EQ(g.members, 0u);
    EXPECT_EQ(g.unacked, 0u);
  }
}

inline void expect_no_failures(const std::vector<std::string>& failures) {
  for (const auto& f : failures) ADD_FAILURE() << f;
}

// Runs the scenario end to end: a fresh block topic `name` of `capacity` with its groups created at earliest (before
// the first publish, so back-pressure keeps every record for them), members and producers on a Crew made from the
// topic (ThreadCrew) or its name (ProcessCrew), then the exactly-once checks.
template <class Crew>
void run_many_to_many(const std::string& name, std::size_t capacity, const ManyToMany& s, bool allow_spin_yield) {
  auto topic = mq::Topic::create(name, {.capacity = capacity, .policy = mq::Policy::block});
  ASSERT_TRUE(topic) << topic.error().what();
  for (std::size_t g = 0; g < s.members.size(); ++g)
    ASSERT_TRUE(topic->create_group(s.group_name(g), mq::Start::earliest));
  SharedMap map(Tally::bytes_for(s.members.size(), s.workload.total()));
  Tally tally(map, s.members.size(), s.workload.total());
  std::vector<std::string> failures;
  const auto run = [&](Crew& crew) {
    start_many_to_many(crew, s, tally, allow_spin_yield);
    failures = crew.join();
  };
  if constexpr (std::is_constructible_v<Crew, mq::Topic>) {
    Crew crew(*topic);  // threads: joined before the checks
    run(crew);
  } else {
    Crew crew(name);
    run(crew);
  }
  expect_no_failures(failures);
  expect_exactly_once(tally, s, *topic);
}

// ---------------------------------------------------------------------------------------------------------------
// Groups that move while an exclusive producer publishes into a full block topic (process_exclusive.cpp runs the
// producer as a process, concurrency_exclusive.cpp as a thread). Until `done()`, round after round: group "mover" is
// created at the earliest record, read a little, reset to the earliest record again, read a little, then deleted.
// The producer claims with plain stores and learns of each move through the handover (libmq/doc/design.md,
// "Exclusive producers"); a claim that passed a group's limit would overwrite the records that group reads, which
// their checksums and offsets show: each record read must be intact and carry the sequence number equal to its
// offset (one producer, publishing seq = 0, 1, 2, ...). Returns "" or what went wrong; `rounds` counts the rounds.
inline std::string move_groups_until(mq::Topic& topic, const std::function<bool()>& done,
                                     std::uint64_t& rounds) {
  auto read = [&](mq::Consumer& member, const std::string& when) -> std::string {
    std::vector<Got> got;
    if (auto why = take_records(member, 3, got); !why.empty()) return when + ": " + why;
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (got[i].seq != got[i].offset)
        return when + ": offset " + std::to_string(got[i].offset) + " holds the record of seq " +
               std::to_string(got[i].seq);
      if (i != 0 && got[i].offset != got[i - 1].offset + 1) return when + ": offsets out of order";
    }
    return {};
  };
  for (rounds = 0; !done(); ++rounds) {
    const std::string at = "round " + std::to_string(rounds);
    if (auto made = topic.create_group("mover", mq::Start::earliest); !made)
      return at + ": create: " + made.error().what();
    {
      auto member = mq::Consumer::make(topic, member_options("mover", mq::Start::earliest, mq::Wait::spin_futex, true));
      if (!member) return at + ": join: " + member.error().what();
      if (auto why = read(*member, at + " after the create"); !why.empty()) return why;
      if (auto r = topic.reset_group("mover", mq::Start::earliest); !r) return at + ": reset: " + r.error().what();
      if (auto why = read(*member, at + " after the reset"); !why.empty()) return why;
    }
    if (auto gone = topic.delete_group("mover"); !gone) return at + ": delete: " + gone.error().what();
  }
  return {};
}

// ---------------------------------------------------------------------------------------------------------------
// A lone member hands over and back (process_lone_member.cpp runs the roles as processes, concurrency_lone_member.cpp
// as threads). A producer publishes `records` (seq = offset) into a full block topic; member "lone" of group "g"
// consumes, alone most of the time, so it takes by plain store; a "visitor" joins the group again and again, takes
// a record or two and leaves, each join handing the lone member over to the CAS protocol and each leave handing it
// back (libmq/doc/design.md, "Lone members"). No one dies: every record must be delivered exactly once, intact.
struct LoneTally {
  explicit LoneTally(std::uint64_t records)
      : map(64 + Bitmap::words_for(records) * 8),
        words(reinterpret_cast<std::uint64_t*>(map.data())),
        delivered(words + 8, records) {}
  SharedMap map;
  std::uint64_t* words;  // [0] duplicates, [1] records delivered, [2] visits
  Bitmap delivered;
  std::uint64_t& duplicates() { return words[0]; }
  std::uint64_t& count() { return words[1]; }
  std::uint64_t& visits() { return words[2]; }
};

// Takes one record as a member of "g": checks it and marks it delivered. "" or what went wrong; `got` says whether a
// record came before `wait` passed.
inline std::string take_one(mq::Consumer& member, LoneTally& tally, std::chrono::milliseconds wait, bool& got) {
  got = false;
  auto m = member.poll(wait);
  if (!m) return m.error().code() == mq::Errc::timed_out ? "" : std::string(m.error().what());
  std::string why;
  auto head = decode_payload(m->payload(), &why);
  if (!head) return "offset " + std::to_string(m->offset()) + ": " + why;
  if (head->seq != m->offset())
    return "offset " + std::to_string(m->offset()) + " holds seq " + std::to_string(head->seq);
  if (m->offset() >= tally.delivered.bits()) return "offset " + std::to_string(m->offset()) + " past the last";
  if (!tally.delivered.set(m->offset())) {
    atomic_add(tally.duplicates(), 1);
    return "offset " + std::to_string(m->offset()) + " delivered twice";
  }
  atomic_add(tally.count(), 1);
  got = true;
  return member.ack(std::move(*m)) ? "" : "ack failed";
}

template <class Crew>
void start_lone_handover(Crew& crew, std::uint64_t records, LoneTally& tally) {
  const auto all_in = [&tally, records] { return atomic_load(tally.count()) >= records || aborted(); };
  crew.spawn("producer", [records](const mq::Topic& topic) -> std::string {
    auto p = mq::Producer::make(topic);
    if (!p) return p.error().what();
    for (std::uint64_t seq = 0; seq < records; ++seq) {
      if (aborted()) return kAborted;
      auto r = p->publish(numbered_payload(seq, 32));
      if (!r) return "seq " + std::to_string(seq) + ": " + r.error().what();
      if (*r != seq) return "seq " + std::to_string(seq) + " got offset " + std::to_string(*r);
    }
    return {};
  });
  crew.spawn("lone", [&tally, all_in](const mq::Topic& topic) -> std::string {
    auto member = mq::Consumer::make(topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, false));
    if (!member) return member.error().what();
    StallDetector stall;
    while (!all_in()) {
      bool got = false;
      if (auto why = take_one(*member, tally, std::chrono::milliseconds(50), got); !why.empty()) return why;
      if (stall.stalled(atomic_load(tally.count()))) return "stalled at " + std::to_string(atomic_load(tally.count()));
    }
    return aborted() ? kAborted : "";
  });
  crew.spawn("visitor", [&tally, all_in](const mq::Topic& topic) -> std::string {
    while (!all_in()) {
      auto member = mq::Consumer::make(topic, member_options("g", mq::Start::earliest, mq::Wait::spin_futex, false));
      if (!member) return "join: " + std::string(member.error().what());
      atomic_add(tally.visits(), 1);
      for (int i = 0; i < 2; ++i) {
        bool got = false;
        if (auto why = take_one(*member, tally, std::chrono::milliseconds(1), got); !why.empty()) return why;
      }
    }
    return aborted() ? kAborted : "";
  });
}

}  // namespace mqtest::scenario
