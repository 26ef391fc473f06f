// Who owns a slot, and whether that owner is CONFIRMED dead. An owner id packs a pid with the low 32 bits of the
// process start time (clock ticks since boot, /proc/PID/stat field 22), so a reused pid never passes for the owner,
// and a 10-bit tag of the boot (/proc/sys/kernel/random/boot_id), so that the owners a file-backed topic kept from
// before a reboot count as dead even when a process of this boot has the same pid and start time (early-boot
// services often do).
//
//   63 .. 54  boot tag   53 .. 32  pid (pid_max is at most 2^22)   31 .. 0  start time, low 32 bits
#pragma once

#include <atomic>
#include <cstdint>

namespace mq::detail {

// The owner of a slot whose records could not be handed back yet (its redelivery list was full): pid 0, which
// owner_dead() confirms dead, so a later recovery finishes the hand-over.
inline constexpr std::uint64_t kOrphanOwner = 1;

// This process's owner id (read once per process, again after fork). Never 0.
std::uint64_t self_owner() noexcept;

// True only when the owner is certainly gone: no such pid, a pid with another start time, or a zombie. A process
// we cannot inspect (EACCES) counts as alive: never rob the living.
bool owner_dead(std::uint64_t owner) noexcept;

inline constexpr int kOwnerPidBits = 22;
inline constexpr int kOwnerBootShift = 32 + kOwnerPidBits;

inline int owner_pid(std::uint64_t owner) noexcept {
  return static_cast<int>((owner >> 32) & ((std::uint64_t{1} << kOwnerPidBits) - 1));
}

// This boot's tag (0 where boot_id cannot be read: every owner id then carries 0).
std::uint64_t boot_tag() noexcept;

// Bumped in every fork child; handles compare it with the value they were made under (no getpid() syscall on the
// hot path: one load, inline).
extern std::atomic<std::uint64_t> g_fork_generation;
inline std::uint64_t fork_generation() noexcept { return g_fork_generation.load(std::memory_order_relaxed); }

}  // namespace mq::detail
