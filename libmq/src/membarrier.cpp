// membarrier(2) through the raw syscall (glibc 2.36 has no wrapper): registration once per process, and the
// global expedited barrier a group mover runs before it reads an exclusive producer's claim.
#include "membarrier.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic16.hpp"

namespace mq::detail {

bool register_for_barriers() noexcept {
  static const bool registered = [] {
    const long supported = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (supported < 0 || (supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0) return false;
    return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
  }();
  return registered;
}

bool barrier_all_processes() noexcept {
  return syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0;
}

bool plain_handover_possible() noexcept { return store16_is_atomic() && register_for_barriers(); }

}  // namespace mq::detail
