// The machine a benchmark ran on, for the top of its output and its JSON: CPU model, cores, kernel, clock source,
// compiler and load average. Every number in bench/ is read next to this (DESIGN.md, "Performance targets").
#pragma once

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace mqbench {

struct Machine {
  std::string cpu;          // "model name" of /proc/cpuinfo
  long online_cores = 0;    // sysconf(_SC_NPROCESSORS_ONLN)
  int usable_cores = 0;     // in this process's affinity mask
  std::string kernel;       // uname: sysname release version machine
  std::string clocksource;  // /sys/devices/system/clocksource/clocksource0/current_clocksource
  std::string compiler;
};

inline std::string first_line_value(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!key.empty() && line.rfind(key, 0) != 0) continue;
    if (key.empty()) return line;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? std::string() : line.substr(start);
  }
  return "unknown";
}

// /proc/loadavg's first three fields: other work on the machine shows in the tails, so say how busy it was.
inline std::string load_average() {
  const std::string line = first_line_value("/proc/loadavg", "");
  std::size_t at = 0;
  for (int field = 0; field < 3 && at != std::string::npos; ++field) at = line.find(' ', at + 1);
  return at == std::string::npos ? line : line.substr(0, at);
}

inline Machine describe_machine() {
  Machine m;
  m.cpu = first_line_value("/proc/cpuinfo", "model name");
  m.online_cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) m.usable_cores = CPU_COUNT(&set);
  utsname u{};
  if (::uname(&u) == 0)
    m.kernel = std::string(u.sysname) + " " + u.release + " " + u.version + " " + u.machine;
  m.clocksource = first_line_value("/sys/devices/system/clocksource/clocksource0/current_clocksource", "");
#if defined(__clang__)
  m.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  m.compiler = "g++ " __VERSION__;
#else
  m.compiler = "unknown";
#endif
  return m;
}

}  // namespace mqbench
