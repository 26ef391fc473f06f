// mqd's log: one line per event on stderr (journald stores it under the unit), filtered by --log-level.
#pragma once

#include <cstdio>
#include <string>

#include "config.hpp"

namespace mqd {

inline LogLevel g_log_level = LogLevel::info;

inline void log(LogLevel level, const std::string& line) {
  if (level > g_log_level) return;
  static constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
  std::fprintf(stderr, "mqd: %s: %s\n", kNames[static_cast<int>(level)], line.c_str());
  std::fflush(stderr);
}

}  // namespace mqd
