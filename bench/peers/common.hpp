// What every peer transport of ipc_peers shares: the text of a failed call (transport, call, object, reason), a name
// unique to one case of one run, the peer timeout in the units the system calls take, and reading a sysctl limit.
#pragma once

#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "../harness.hpp"

namespace mqbench::peers {

inline constexpr int kPeerTimeoutMs = static_cast<int>(kPeerTimeoutNs / 1'000'000);
static_assert(kPeerTimeoutNs % 1'000'000 == 0, "the peer timeout is passed on in whole milliseconds");

// "posix mq: mq_timedreceive /mqbench-123-4-0: Connection timed out"; a bounded wait that ran out says so.
inline std::string failure(std::string_view transport, std::string_view call, std::string_view object,
                           std::string_view reason) {
  std::string text{transport};
  text += ": ";
  text += call;
  if (!object.empty()) (text += ' ') += object;
  return (text += ": ") += reason;
}

inline std::string call_error(std::string_view transport, std::string_view call, std::string_view object, int err) {
  std::string reason = std::strerror(err);
  if (err == EAGAIN || err == ETIMEDOUT)
    reason += " (the peer made no progress for " + std::to_string(kPeerTimeoutMs / 1000) + " s)";
  return failure(transport, call, object, reason);
}

// "mqbench-<pid>-<n>", n counting the cases of this run (every transport's prepare() takes one), so no two cases
// and no two runs share a name. Parent only: the counter lives in the process that calls prepare().
inline std::string unique_case_name() {
  static std::uint64_t next_case = 0;
  return "mqbench-" + std::to_string(::getpid()) + "-" + std::to_string(next_case++);
}

inline timeval peer_timeout_timeval() {
  return timeval{.tv_sec = static_cast<time_t>(kPeerTimeoutNs / 1'000'000'000), .tv_usec = 0};
}

// Now + the peer timeout on CLOCK_REALTIME: the absolute deadline mq_timedsend / mq_timedreceive take.
inline timespec realtime_deadline() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += static_cast<time_t>(kPeerTimeoutNs / 1'000'000'000);
  return ts;
}

// The whole of a small /proc file as a number (a sysctl); `fallback` when it cannot be read.
inline long read_sysctl(const char* path, long fallback) {
  const std::string text = first_line_value(path, "");
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  return end != text.c_str() ? value : fallback;
}

}  // namespace mqbench::peers
