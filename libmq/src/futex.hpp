// Sleeping across processes: the raw futex syscall on a 32-bit word in shared memory, without FUTEX_PRIVATE_FLAG
// (std::atomic::wait is process-private in libstdc++ and never wakes a sleeper in another process).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace mq::detail {

// Sleeps while *word == expected, at most `timeout`. Returns on a wake, a changed word, the timeout or a signal.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept;
// Wakes every sleeper on *word.
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept;

}  // namespace mq::detail
