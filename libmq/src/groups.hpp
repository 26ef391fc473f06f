// The group table: consumer groups and their member slots, the slow-path table lock that serializes changes to it,
// recovery of dead members, and the lock-free scan producers use to learn how far they may write (block policy).
// Only the data-path pieces (taking a record, acking) live in consumer.cpp; everything here is the slow path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "layout.hpp"
#include "libmq/error.hpp"
#include "libmq/options.hpp"
#include "segment.hpp"

namespace mq::detail {

// Holds SegmentHeader::table_lock; steals it from an owner confirmed dead and repairs what that owner left half
// done. For group-table changes only (never on the data path). Gives up after kTableLockWait if a live process
// holds it (say, one stopped with SIGSTOP): test the lock, and say Errc::busy with error().
class TableLock {
 public:
  static constexpr std::chrono::seconds kTableLockWait{10};
  explicit TableLock(const Segment& seg);
  ~TableLock();
  TableLock(const TableLock&) = delete;
  TableLock& operator=(const TableLock&) = delete;
  explicit operator bool() const noexcept { return held_; }
  Error error() const;

 private:
  const Segment& seg_;
  bool held_ = false;
  std::uint64_t holder_ = 0;
};

// The group's slot index, or nullopt. Any state but free.
std::optional<std::size_t> find_group(const Segment& seg, std::string_view name);

// A group's name as stored (its length clamped to the name field: a corrupted length reads no further).
std::string group_name(const GroupBlock& g);

// True when this process holds the topic's table lock: what each "REQUIRES: the table lock" below and in
// recovery.hpp asserts (debug builds: the asan and fuzz presets). A process, not a thread: the lock holds an owner id.
bool table_lock_held(const Segment& seg) noexcept;

// REQUIRES: the table lock. Creates a group starting at `start` with retry policy `retry` (validated already);
// Errc::limit when all kMaxGroups are taken.
Result<std::size_t> create_group_locked(const Segment& seg, std::string_view name, Start start,
                                        const RetryPolicy& retry, Ordering ordering = Ordering::none);
// A group's ordering as its block says (a scribbled word reads as Ordering::none).
Ordering load_ordering(const GroupBlock& block);
// REQUIRES: the table lock. An exclusive group's taking member, if it is gone (left, confirmed dead, or never
// chosen), becomes its first live member (kNoActive when none): the one standby that takes over.
void elect_active(GroupBlock& block);
// A group's retry policy: set under the table lock; read by anyone (a scribbled field reads clamped into range).
void store_retry_policy(GroupBlock& block, const RetryPolicy& retry);
RetryPolicy load_retry_policy(const GroupBlock& block);
// REQUIRES: the table lock. Moves group g (all its members) to `to`: the oldest record held, the next one to be
// published, or a given offset (Errc::invalid_argument if that offset is no longer or not yet held).
Result<void> move_group_locked(const Segment& seg, std::size_t g, std::variant<Start, Offset> to);
// REQUIRES: the table lock. A free member slot of group g for this process; Errc::limit when the group is full.
Result<std::size_t> join_member_locked(const Segment& seg, std::size_t g);
// REQUIRES: the table lock. Hands what member m of group g holds to the group's redelivery list and frees the slot.
// False (nothing changed) when the redelivery list has no room for it yet.
bool release_member_locked(const Segment& seg, std::size_t g, std::size_t m);

// Removes the records of group g's retry table at positions before `position` (all: kNone), uncounting each.
void drop_retries_before(const Segment& seg, std::size_t g, std::uint64_t position);
// How many records wait in group g's retry table (a look at its entries; retry_count is only a hint).
std::uint64_t count_retries(const Segment& seg, std::size_t g);
// Makes group g's retry_count the number of records its retry table holds: a count left high by a member killed
// mid-nack (or scribbled) would keep members on their slow path, or stop them taking new records. Lock-free: a
// nack or take that runs meanwhile moves the count, and the CAS then fails and looks again.
void resync_retry_count(const Segment& seg, std::size_t g);

// Frees member slots whose owners are confirmed dead, their records going back to the group. Returns how many.
std::size_t recover_dead_members(const Segment& seg);

// Lowest position group g may still read: members' holdings, redeliveries, records waiting for a retry and its next
// record. nullopt while the group is moving or a recovery is half done (the caller retries).
std::optional<std::uint64_t> group_low(const Segment& seg, std::size_t g);

// The highest end position a producer may claim up to: a recovery's hold + capacity (SegmentHeader::hold), and for
// block topics the min over active groups of their low + capacity; kNone when nothing holds producers back (no
// groups: the ring then keeps the newest records). nullopt while a group is moving.
std::optional<std::uint64_t> producer_limit(const Segment& seg);

// Bumps the tail word's group epoch, so every claim after this sees the group table as it is now. Returns the
// {tail position, next offset} at that moment. Errc::busy only with an exclusive producer stopped (SIGSTOP) between
// announcing a claim and making it for TableLock::kTableLockWait; Errc::io if membarrier(2) fails.
Result<Word16> bump_epoch(const Segment& seg);

// {position, offset} of the record with `offset`, walking from the oldest one held; nullopt if not held.
std::optional<Word16> locate_offset(const Segment& seg, Offset offset);

}  // namespace mq::detail
