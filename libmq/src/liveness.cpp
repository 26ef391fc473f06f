// Owner ids from /proc/PID/stat, and the fork generation kept by a pthread_atfork child handler.
#include "liveness.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fcntl.h>

namespace mq::detail {

std::atomic<std::uint64_t> g_fork_generation{0};

namespace {

std::atomic<std::uint64_t> g_self_owner{0};

void on_fork_child() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  g_self_owner.store(0, std::memory_order_relaxed);
}

// Reads /proc/PID/stat. Returns 1 with state and start time, 0 if the pid does not exist, -1 if unknown.
int read_stat(int pid, char& state, std::uint64_t& start) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT && errno != ESRCH) return -1;
    // /proc mounted hidepid=2 (systemd ProtectProc=invisible) hides other users' live processes as ENOENT too:
    // only "no such process" from kill(0) confirms death.
    return (::kill(pid, 0) != 0 && errno == ESRCH) ? 0 : -1;
  }
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return n == 0 ? 0 : (errno == ESRCH ? 0 : -1);
  buf[n] = '\0';
  // comm (field 2) is in parentheses and may contain anything: fields resume after the LAST ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return -1;
  p += 2;
  state = *p;
  // field 3 is state; field 22 is starttime: skip 19 more fields.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return -1;
    ++p;
  }
  start = std::strtoull(p, nullptr, 10);
  return 1;
}

[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, on_fork_child);

std::uint64_t read_boot_tag() noexcept {
  const int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[64];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the uuid text
  for (ssize_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 0x100000001b3ULL;
  return (h ^ (h >> 32)) & ((std::uint64_t{1} << (64 - kOwnerBootShift)) - 1);
}

}  // namespace

std::uint64_t boot_tag() noexcept {
  static const std::uint64_t tag = read_boot_tag();
  return tag;
}

std::uint64_t self_owner() noexcept {
  std::uint64_t id = g_self_owner.load(std::memory_order_relaxed);
  if (id != 0) return id;
  const int pid = ::getpid();
  char state = 0;
  std::uint64_t start = 0;
  if (read_stat(pid, state, start) != 1) start = 0;  // no /proc: identity by pid alone
  id = (boot_tag() << kOwnerBootShift) | (static_cast<std::uint64_t>(pid) << 32) | (start & 0xffffffffu);
  g_self_owner.store(id, std::memory_order_relaxed);
  return id;
}

bool owner_dead(std::uint64_t owner) noexcept {
  if (owner == 0) return false;
  if (owner_pid(owner) <= 0) return true;                  // kOrphanOwner
  if ((owner >> kOwnerBootShift) != boot_tag()) return true;  // an owner from before a reboot (file topics)
  char state = 0;
  std::uint64_t start = 0;
  const int found = read_stat(owner_pid(owner), state, start);
  if (found == 0) return true;
  if (found < 0) return false;
  if (state == 'Z' || state == 'X') return true;
  return (start & 0xffffffffu) != (owner & 0xffffffffu);
}

}  // namespace mq::detail
