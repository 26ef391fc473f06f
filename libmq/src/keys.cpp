// A group's key lock and key table (keys.hpp).
#include "keys.hpp"

#include <sched.h>

#include "groups.hpp"
#include "liveness.hpp"
#include "log.hpp"

namespace mq::detail {

std::uint32_t hash_key(std::span<const std::byte> key) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, folded to 32 bits
  for (const std::byte b : key) h = (h ^ static_cast<std::uint64_t>(b)) * 0x100000001b3ULL;
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

std::uint64_t key_code_of(const Segment& seg, std::uint64_t position, const RecordView& v) {
  if (v.state != kCommitted || v.key_len == kNullKey) return 0;
  const std::byte* key = seg.ring() + (position & seg.mask()) + kRecordHeaderBytes;  // checked by read_record
  return kKeyed | hash_key(std::span<const std::byte>(key, v.key_len));
}

std::uint64_t key_code_at(const Segment& seg, std::uint64_t position) {
  auto v = read_record(seg, position);
  return v ? key_code_of(seg, position, *v) : 0;
}

KeyLock::KeyLock(const Segment& seg, std::size_t g, std::chrono::nanoseconds wait) : seg_(seg), group_(g) {
  auto& lock = seg.keys(g).lock;
  const std::uint64_t self = self_owner();
  std::chrono::steady_clock::time_point deadline{};  // read once it waits: most takes find the lock free
  for (unsigned spins = 0;; ++spins) {
    std::uint64_t holder = 0;
    if (lock.load(std::memory_order_relaxed) == 0 && lock.compare_exchange_strong(holder, self)) {
      held_ = true;
      return;
    }
    if (spins < 64) continue;
    if (spins == 64) deadline = std::chrono::steady_clock::now() + wait;
    if (spins % 256 == 0) {
      holder = lock.load();
      if (holder != 0 && holder != self && owner_dead(holder) && lock.compare_exchange_strong(holder, self)) {
        held_ = true;
        rebuild_keys(seg, g);
        return;
      }
      if (std::chrono::steady_clock::now() >= deadline) return;
    }
    sched_yield();  // the holder is a few hundred nanoseconds from done, unless it lost its CPU: give it ours
  }
}

KeyLock::~KeyLock() {
  if (held_) seg_.keys(group_).lock.store(0);
}

namespace {

std::size_t home(std::uint32_t hash) { return hash % kKeySlots; }

// The slot holding `hash`, or kKeySlots.
std::size_t find_key(const KeyTable& table, std::uint32_t hash) {
  for (std::size_t i = home(hash), n = 0; n < kKeySlots; i = (i + 1) % kKeySlots, ++n) {
    const std::uint64_t e = table.keys[i].load(std::memory_order_relaxed);
    if (e == 0) return kKeySlots;
    if (key_entry_hash(e) == hash) return i;
  }
  return kKeySlots;
}

// Frees slot i and moves later entries of its probe run back into the hole (no tombstones: the table is only ever
// changed under the lock).
void erase_key(KeyTable& table, std::size_t i) {
  for (std::size_t j = (i + 1) % kKeySlots;; j = (j + 1) % kKeySlots) {
    const std::uint64_t e = table.keys[j].load(std::memory_order_relaxed);
    if (e == 0 || j == i) break;
    const std::size_t k = home(key_entry_hash(e));
    // e may fill the hole at i only if its home is not cyclically in (i, j].
    const bool in_between = i <= j ? (k > i && k <= j) : (k > i || k <= j);
    if (in_between) continue;
    table.keys[i].store(e, std::memory_order_relaxed);
    i = j;
  }
  table.keys[i].store(0, std::memory_order_relaxed);
}

}  // namespace

std::uint64_t key_holder(const KeyTable& table, std::uint64_t code) {
  if (code == 0) return 0;
  const std::size_t i = find_key(table, static_cast<std::uint32_t>(code));
  return i == kKeySlots ? 0 : key_entry_member(table.keys[i].load(std::memory_order_relaxed));
}

void hold_key(KeyTable& table, std::uint64_t code, std::uint64_t tag) {
  if (code == 0) return;
  const auto hash = static_cast<std::uint32_t>(code);
  if (const std::size_t i = find_key(table, hash); i != kKeySlots) {
    const std::uint64_t e = table.keys[i].load(std::memory_order_relaxed);
    if (key_entry_held(e) < 0xffffff)
      table.keys[i].store(make_key_entry(hash, key_entry_member(e), key_entry_held(e) + 1), std::memory_order_relaxed);
    return;
  }
  // A free slot always exists: the table has a slot for every record all members can hold.
  for (std::size_t i = home(hash), n = 0; n < kKeySlots; i = (i + 1) % kKeySlots, ++n) {
    if (table.keys[i].load(std::memory_order_relaxed) != 0) continue;
    table.keys[i].store(make_key_entry(hash, tag, 1), std::memory_order_relaxed);
    return;
  }
}

void release_key(KeyTable& table, std::uint64_t code) {
  if (code == 0) return;
  const auto hash = static_cast<std::uint32_t>(code);
  const std::size_t i = find_key(table, hash);
  if (i == kKeySlots) return;  // (recounted since it was taken)
  const std::uint64_t e = table.keys[i].load(std::memory_order_relaxed);
  if (key_entry_held(e) > 1)
    table.keys[i].store(make_key_entry(hash, key_entry_member(e), key_entry_held(e) - 1), std::memory_order_relaxed);
  else
    erase_key(table, i);
}

void rebuild_keys(const Segment& seg, std::size_t g) {
  KeyTable& table = seg.keys(g);
  for (auto& k : table.keys) k.store(0, std::memory_order_relaxed);
  const GroupBlock& block = seg.group(g);
  for (std::size_t m = 0; m < kMaxMembers; ++m) {
    const MemberSlot& slot = block.members[m];
    if (slot.owner.load() == 0) continue;
    const std::uint64_t head = slot.head.load();
    const std::uint64_t runs = std::min<std::uint64_t>(slot.tail.load() - head, kMaxUnacked);  // corrupted: clamped
    for (std::uint64_t i = 0; i < runs; ++i) {
      const std::uint64_t run = slot.held[(head + i) % kMaxUnacked].load();
      std::uint64_t position = run_position(run);
      for (std::uint64_t left = run_count(run); left != 0;) {  // (a member under key ordering holds runs of one)
        auto v = read_record(seg, position);
        if (!v || v->length == 0 || !(v->state == kCommitted || v->state == kSkip || v->state == kPad)) break;
        if (v->state != kPad) {
          hold_key(table, key_code_at(seg, position), m + 1);
          --left;
        }
        position += v->length;
      }
    }
  }
}

}  // namespace mq::detail
