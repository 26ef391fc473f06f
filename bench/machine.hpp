// The machine a benchmark ran on, for the top of its output and its JSON: CPU model, cores, kernel, clock source,
// compiler and load average. Every number in bench/ is read next to this (DESIGN.md, "Performance targets").
#pragma once

#include <sched.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
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
  // One read of a 4 KiB page of shared memory through a second mapping made with MAP_POPULATE (as libmq maps a
  // topic): the first read of each page, then a read once it has been read (ns). Another process reading a topic
  // pays the first on each page it reads first; on a host whose hypervisor shadows the page tables it traps.
  double page_first_read_ns = 0;
  double page_read_ns = 0;
};

// Measures Machine::page_first_read_ns / page_read_ns over `pages` pages of a memfd written through one mapping and
// read through another. Zeros when a call fails.
inline void measure_page_reads(Machine& m, std::size_t pages = 4096) {
  const std::size_t bytes = pages * 4096;
  const int fd = ::memfd_create("mq-bench-pages", MFD_CLOEXEC);
  if (fd < 0) return;
  void* w = ::ftruncate(fd, static_cast<off_t>(bytes)) == 0
                ? ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0) : MAP_FAILED;
  void* r = w != MAP_FAILED ? ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0) : MAP_FAILED;
  if (w != MAP_FAILED && r != MAP_FAILED) {
    auto* wp = static_cast<volatile unsigned char*>(w);
    const auto* rp = static_cast<const volatile unsigned char*>(r);
    for (std::size_t i = 0; i < bytes; i += 4096) wp[i] = static_cast<unsigned char>(i >> 12);
    const auto pass = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < bytes; i += 4096) (void)rp[i];  // volatile: each read happens
      return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
             static_cast<double>(pages);
    };
    m.page_first_read_ns = pass();
    m.page_read_ns = pass();
  }
  if (r != MAP_FAILED) ::munmap(r, bytes);
  if (w != MAP_FAILED) ::munmap(w, bytes);
  ::close(fd);
}

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
  measure_page_reads(m);
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
