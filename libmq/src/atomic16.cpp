// 16-byte load (and, for ThreadSanitizer builds, CAS and store) as __sync_val_compare_and_swap on u128 (this file alone is
// built with -mcx16, so g++ emits lock cmpxchg16b inline). See atomic16.hpp for why this is not std::atomic.
#include "atomic16.hpp"

#include <cstring>

namespace mq::detail {

namespace {
__extension__ typedef unsigned __int128 u128;  // a GNU type: -Wpedantic is told so

Word16 unpack(u128 v) {
  Word16 w;
  std::memcpy(&w, &v, sizeof w);
  return w;
}
}  // namespace

#ifdef MQ_CAS16_OUT_OF_LINE
namespace {
u128 pack(Word16 w) {
  u128 v;
  std::memcpy(&v, &w, sizeof v);
  return v;
}
}  // namespace

bool cas16(Word16* word, Word16& expected, Word16 desired) noexcept {
  auto* target = reinterpret_cast<u128*>(word);
  const u128 old = pack(expected);
  const u128 seen = __sync_val_compare_and_swap(target, old, pack(desired));
  if (seen == old) return true;
  expected = unpack(seen);
  return false;
}

void store16(Word16* word, Word16 value) noexcept {
  Word16 seen = load16(word);
  while (!cas16(word, seen, value)) {
  }
}
#endif

bool store16_is_atomic() noexcept {
  static const bool avx = __builtin_cpu_supports("avx");
  return avx;
}

Word16 load16(Word16* word) noexcept {
  auto* target = reinterpret_cast<u128*>(word);
  return unpack(__sync_val_compare_and_swap(target, u128{0}, u128{0}));
}

}  // namespace mq::detail
