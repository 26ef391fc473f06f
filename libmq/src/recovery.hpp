// Recovering the claims of producers that died between claim and commit: each becomes a skip record (it keeps its
// offset and is never delivered), so readers move on. Death must be confirmed (liveness.hpp); a live producer whose
// claim blocks readers is only flagged as stalled.
#pragma once

#include <cstddef>
#include <cstdint>

#include "segment.hpp"

namespace mq::detail {

// Finishes the open claims of dead producers and frees their slots. Returns how many claims became skip records.
std::size_t recover_dead_producers(const Segment& seg);

// A reader is stuck at `position` (claimed or not yet written, while the tail is past it): recover the claim there
// if its producer is dead, else flag that producer as stalled. True if something was recovered.
bool recover_stuck(const Segment& seg, std::uint64_t position);

}  // namespace mq::detail
