// 16-byte atomic compare-and-swap and load on a Word16 in shared memory. The CAS is inline asm; the load (and the
// CAS in ThreadSanitizer builds) is in atomic16.cpp, the one file built with -mcx16, so that code including libmq
// headers never needs that flag (g++ 12 does not inline a 16-byte std::atomic: it calls libatomic, which may take
// a lock, and a lock cannot work across processes).
#pragma once

#if defined(__SANITIZE_THREAD__)
#define MQ_CAS16_OUT_OF_LINE 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MQ_CAS16_OUT_OF_LINE 1
#endif
#endif

#include <emmintrin.h>

#include <cstdint>

#include "layout.hpp"

namespace mq::detail {

// Atomically: if *word == expected, store desired and return true; else load the current value into expected and
// return false. Sequentially consistent (lock cmpxchg16b is a full barrier).
#ifdef MQ_CAS16_OUT_OF_LINE
// ThreadSanitizer builds call the builtin in atomic16.cpp, which TSan instruments (it cannot see into an asm).
bool cas16(Word16* word, Word16& expected, Word16 desired) noexcept;
#else
// Inline on the claim's and the take's hot paths: the instruction itself needs no -mcx16 when written as asm.
// cmpxchg16b compares rdx:rax with the 16 bytes; equal: stores rcx:rbx and sets ZF; else loads them into rdx:rax.
inline bool cas16(Word16* word, Word16& expected, Word16 desired) noexcept {
  bool ok;
  asm volatile("lock cmpxchg16b %1"
               : "=@ccz"(ok), "+m"(*word), "+a"(expected.lo), "+d"(expected.hi)
               : "b"(desired.lo), "c"(desired.hi)
               : "memory");
  return ok;
}
#endif

// An atomic 16-byte snapshot of *word (a CAS of the value with itself).
Word16 load16(Word16* word) noexcept;

// Whether an aligned 16-byte SSE store is one atomic store on this CPU: Intel and AMD guarantee it on every CPU with
// AVX (Intel SDM vol. 3A 9.1.1; AMD APM vol. 2 7.3.2), which is how store16() may stand in for a CAS.
bool store16_is_atomic() noexcept;

// Stores `value` into *word (release) as one 16-byte store. REQUIRES: store16_is_atomic(), and no other writer of
// *word that could lose its write: the exclusive producer's tail (producer.cpp).
#ifdef MQ_CAS16_OUT_OF_LINE
void store16(Word16* word, Word16 value) noexcept;  // a CAS loop TSan can see
#else
inline void store16(Word16* word, Word16 value) noexcept {
  const __m128i v = _mm_set_epi64x(static_cast<long long>(value.hi), static_cast<long long>(value.lo));
  asm volatile("movdqa %1, %0" : "=m"(*word) : "x"(v) : "memory");
}
#endif

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
