// A topic's file truncated underneath this process (by a buggy or hostile peer with write rights) turns the next
// access past its new end into a SIGBUS, which would kill the process. libmq installs one SIGBUS handler, chained to
// whatever handler was there before: for a fault inside a registered mapping it maps zero pages over the rest of
// that mapping and marks the segment truncated; the faulting access then completes (it reads zeros, and what it
// writes stays private), and every later operation on the topic returns Errc::bad_segment. A fault anywhere else
// goes to the previous handler (or kills the process as it would have).
#pragma once

#include <atomic>
#include <cstddef>

namespace mq::detail {

// Registers [base, base + bytes) and the flag the handler sets; installs the handler on first use. Returns a slot
// for unguard_mapping, or -1 when every slot is taken (that mapping is then unprotected).
int guard_mapping(std::byte* base, std::size_t bytes, std::atomic<bool>* truncated) noexcept;
// Before the mapping goes away.
void unguard_mapping(int slot) noexcept;

}  // namespace mq::detail
