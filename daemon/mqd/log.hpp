// mqd's log: one line per event on stderr, filtered by --log-level. Under systemd, stderr is a journal stream
// ($JOURNAL_STREAM names its device and inode): each line then starts with its syslog priority (sd-daemon(3):
// <3> error, <4> warning, <6> info, <7> debug), so the journal stores it at that priority (`journalctl -p warning`).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "config.hpp"

namespace mqd {

inline LogLevel g_log_level = LogLevel::info;

// True when stderr is the journal stream systemd connected (not a terminal or a file it was redirected to later).
inline bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  struct stat st {};
  if (stream == nullptr || std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2 || ::fstat(STDERR_FILENO, &st) != 0)
    return false;
  return st.st_dev == dev && st.st_ino == ino;
}

inline void log(LogLevel level, const std::string& line) {
  if (level > g_log_level) return;
  static constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
  static constexpr const char* kPriorities[] = {"<3>", "<4>", "<6>", "<7>"};
  static const bool journal = stderr_is_journal();
  const int i = static_cast<int>(level);
  std::fprintf(stderr, "%smqd: %s: %s\n", journal ? kPriorities[i] : "", kNames[i], line.c_str());
  std::fflush(stderr);
}

}  // namespace mqd
