// The asymmetric half of the exclusive producer's handover (libmq/doc/design.md, "Exclusive producers"): the
// producer orders its claim with a compiler barrier alone, and the rare group mover makes up for it with
// membarrier(2), which runs a full memory barrier on every CPU running a process that registered for it.
#pragma once

namespace mq::detail {

// Registers this process for global expedited barriers (once; later calls answer the first). False when the kernel
// (before 4.16) or a seccomp filter does not allow it: the process's exclusive producers then claim by CAS.
bool register_for_barriers() noexcept;

// A full memory barrier on every thread of every registered process, before it returns. False if the call failed.
bool barrier_all_processes() noexcept;

// Whether this process may move a shared word by plain store and leave the handover to membarrier: registered, and
// a CPU whose 16-byte store is atomic (atomic16.hpp, store16()). The exclusive producer and the lone member ask.
bool plain_handover_possible() noexcept;

}  // namespace mq::detail
