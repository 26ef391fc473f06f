// mqd's log: one line per event on stderr, filtered by --log-level. Under systemd, stderr is a journal stream
// ($JOURNAL_STREAM names its device and inode): each line then starts with its syslog priority (sd-daemon(3):
// <3> error, <4> warning, <6> info, <7> debug), so the journal stores it at that priority (`journalctl -p warning`).
#pragma once

#include <cstdio>
#include <string>

#include "config.hpp"
#include "journal.hpp"

namespace mqd {

inline LogLevel g_log_level = LogLevel::info;

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
