// Two-process benchmark plumbing: a shared anonymous mapping made before fork, pinning to one core, a forked child
// with a bounded reap (pidfd + poll, never a sleep loop), a monotonic nanosecond clock, and a spin-wait that gives up
// at a deadline instead of hanging.
#pragma once

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <utility>

namespace mqbench {

inline std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no syscall with the tsc clock source
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Pins the calling process to `core`. False if the core is not in its affinity mask (or the call failed).
inline bool pin_to_core(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

// Lets the calling process run on every online core again (a child forked from a pinned parent inherits its pin).
inline void unpin() {
  cpu_set_t set;
  CPU_ZERO(&set);
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  for (long c = 0; c < cores && c < CPU_SETSIZE; ++c) CPU_SET(static_cast<int>(c), &set);
  (void)::sched_setaffinity(0, sizeof set, &set);
}

// Cost of one now_ns() call: the smallest difference of back-to-back calls (it is inside every sample).
inline std::uint64_t timer_overhead_ns() {
  std::uint64_t best = ~std::uint64_t{0};
  for (int i = 0; i < 10'000; ++i) {
    const std::uint64_t a = now_ns();
    const std::uint64_t b = now_ns();
    if (b - a < best) best = b - a;
  }
  return best;
}

// An anonymous shared mapping made in the parent before fork (both processes see the same pages), unmapped by the
// owner. The mapping is populated up front so no first-touch fault lands in a measured sample.
class SharedPages {
 public:
  SharedPages() = default;
  explicit SharedPages(std::size_t bytes) : bytes_(bytes) {
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem != MAP_FAILED) base_ = static_cast<std::byte*>(mem);
  }
  ~SharedPages() { reset(); }
  SharedPages(const SharedPages&) = delete;
  SharedPages& operator=(const SharedPages&) = delete;
  SharedPages& operator=(SharedPages&& other) noexcept {
    reset();
    std::swap(base_, other.base_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  void reset() {
    if (base_ != nullptr) ::munmap(base_, bytes_);
    base_ = nullptr;
  }
  std::byte* get() const { return base_; }

 private:
  std::byte* base_ = nullptr;
  std::size_t bytes_ = 0;
};

// A forked child running `body` (its return value is the exit code; it leaves with _exit, so no destructor of the
// parent's objects runs in it). It dies with the parent; the destructor SIGKILLs and reaps a child not waited for.
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Die with the parent (a killed benchmark leaves no spinning child behind).
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(96);
      int code = 97;
      try {
        code = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child: %s\n", e.what());
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    if (pid_ > 0) pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  }
  ~Child() {
    kill();
    if (pidfd_ >= 0) ::close(pidfd_);
  }

  // SIGKILLs the child if it has not been reaped yet, and reaps it.
  void kill() {
    if (pid_ <= 0 || reaped_) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }

  // The child's exit code (128 + signal if killed); SIGKILLs it first if it has not exited within `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;
    bool exited = true;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      exited = ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
    }
    if (!exited) {
      std::fprintf(stderr, "child %d did not exit within %lld ms: killed\n", static_cast<int>(pid_),
                   static_cast<long long>(timeout.count()));
      ::kill(pid_, SIGKILL);
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    if (!exited) return 128 + SIGKILL;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
};

// Spins until ready() is true; false when it stays false for `timeout_ns`. The clock is first read after 65536
// rounds and then every 65536 rounds, so a wait that succeeds soon never reads it. No pause instruction: this is the
// floor's spin, the fastest a line can go back and forth (libmq's own spin pauses; that cost is part of the ratio).
template <class Ready>
inline bool spin_until(Ready ready, std::uint64_t timeout_ns) {
  std::uint64_t deadline = 0;
  for (std::uint32_t round = 1;; ++round) {
    if (ready()) return true;
    if (round % 65536 != 0) continue;
    const std::uint64_t now = now_ns();
    if (deadline == 0)
      deadline = now + timeout_ns;
    else if (now > deadline)
      return ready();
  }
}

}  // namespace mqbench
