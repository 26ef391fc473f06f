// Runs a private mqd for a test: its own socket folder, namespace and data dir (its log in DIR/mqd.log), started with NOTIFY_SOCKET
// pointing at a datagram socket of ours, so "ready" is the daemon's own READY=1, not a guess. Every wait is bounded.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace mqtest {

// A datagram socket that receives sd_notify messages.
// What a bounded shell command printed (stdout and stderr) and its exit code. `timeout 10` in front: a daemon
// that starts when it should refuse is killed (exit 124) instead of holding the test until ctest's limit.
struct Ran {
  int code = -1;
  std::string out;
};
inline Ran run_bounded(const std::string& command) {
  Ran r;
  FILE* p = ::popen(("timeout 10 " + command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) r.out += buf;
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The shell words of a command line, each quoted.
inline std::string quoted(const std::vector<std::string>& words) {
  std::string cmd;
  for (const auto& w : words) cmd += "'" + w + "' ";
  return cmd;
}

class NotifyListener {
 public:
  NotifyListener() {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char tmpl[] = "/tmp/mq-notify-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/notify";
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~NotifyListener() {
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }
  // The next datagram, or "" after `timeout`.
  std::string next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }
  // Waits for a datagram containing `what`; false after `timeout`.
  bool wait_for(const std::string& what, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (next(left).find(what) != std::string::npos) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
  std::string dir_;
  std::string path_;
};

// A private mqd process.
class Daemon {
 public:
  // `extra`: more mqd options. The socket is DIR/mqd.sock, the data dir DIR/data, the namespace unique.
  explicit Daemon(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    char tmpl[] = "/tmp/mqd-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::chmod(dir_.c_str(), 0755);  // reachable by other users: rights are the daemon's to refuse
    socket_ = dir_ + "/mqd.sock";
    ns_ = "d" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
  }
  ~Daemon() {
    kill(SIGKILL);
    remove_segments();
    std::filesystem::remove_all(dir_);
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  std::vector<std::string> args() const {
    std::vector<std::string> a = {MQD_PATH, "--socket", socket_, "--namespace", ns_, "--data-dir", dir_ + "/data",
                                  "--config", dir_ + "/mqd.conf", "--log-level", "debug"};
    a.insert(a.end(), extra_.begin(), extra_.end());
    return a;
  }
  void write_config(const std::string& text) {
    FILE* f = std::fopen((dir_ + "/mqd.conf").c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  // Starts mqd and waits for its READY=1. The environment gets `env` (e.g. WATCHDOG_USEC=...).
  bool start(NotifyListener& notify, const std::vector<std::string>& env = {}) {
    if (!std::filesystem::exists(dir_ + "/mqd.conf")) write_config("");
    pid_ = ::fork();
    if (pid_ == 0) {
      if (nofile_ != 0) {  // soft and hard: mqd raises its soft limit to the hard one
        const rlimit lim{nofile_, nofile_};
        ::setrlimit(RLIMIT_NOFILE, &lim);
      }
      // mqd's log goes to DIR/mqd.log (appended over restarts), for tests that look for a line.
      if (const int log = ::open((dir_ + "/mqd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); log >= 0)
        ::dup2(log, 2);
      ::setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
      for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      const auto a = args();
      std::vector<char*> argv;
      for (const auto& s : a) argv.push_back(const_cast<char*>(s.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return notify.wait_for("READY=1", std::chrono::seconds(20));
  }
  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    if (sig == SIGSTOP || sig == SIGCONT || sig == SIGHUP) return;
    wait_exit(std::chrono::seconds(20));
  }
  // Reaps mqd; its exit code, or 128+signal; -1 if it did not exit in time (then it is SIGKILLed).
  int wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int st = 0;
    while (::waitpid(pid_, &st, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        return -1;
      }
      ::usleep(1000);  // no fd to wait on for a child's exit; 1 ms polling with a deadline
    }
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  void remove_segments() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec))
      if (e.path().filename().string().rfind("mq@" + ns_ + "@", 0) == 0) std::filesystem::remove(e.path(), ec);
  }
  // mqd's descriptor limit (RLIMIT_NOFILE, soft and hard) from the next start on; 0 = inherited.
  void set_descriptor_limit(rlim_t n) { nofile_ = n; }
  const std::string& socket() const { return socket_; }
  const std::string& ns() const { return ns_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> extra_;
  std::string dir_, socket_, ns_;
  pid_t pid_ = -1;
  rlim_t nofile_ = 0;
  static inline int counter_ = 0;
};

}  // namespace mqtest
