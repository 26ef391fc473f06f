// mq-kafka-bridge's log: one line per event on stderr, filtered by --log-level, as mqd logs. Under systemd, stderr is
// a journal stream ($JOURNAL_STREAM names its device and inode) and each line starts with its syslog priority
// (sd-daemon(3)), so `journalctl -p warning` finds the bridge's warnings. Any thread may log.
#pragma once

#include <string>

#include "mqd/journal.hpp"

namespace bridge {

using mqd::stderr_is_journal;

enum class LogLevel { error, warn, info, debug };

// Set once by main before the routes start; read by every thread after.
inline LogLevel g_log_level = LogLevel::info;

// Writes "mq-kafka-bridge: LEVEL: LINE" as one write(2), so lines of several routes never interleave.
void log(LogLevel level, const std::string& line);

}  // namespace bridge
