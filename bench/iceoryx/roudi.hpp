// The iceoryx daemon (iox-roudi) this benchmark starts for itself: one per run, refused when another RouDi already
// holds the machine (iceoryx allows one), ready when its log says so, stopped with SIGTERM once its clients have
// left (it then removes its shared memory, socket and lock files) however the run ends. Also reads how much memory
// it reserved at start.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "../process.hpp"

namespace mqbench::iox_bench {

// iceoryx 2.0's single-RouDi lock (iox::roudi::ROUDI_LOCK_NAME under IOX_LOCK_FILE_PATH_PREFIX), held with flock.
inline constexpr const char* kRoudiLockFile = "/tmp/iox-unique-roudi.lock";
inline constexpr std::uint64_t kRoudiStartTimeoutNs = 15'000'000'000;
inline constexpr int kRoudiStopTimeoutMs = 15'000;

// The pids of running processes named iox-roudi, for the "another RouDi" message ("" when none is found).
inline std::string roudi_pids() {
  std::string pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name == "iox-roudi") pids += (pids.empty() ? "" : ", ") + pid;
  }
  return pids;
}

// True when a RouDi holds the iceoryx lock (or an iox-roudi process runs); `who` then names it. Creates nothing.
inline bool another_roudi_running(std::string& who) {
  const std::string pids = roudi_pids();
  bool locked = false;
  if (const int fd = ::open(kRoudiLockFile, O_RDONLY | O_CLOEXEC); fd >= 0) {
    locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);  // closing drops a lock we took
  }
  if (!locked && pids.empty()) return false;
  who = pids.empty() ? std::string("a process holds ") + kRoudiLockFile : "iox-roudi pid " + pids;
  return true;
}

// One iox-roudi child of this process. start() once; the destructor stops it (SIGTERM, bounded, then SIGKILL).
// Its stdout and stderr go to an anonymous memfd: no log file is left behind, and a failure can quote it.
class Roudi {
 public:
  Roudi() = default;
  ~Roudi() { stop(); }
  Roudi(const Roudi&) = delete;
  Roudi& operator=(const Roudi&) = delete;

  // Starts `binary -c config -l debug` (its log then names the applications that register and leave) with
  // `affinity` (the run's cores, not the parent's pinned one) and waits until it says it is ready (bounded).
  // False with the reason in `error`; nothing is left running then.
  bool start(const std::string& binary, const std::string& config, const cpu_set_t& affinity, std::string& error) {
    if (std::string who; another_roudi_running(who)) {
      error = "another RouDi is already running (" + who +
              "); iceoryx allows one per machine and this benchmark starts its own: stop it first";
      return false;
    }
    log_fd_ = static_cast<int>(::syscall(SYS_memfd_create, "mqbench-iox-roudi-log", MFD_CLOEXEC));
    if (log_fd_ < 0) return error = std::string("memfd_create for the RouDi log: ") + std::strerror(errno), false;
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return error = std::string("fork for iox-roudi: ") + std::strerror(errno), false;
    if (pid_ == 0) {
      // Stopped cleanly (SIGTERM lets it remove its shared memory) even if this benchmark is killed; its own process
      // group, so a terminal's Ctrl-C reaches the benchmark, which stops it after its clients.
      if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) ::_exit(126);
      ::setpgid(0, 0);
      ::sched_setaffinity(0, sizeof affinity, &affinity);
      ::dup2(log_fd_, STDOUT_FILENO);
      ::dup2(log_fd_, STDERR_FILENO);
      ::execl(binary.c_str(), binary.c_str(), "-c", config.c_str(), "-l", "debug", static_cast<char*>(nullptr));
      std::fprintf(stderr, "cannot run %s: %s\n", binary.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd_ < 0) {
      error = std::string("pidfd_open for iox-roudi: ") + std::strerror(errno);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      reaped_ = true;
      return false;
    }
    const std::uint64_t deadline = now_ns() + kRoudiStartTimeoutNs;
    for (;;) {
      if (log().find("RouDi is ready for clients") != std::string::npos) return ready_ = true;
      if (exited(2)) {
        error =
            binary + " exited before it was ready (exit status " + std::to_string(exit_code_) + "); its log:\n" + log();
        return false;
      }
      if (now_ns() > deadline) {
        error = binary + " was not ready within 15 s; its log:\n" + log();
        stop();
        return false;
      }
    }
  }

