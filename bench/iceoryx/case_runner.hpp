// Runs one benchmark case in a fresh "case runner" process forked from main, because iceoryx's runtime may be
// initialised only once per process and must not be inherited across fork. The runner sends its CaseResult back
// over a pipe (a small length-prefixed encoding) and exits; main bounds its life and reports a case that overran.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "../harness.hpp"

namespace mqbench::iox_bench {

// ---- CaseResult over a pipe -------------------------------------------------------------------------------------

class Encoder {
 public:
  void put(std::uint64_t v) { bytes_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void put(double v) { bytes_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void put(const std::string& s) {
    put(static_cast<std::uint64_t>(s.size()));
    bytes_ += s;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// Reads what Encoder wrote, in the same order; ok() turns false (and stays false) on a short or corrupt input.
class Decoder {
 public:
  explicit Decoder(std::string_view bytes) : bytes_(bytes) {}
  void get(std::uint64_t& v) { raw(&v, sizeof v); }
  void get(double& v) { raw(&v, sizeof v); }
  void get(std::string& s) {
    std::uint64_t n = 0;
    get(n);
    if (!ok_ || n > bytes_.size() - at_) return void(ok_ = false);
    s.assign(bytes_.substr(at_, n));
    at_ += n;
  }
  bool ok() const { return ok_ && at_ == bytes_.size(); }

 private:
  void raw(void* out, std::size_t n) {
    if (!ok_ || n > bytes_.size() - at_) return void(ok_ = false);
    std::memcpy(out, bytes_.data() + at_, n);
    at_ += n;
  }
  std::string_view bytes_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

// encode() and decode() list CaseResult's fields in the same order.
inline std::string encode(const CaseResult& r) {
  Encoder e;
  for (const auto* s : {&r.transport, &r.mode, &r.kind, &r.pattern, &r.api, &r.load_before, &r.error, &r.note})
    e.put(*s);
  e.put(static_cast<std::uint64_t>(r.payload));
  e.put(static_cast<std::uint64_t>(r.skipped));
  e.put(static_cast<std::uint64_t>(r.latency.has_value()));
  const Summary s = r.latency.value_or(Summary{});
  for (const std::uint64_t v :
       {static_cast<std::uint64_t>(s.samples), s.min, s.p50, s.p90, s.p99, s.p999, s.p9999, s.max})
    e.put(v);
  for (const double v : {s.mean, r.msgs_per_s, r.mean_msgs_per_s, r.bytes_per_s, r.seconds}) e.put(v);
  return e.bytes();
}

inline bool decode(std::string_view bytes, CaseResult& r) {
  Decoder d(bytes);
  for (auto* s : {&r.transport, &r.mode, &r.kind, &r.pattern, &r.api, &r.load_before, &r.error, &r.note}) d.get(*s);
  std::uint64_t payload = 0, skipped = 0, has_latency = 0, samples = 0;
  d.get(payload);
  d.get(skipped);
  d.get(has_latency);
  Summary s;
  d.get(samples);
  for (std::uint64_t* v : {&s.min, &s.p50, &s.p90, &s.p99, &s.p999, &s.p9999, &s.max}) d.get(*v);
  for (double* v : {&s.mean, &r.msgs_per_s, &r.mean_msgs_per_s, &r.bytes_per_s, &r.seconds}) d.get(*v);
  if (!d.ok()) return false;
  r.payload = payload;
  r.skipped = skipped != 0;
  s.samples = samples;
  if (has_latency != 0) r.latency = s;
  return true;
}

// ---- interruption -----------------------------------------------------------------------------------------------

// Set by SIGINT/SIGTERM in main; the runner in flight is SIGKILLed (its driver child dies with it) so main can stop
// RouDi and clean up in order.
inline std::atomic<int> g_interrupted{0};
inline std::atomic<pid_t> g_runner{-1};

inline void on_interrupt(int signo) {
  g_interrupted.store(signo);
  if (const pid_t runner = g_runner.load(); runner > 0) ::kill(runner, SIGKILL);
}

inline void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

// ---- the runner -------------------------------------------------------------------------------------------------

// Runs `body` in a fresh process and returns its result; `identity` (transport, mode, kind, payload) names the case
// when the runner fails instead: it could not start, crashed, overran `deadline_ms` (then SIGKILLed), or was
// interrupted. The runner dies with main.
inline CaseResult run_in_fresh_process(const CaseResult& identity, long deadline_ms,
                                       const std::function<CaseResult()>& body) {
  CaseResult failed = identity;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return failed.error = std::string("pipe: ") + std::strerror(errno), failed;
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]), ::close(fds[1]);
    return failed.error = std::string("fork of the case runner: ") + std::strerror(errno), failed;
  }
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(96);
    ::close(fds[0]);
    const std::string bytes = encode(body());
    for (std::size_t at = 0; at < bytes.size();) {
      const ssize_t n = ::write(fds[1], bytes.data() + at, bytes.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(95);
      at += static_cast<std::size_t>(n);
    }
    std::fflush(nullptr);
    std::exit(0);  // not _exit: static destructors unregister this process's iceoryx runtime from RouDi
  }
  g_runner.store(pid);
  ::close(fds[1]);
  // Read to EOF: the pipe closes when the runner and its driver child have both exited.
  std::string bytes;
  const std::uint64_t deadline = now_ns() + static_cast<std::uint64_t>(deadline_ms) * 1'000'000;
  bool overran = false;
  for (;;) {
    const std::uint64_t now = now_ns();
    if (now >= deadline) {
      overran = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>((deadline - now) / 1'000'000 + 1));
    if (ready < 0 && errno == EINTR) {
      if (g_interrupted.load() != 0) break;
      continue;
    }
    if (ready <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (overran || g_interrupted.load() != 0) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_runner.store(-1);
  if (g_interrupted.load() != 0) return failed.error = "interrupted", failed;
  if (overran) {
    failed.error = "the case runner was still running after " + std::to_string(deadline_ms / 1000) + " s: killed";
    return failed;
  }
  if (CaseResult r; WIFEXITED(status) && WEXITSTATUS(status) == 0 && decode(bytes, r)) return r;
  if (WIFSIGNALED(status)) {
    failed.error =
        "the case runner died of signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
    if (WTERMSIG(status) == SIGABRT) failed.error += ": iceoryx aborts on a fatal error, see its message on stderr";
  } else {
    failed.error = "the case runner exited with " + std::to_string(WEXITSTATUS(status)) + " without a result";
  }
  return failed;
}

}  // namespace mqbench::iox_bench
