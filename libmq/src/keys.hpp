// Ordering::key's shared state: a group's key lock and its key table (layout.hpp, KeyTable). The rules that use them
// (which member may take which record) are in consumer_keys.cpp; why they keep each key's records in offset order
// through crashes: libmq/doc/design.md, "Key ordering".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "layout.hpp"
#include "log.hpp"
#include "segment.hpp"

namespace mq::detail {

// The hash the key table knows a key by (two keys with one hash are ordered as one key).
std::uint32_t hash_key(std::span<const std::byte> key);

// A record's key hash with kKeyed set, or 0 for a record without a key (whose order nothing keeps) or one that cannot
// be read. What a member remembers for each record it holds.
inline constexpr std::uint64_t kKeyed = std::uint64_t{1} << 32;
std::uint64_t key_code_at(const Segment& seg, std::uint64_t position);
// The same for a record read already (read_record's view of it: its lengths checked).
std::uint64_t key_code_of(const Segment& seg, std::uint64_t position, const RecordView& v);

// Holds group g's key lock: takes it within `wait`, stealing it from a holder confirmed dead (and then recounting
// the table, which that holder may have left half changed). Not held (false) if a live process keeps it longer
// (one stopped with SIGSTOP): the caller looks again later.
class KeyLock {
 public:
  KeyLock(const Segment& seg, std::size_t g, std::chrono::nanoseconds wait);
  ~KeyLock();
  KeyLock(const KeyLock&) = delete;
  KeyLock& operator=(const KeyLock&) = delete;
  explicit operator bool() const noexcept { return held_; }

 private:
  const Segment& seg_;
  std::size_t group_;
  bool held_ = false;
};

// REQUIRES: the key lock, for all three. The member holding key `code` (index + 1), 0 if none does (or no key).
std::uint64_t key_holder(const KeyTable& table, std::uint64_t code);
// Member `tag` holds one more record of key `code` (nothing for a record without key).
void hold_key(KeyTable& table, std::uint64_t code, std::uint64_t tag);
// One record of key `code` fewer is held (acked, nacked or handed back); at none, no member holds the key.
void release_key(KeyTable& table, std::uint64_t code);

// REQUIRES: the key lock. Recounts group g's key table from the records its members hold (after a member's records
// went back to the group, or a dead lock holder's half-done change).
void rebuild_keys(const Segment& seg, std::size_t g);

}  // namespace mq::detail