  // Waits (bounded by `timeout_ns`) until every application that registered with RouDi has left: unregistered
  // ("Removed existing application N") or dropped by RouDi's keep-alive monitor ("N not responding", ~1.5 s after
  // it died). Call before stop(): a driver child leaves by _exit without unregistering, and RouDi 2.0 aborts its
  // own shutdown (leaving its shared memory behind) when it cannot SIGTERM a registered process that already died.
  // False, with the reason (and the ones still registered) in `error`, on timeout or when RouDi is gone.
  bool wait_until_clients_left(std::uint64_t timeout_ns, std::string& error) {
    const std::uint64_t deadline = now_ns() + timeout_ns;
    for (;;) {
      const std::string left = registered_clients();
      if (left.empty()) return true;
      if (exited(10)) {  // the 10 ms wait on RouDi's exit paces the polling
        error = "iox-roudi exited (status " + std::to_string(exit_code_) + ") with applications registered: " + left;
        return false;
      }
      if (now_ns() > deadline) {
        error = "still registered with iox-roudi after " + std::to_string(timeout_ns / 1'000'000'000) + " s: " + left;
        return false;
      }
    }
  }

  // SIGTERM, wait (bounded) for it to clean up and exit, SIGKILL if it does not. If it did not exit cleanly (now or
  // earlier), removes what it left behind: its shared memory segments, socket and lock files, which this run's
  // RouDi owned once it was ready. Idempotent.
  void stop() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGTERM);
      if (!exited(kRoudiStopTimeoutMs)) {
        std::fprintf(stderr, "iox-roudi %d did not stop within %d ms of SIGTERM: killed\n", static_cast<int>(pid_),
                     kRoudiStopTimeoutMs);
        ::kill(pid_, SIGKILL);
        exited(-1);
      }
    }
    if (ready_ && reaped_ && exit_code_ != 0 && log_fd_ >= 0) remove_leftovers();
    if (pidfd_ >= 0) ::close(pidfd_);
    if (log_fd_ >= 0) ::close(log_fd_);
    pidfd_ = log_fd_ = -1;
  }

  pid_t pid() const { return pid_; }
  bool running() { return pid_ > 0 && !exited(0); }

  // Everything RouDi wrote so far, without terminal colour codes.
  std::string log() const {
    std::string text;
    char chunk[4096];
    for (off_t at = 0;;) {
      const ssize_t n = ::pread(log_fd_, chunk, sizeof chunk, at);
      if (n <= 0) break;
      text.append(chunk, static_cast<std::size_t>(n));
      at += n;
    }
    std::string plain;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '\x1b') {
        plain += text[i];
        continue;
      }
      while (i < text.size() && text[i] != 'm') ++i;  // ESC [ ... m
    }
    return plain;
  }

  // The shared memory RouDi reserved at start, from its "Reserving N bytes in the shared memory [name]" lines:
  // one entry per segment (management, then the chunk pools), in log order.
  struct Segment {
    std::string name;
    std::uint64_t bytes = 0;
  };
  std::vector<Segment> reserved_segments() const {
    std::vector<Segment> segments;
    const std::string text = log();
    constexpr std::string_view kStart = "Reserving ", kMid = " bytes in the shared memory [";
    for (std::size_t at = text.find(kStart); at != std::string::npos; at = text.find(kStart, at + 1)) {
      const std::size_t mid = text.find(kMid, at);
      const std::size_t close = mid == std::string::npos ? mid : text.find(']', mid);
      if (close == std::string::npos) break;
      const std::string number = text.substr(at + kStart.size(), mid - at - kStart.size());
      if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos) continue;
      segments.push_back({text.substr(mid + kMid.size(), close - mid - kMid.size()), std::stoull(number)});
    }
    return segments;
  }

  // RouDi's resident memory in bytes (VmRSS of /proc/PID/status), 0 if unreadable.
  std::uint64_t resident_bytes() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
    return 0;
  }

 private:
  // The applications RouDi's log shows registered and not yet gone, space-separated ("" when none).
  std::string registered_clients() const {
    constexpr std::string_view kIn = "Registered new application ", kOut = "Removed existing application ",
                               kDropped = " not responding (last response";
    std::vector<std::string> in, out;
    const std::string text = log();
    for (std::size_t at = 0; at < text.size();) {
      std::size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      const std::string_view line(text.data() + at, end - at);
      at = end + 1;
      if (const auto p = line.find(kIn); p != std::string_view::npos) {
        in.emplace_back(line.substr(p + kIn.size()));
      } else if (const auto q = line.find(kOut); q != std::string_view::npos) {
        out.emplace_back(line.substr(q + kOut.size()));
      } else if (const auto r = line.find(kDropped); r != std::string_view::npos) {
        const auto space = line.rfind(' ', r - 1);
        out.emplace_back(line.substr(space == std::string_view::npos ? 0 : space + 1, r - space - 1));
      }
    }
    std::string left;
    for (auto& name : in) {
      while (!name.empty() && (name.back() == ' ' || name.back() == '\r')) name.pop_back();
      if (std::find(out.begin(), out.end(), name) == out.end()) left += (left.empty() ? "" : " ") + name;
    }
    return left;
  }

  void remove_leftovers() {
    std::string removed;
    for (const auto& segment : reserved_segments())
      if (::shm_unlink(("/" + segment.name).c_str()) == 0) removed += " /dev/shm/" + segment.name;
    for (const char* path : {"/tmp/roudi", "/tmp/roudi.lock", kRoudiLockFile})
      if (::unlink(path) == 0) removed += std::string(" ") + path;
    std::fprintf(stderr, "iox-roudi %d exited with status %d while stopping; removed what it left:%s\n",
                 static_cast<int>(pid_), exit_code_, removed.empty() ? " nothing" : removed.c_str());
  }

  // Waits up to `timeout_ms` (-1: forever) for the child to exit and reaps it; true once it has exited.
  bool exited(int timeout_ms) {
    if (reaped_) return true;
    pollfd p{pidfd_, POLLIN, 0};  // start() made sure of the pidfd
    if (::poll(&p, 1, timeout_ms) != 1) return false;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return false;
    reaped_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int log_fd_ = -1;
  bool reaped_ = false;
  bool ready_ = false;  // it said so: the shared memory, socket and lock files are this run's
  int exit_code_ = -1;
};

}  // namespace mqbench::iox_bench
