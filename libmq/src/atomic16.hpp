// 16-byte atomic compare-and-swap and load on a Word16 in shared memory. Defined in atomic16.cpp, the one file built
// with -mcx16, so that code including libmq headers never needs that flag (g++ 12 does not inline a 16-byte
// std::atomic: it calls libatomic, which may take a lock, and a lock cannot work across processes).
#pragma once

#include <cstdint>

#include "layout.hpp"

namespace mq::detail {

// Atomically: if *word == expected, store desired and return true; else load the current value into expected and
// return false. Sequentially consistent (lock cmpxchg16b is a full barrier).
bool cas16(Word16* word, Word16& expected, Word16 desired) noexcept;

// An atomic 16-byte snapshot of *word (a CAS of the value with itself).
Word16 load16(Word16* word) noexcept;

// One 64-bit half, loaded on its own: may pair with the other half of another moment; a later cas16 catches that.
inline std::uint64_t load_half(const std::uint64_t& half, std::memory_order order = std::memory_order_acquire) {
  return std::atomic_ref<const std::uint64_t>(half).load(order);
}
// {lo, hi} of one moment without a locked instruction, for the tail word, where every CAS changes `hi` (a claim
// adds 1 to the offset, a group move 1 << 56): hi unchanged around the lo load means lo belongs to that hi.
inline Word16 load_tail(Word16& w) {
  for (;;) {
    const std::uint64_t hi = std::atomic_ref<std::uint64_t>(w.hi).load(std::memory_order_acquire);
    const std::uint64_t lo = std::atomic_ref<std::uint64_t>(w.lo).load(std::memory_order_acquire);
    if (std::atomic_ref<std::uint64_t>(w.hi).load(std::memory_order_acquire) == hi) return Word16{lo, hi};
  }
}

}  // namespace mq::detail
