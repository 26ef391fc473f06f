// Recovering the claims of producers that died between claim and commit: each becomes a skip record (it keeps its
// offset and is never delivered), so readers move on. Death must be confirmed (liveness.hpp); a live producer whose
// claim blocks readers is only flagged as stalled. A position no claim covers any more (an orphan) is found and
// repaired too. How a claim is told apart from an earlier lap's bytes: libmq/doc/design.md, "Dead producers".
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "libmq/topic.hpp"
#include "segment.hpp"

namespace mq::detail {

// REQUIRES: the table lock (TableLock), for the whole life of the hold. Keeps every claim's end at or below
// `position + capacity` until destroyed (SegmentHeader::hold, honoured by producers on their next rescan, which the
// group-epoch bump here forces). While it holds, no claim of a later lap can reach a byte of the log at or after
// `position` that the tail has already passed: those bytes belong to the claims already made, and a recoverer may
// write into a dead one's. A holder that dies leaves the hold to the next TableLock, which clears it.
class ProducerHold {
 public:
  ProducerHold(const Segment& seg, std::uint64_t position);
  ~ProducerHold();
  ProducerHold(const ProducerHold&) = delete;
  ProducerHold& operator=(const ProducerHold&) = delete;

 private:
  const Segment& seg_;
};

// Finishes the open claims of dead producers and frees their slots. Takes the table lock only when a slot's owner is
// confirmed dead. Returns how many dead producers' claims were finished (made into skip records, or found done).
std::size_t recover_dead_producers(const Segment& seg);

// A reader is stuck at `position` (not written yet, while the tail is past it): recover the claim there if its
// producer is dead, else flag that producer as stalled. True if something was recovered.
bool recover_stuck(const Segment& seg, std::uint64_t position);

// Where each group waits on a position the tail has passed, and why (TopicInfo::stuck). Lock-free, a snapshot.
std::vector<StuckInfo> stuck_positions(const Segment& seg);

// Turns orphaned positions into skip records (Topic::repair_orphans). Takes the table lock.
Result<std::vector<OrphanRepair>> repair_orphans(const Segment& seg);

}  // namespace mq::detail
