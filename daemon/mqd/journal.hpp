// Whether stderr is the journal stream systemd connected: then a log line starts with its syslog priority
// (sd-daemon(3): <3> error, <4> warning, <6> info, <7> debug) and the journal stores it at that priority
// (`journalctl -p warning`). Shared by mqd and mq-kafka-bridge.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace mqd {

// True when $JOURNAL_STREAM names stderr's device and inode (not a terminal or a file it was redirected to later).
inline bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  struct stat st {};
  if (stream == nullptr || std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2 || ::fstat(STDERR_FILENO, &st) != 0)
    return false;
  return st.st_dev == dev && st.st_ino == ino;
}

}  // namespace mqd
